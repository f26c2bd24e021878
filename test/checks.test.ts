import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCheckActivities } from '../activities/checks';
import {
  CHECKS,
  DQ_DEFAULTS,
  type CheckResult,
  checkStartOrder,
  dateKeyOf,
  evaluateChecks,
  factsSource,
} from '../lib/checks';
import { loadConfig } from '../lib/config';
import { addDays } from '../lib/temporal';
import { countingPool, createTestEnv, type TestEnv } from './support';
import { cleanupEnv, dateKey, refreshDateActivity, seedWarehouse, type Seeded } from './seed-warehouse';

/** Each check passes on a clean generated warehouse and fails on data built to break it. */

let counter = 0;

describe('data-quality checks', () => {
  let env: TestEnv;
  let seeded: Seeded;
  let last: string;
  let lastKey: number;

  beforeEach(async () => {
    env = await createTestEnv({ topic: false });
    seeded = await seedWarehouse(env.pool, {
      start: '2024-12-01',
      days: 10,
      users: 150,
      churn: 0,
      steady: true,
      seed: 11,
    });
    last = seeded.dates[seeded.dates.length - 1];
    lastKey = dateKey(last);
  });
  afterEach(async () => {
    await cleanupEnv(env);
  });

  async function check(date: string, options: { scheduled?: boolean; now?: string } = {}) {
    const { runChecks } = createCheckActivities(env, { config: { ...DQ_DEFAULTS, scheduleStart: seeded.dates[0] } });
    const runId = `run-${++counter}`;
    const out = await runChecks({ date, run: { workflowId: `daily-${date}`, runId }, ...options });
    const by = Object.fromEntries(out.results.map((r) => [r.check, r])) as Record<string, CheckResult>;
    return { out, by, runId };
  }

  it('every check passes on clean data, one ops.dq_results row per check per run', async () => {
    const { by, out, runId } = await check(last);
    expect(Object.values(by).filter((r) => r.status !== 'pass')).toEqual([]);
    expect(Object.keys(by)).toEqual(CHECKS.map((c) => c.name));
    expect(by.volume.threshold).toContain('trailing weekdays, last 14 days');
    expect(by.uniqueness.details).toBe(
      `every event_id once: fact_events_${lastKey} has its valid primary key (event_id)`,
    );
    const { rows } = await env.pool.query('select check_name, status from ops.dq_results where run_id = $1', [runId]);
    expect(rows).toHaveLength(CHECKS.length);

    // a retry of the same run replaces its rows instead of adding more
    const { runChecks } = createCheckActivities(env, { config: { ...DQ_DEFAULTS, scheduleStart: seeded.dates[0] } });
    await runChecks({ date: last, run: { workflowId: `daily-${last}`, runId } });
    const again = await env.pool.query('select count(*)::int as n from ops.dq_results where run_id = $1', [runId]);
    expect(again.rows[0].n).toBe(CHECKS.length);
    expect(out.counts).toEqual({ pass: CHECKS.length, warn: 0, fail: 0, skip: 0 });

    // the scheduled run judges freshness against the clock: 2:00 the next day is fresh
    const scheduled = await check(last, { scheduled: true, now: `${addDays(last, 1)}T02:00:00Z` });
    expect(scheduled.by.freshness.status).toBe('pass');
  });

  it('the checks run on two connections at once, results in list order; one that cannot run stops them, named', async () => {
    // the real pool, counting the connections taken and not yet released
    const counted = countingPool(env.pool);
    const ctx = {
      date: last,
      dateKey: dateKeyOf(last),
      scheduled: false,
      now: new Date(),
      config: { ...DQ_DEFAULTS, scheduleStart: seeded.dates[0] },
    };
    // the settings each check's statement ran under, read on its connection just before it
    const settings = new Set<string>();
    const watched = {
      connect: async () => {
        const client = await counted.pool.connect();
        return new Proxy(client, {
          get(target, prop) {
            const value = Reflect.get(target, prop, target);
            if (prop !== 'query') return typeof value === 'function' ? value.bind(target) : value;
            return async (...args: unknown[]) => {
              const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string }).text;
              if (text?.includes('-- grain:')) {
                const { rows } = await target.query(
                  `select current_setting('jit') as jit, current_setting('max_parallel_workers_per_gather') as workers`,
                );
                settings.add(`jit ${rows[0].jit}, parallel workers ${rows[0].workers}`);
              }
              return (target.query as (...a: unknown[]) => unknown)(...args);
            };
          },
        });
      },
    };
    const results = await evaluateChecks(watched, ctx);
    expect(results.map((r) => r.check)).toEqual(CHECKS.map((c) => c.name));
    expect(results.filter((r) => r.status !== 'pass')).toEqual([]);
    expect({ most: counted.most, held: counted.held }).toEqual({ most: 2, held: 0 });
    expect([...settings]).toEqual(['jit off, parallel workers 0']);
    // the two connections (the pool hands out the last released first) went back with their parallel workers and JIT
    const back = [await env.pool.connect(), await env.pool.connect()];
    try {
      for (const client of back) {
        const { rows } = await client.query(
          `select name, current_setting(name) as now, reset_val as server
           from pg_settings where name in ('max_parallel_workers_per_gather', 'jit') order by name`,
        );
        expect(rows.map((r) => r.now)).toEqual(rows.map((r) => r.server));
        expect(rows.map((r) => r.now)).toEqual(['on', expect.not.stringMatching(/^0$/)]);
      }
    } finally {
      for (const client of back) client.release();
    }

    await env.pool.query('alter table ops.rejected_rows rename to rejected_rows_gone');
    await expect(evaluateChecks(counted.pool, ctx)).rejects.toThrow(
      `check set_aside failed to run for ${last}: relation "ops.rejected_rows" does not exist`,
    );
    expect(counted.held).toBe(0);
  });

  it('the longest checks start first, then the parts, so that the others run beside them', () => {
    const order = checkStartOrder(CHECKS).map((u) => u.part ?? CHECKS[u.check].name);
    expect(CHECKS.filter((c) => c.longest).map((c) => c.name)).toEqual(['nulls', 'integrity']);
    expect(order.slice(0, 3)).toEqual(['nulls', 'integrity', 'integrity_devices']);
    expect(order.slice(3)).toEqual(CHECKS.map((c) => c.name).filter((n) => n !== 'nulls' && n !== 'integrity'));
    // every check once, and the part with its own check
    expect(checkStartOrder(CHECKS).filter((u) => u.part !== null)).toEqual([
      { check: CHECKS.findIndex((c) => c.name === 'integrity'), part: 'integrity_devices' },
    ]);
  });

  it('volume: a 50 % drop fails', async () => {
    await env.pool.query('delete from warehouse.fact_events where date_key = $1 and source_offset % 2 = 0', [lastKey]);
    const { by } = await check(last);
    expect(by.volume.status).toBe('fail');
    expect(by.volume.details).toMatch(/-[45]\d\.\d %/);
  });

  it('volume: skipped, not failed, with less than 3 days of history', async () => {
    const { by } = await check(seeded.dates[2]);
    expect(by.volume.status).toBe('skip');
    expect(by.volume.details).toContain('only 2 usable days');
  });

  it('volume: compares with the same weekday when four weeks of history allow', async () => {
    const long = await createTestEnv({ topic: false });
    try {
      await seedWarehouse(long.pool, { start: '2024-11-01', days: 29, users: 60, churn: 0, steady: true, seed: 3 });
      const { runChecks } = createCheckActivities(long, { config: DQ_DEFAULTS });
      const out = await runChecks({ date: '2024-11-29', run: { workflowId: 'w', runId: 'r' } });
      const volume = out.results.find((r) => r.check === 'volume')!;
      expect(volume.threshold).toContain('same weekday');
      expect(volume.details).toContain(
        'against the median of 4 days (same weekday, last 8 weeks: 2024-11-01, 2024-11-08, 2024-11-15, 2024-11-22)',
      );
    } finally {
      await cleanupEnv(long);
    }
  });

  it('nulls: a null amount on a purchase or a null user_key fails', async () => {
    await env.pool.query(
      `update warehouse.fact_events set amount = null
       where event_id = (select event_id from warehouse.fact_events where date_key = $1 and event_type = 'purchase' limit 1)`,
      [lastKey],
    );
    let { by } = await check(last);
    expect(by.nulls.status).toBe('fail');
    expect(by.nulls.details).toContain('purchase_amount 1');

    await env.pool.query('alter table warehouse.fact_events alter column user_key drop not null');
    await env.pool.query(
      `update warehouse.fact_events set user_key = null where date_key = $1 and event_type = 'page_view'`,
      [lastKey],
    );
    ({ by } = await check(last));
    expect(by.nulls.details).toMatch(/user_key \d+/);
    expect(Number(by.nulls.observed)).toBeGreaterThan(0.1);
  });

  it("uniqueness: a duplicate event_id fails (primary key of the date's partition dropped in this test database to let one in)", async () => {
    await env.pool.query(`alter table warehouse.fact_events_${lastKey} drop constraint fact_events_${lastKey}_pkey`);
    await env.pool.query(
      `insert into warehouse.fact_events select * from warehouse.fact_events where date_key = $1 order by event_id limit 1`,
      [lastKey],
    );
    const { by } = await check(last);
    expect(by.uniqueness).toMatchObject({ status: 'fail', observed: 1 });
    expect(by.uniqueness.details).not.toContain('primary key (event_id');
    expect(by.uniqueness.details).toContain('1 event_ids appear more than once');
  });

  it('integrity: facts pointing at a missing dim_user or dim_device row fail', async () => {
    await env.pool.query(
      `insert into warehouse.fact_events (event_id, event_time, date_key, user_key, device_key, event_type, lake_file_id, source_offset)
       values (gen_random_uuid(), $1::date + interval '3 hours', $2, 987654321, 0, 'page_view', 1, 1)`,
      [last, lastKey],
    );
    let { by } = await check(last);
    expect(by.integrity.status).toBe('fail');
    expect(by.integrity.details).toContain('1 facts with a missing dim_user row');

    // and facts pointing at a missing dim_device row, counted per fact (two on the same keys)
    await env.pool.query(
      `insert into warehouse.fact_events (event_id, event_time, date_key, user_key, device_key, event_type, lake_file_id, source_offset)
       select gen_random_uuid(), $1::date + interval '4 hours', $2, (select min(user_key) from warehouse.dim_user), 987654, 'page_view', 1, n
       from generate_series(1, 2) as n`,
      [last, lastKey],
    );
    ({ by } = await check(last));
    expect(by.integrity.details).toBe('1 facts with a missing dim_user row; 2 facts with a missing dim_device row');
  });

  it('integrity: overlapping SCD2 ranges and a second current row fail (overlap trigger disabled in this test database)', async () => {
    await env.pool.query('alter table warehouse.dim_user disable trigger dim_user_no_overlap_insert');
    // the check looks at the versions of the date's users (the ones its load writes): a current version of one
    const { rows: dayUsers } = await env.pool.query<{ user_id: string }>(
      `select distinct u.user_id from warehouse.fact_events f join warehouse.dim_user u on u.user_key = f.user_key
       where f.date_key = $1`,
      [lastKey],
    );
    const v = seeded.versions.find((x) => x.is_current && dayUsers.some((d) => d.user_id === x.user_id))!;
    await env.pool.query(
      `insert into warehouse.dim_user (user_id, email, plan, country, valid_from, valid_to, is_current)
       values ($1, 'x@example.com', 'pro', 'US', $2::timestamptz + interval '1 hour', $2::timestamptz + interval '2 hours', false)`,
      [v.user_id, v.valid_from],
    );
    const { by } = await check(last);
    expect(by.integrity.status).toBe('fail');
    expect(by.integrity.details).toContain('1 overlapping dim_user versions');
  });

  it("integrity: judges a user's versions from the one before the earliest the date uses, so a gap there fails and older history is not judged again", async () => {
    // a user of the last date whose facts there all point at their first version
    const { rows } = await env.pool.query<{ user_id: string; valid_from: Date }>(
      `select u.user_id, min(u.valid_from) as valid_from
       from warehouse.fact_events f join warehouse.dim_user u on u.user_key = f.user_key
       where f.date_key = $1
       group by u.user_id
       having min(u.valid_from) = (select min(v.valid_from) from warehouse.dim_user v where v.user_id = u.user_id)
       order by u.user_id limit 1`,
      [lastKey],
    );
    const [{ user_id: user, valid_from: first }] = rows;
    // two older versions with a gap between them: history its own dates' loads wrote, and their checks read
    await env.pool.query(
      `insert into warehouse.dim_user (user_id, email, plan, country, valid_from, valid_to, is_current)
       values ($1, 'x@example.com', 'free', 'US', $2::timestamptz - interval '20 days', $2::timestamptz - interval '19 days', false),
              ($1, 'x@example.com', 'free', 'US', $2::timestamptz - interval '10 days', $2::timestamptz, false)`,
      [user, first],
    );
    expect((await check(last)).by.integrity.status).toBe('pass');

    // a gap between the earliest version the date uses and the one before it is what a load of the date could
    // leave behind (the version a change splits)
    await env.pool.query(
      `update warehouse.dim_user set valid_to = $2::timestamptz - interval '1 hour'
       where user_id = $1 and valid_to = $2::timestamptz`,
      [user, first],
    );
    const { by } = await check(last);
    expect(by.integrity.status).toBe('fail');
    expect(by.integrity.details).toContain('1 gaps between dim_user versions');
  });

  it('freshness: a stale date fails, for a backfill (data stops at noon) and for the scheduled run (3 days old)', async () => {
    await env.pool.query(
      `delete from warehouse.fact_events where date_key = $1 and event_time >= $2::date + interval '12 hours'`,
      [lastKey, last],
    );
    await refreshDateActivity(env.pool, last);
    const backfill = await check(last);
    expect(backfill.by.freshness.status).toBe('fail');
    expect(Number(backfill.by.freshness.observed)).toBeGreaterThan(11);
    const scheduled = await check(last, { scheduled: true, now: `${addDays(last, 3)}T02:00:00Z` });
    expect(scheduled.by.freshness.status).toBe('fail');
    expect(scheduled.by.freshness.details).toMatch(/is \d+(\.\d+)? h old/);
  });

  it("dead letters: 5 % of the date's records dead-lettered fails", async () => {
    const { rows } = await env.pool.query(
      `select sum(row_count)::int as n from ops.lake_files where dt = $1 and area = 'events'`,
      [last],
    );
    await env.pool.query(`delete from ops.lake_files where dt = $1 and area = 'dead_letter'`, [last]);
    const dead = Math.round((rows[0].n * 0.05) / 0.95);
    await env.pool.query(
      `insert into ops.lake_files (landing_id, path, area, dt, topic, partition, first_offset, last_offset, row_count, bytes)
       select landing_id, 'dead_letter/extra.parquet', 'dead_letter', dt, topic, 1, 0, $2::bigint, $2::int, 1 from ops.lake_files where dt = $1 limit 1`,
      [last, dead],
    );
    const { by } = await check(last);
    expect(by.dead_letters.status).toBe('fail');
    expect(Number(by.dead_letters.observed)).toBeCloseTo(0.05, 2);
  });

  it('reconciliation: facts missing against the records landed fail; repeated event_ids in staging count once', async () => {
    await env.pool.query(
      `delete from warehouse.fact_events where event_id in (select event_id from warehouse.fact_events where date_key = $1 limit 3)`,
      [lastKey],
    );
    let { by } = await check(last);
    expect(by.reconciliation.status).toBe('fail');
    expect(by.reconciliation.details).toContain('difference -3');

    // the date's staging table holds the landed records: the 3 missing ones are producer retries of loaded events
    await env.pool.query(`create table staging.events_${lastKey} (like staging.events)`);
    await env.pool.query(
      `insert into staging.events_${lastKey} (event_id, schema_version, event_type, event_time, user_id, kafka_topic, kafka_partition, kafka_offset, lake_file_id)
       select f.event_id, 'v1', f.event_type, f.event_time, du.user_id, 'events', 0, f.source_offset, f.lake_file_id
       from warehouse.fact_events as f join warehouse.dim_user as du using (user_key) where f.date_key = $1`,
      [lastKey],
    );
    await env.pool.query(`insert into staging.events_${lastKey} select * from staging.events_${lastKey} limit 3`);
    ({ by } = await check(last));
    expect(by.reconciliation.status).toBe('pass');
    expect(by.reconciliation.details).toContain('3 repeated event_ids subtracted');
  });

  it("a date landed but without a fact partition: the checks read fact_events by date_key and count none of the other dates' facts", async () => {
    const landed = await env.pool.query(
      `select sum(row_count)::int as n from ops.lake_files where area = 'events' and dt = $1`,
      [last],
    );
    expect(landed.rows[0].n).toBeGreaterThan(0);
    await env.pool.query(`drop table warehouse.fact_events_${lastKey}`);
    const client = await env.pool.connect();
    try {
      expect(await factsSource(client, lastKey)).toEqual({ table: 'fact_events', partition: false });
    } finally {
      client.release();
    }
    const { by } = await check(last);
    expect(by.reconciliation).toMatchObject({ status: 'fail', observed: 0 });
    expect(by.reconciliation.details).toContain(`0 fact rows; ${landed.rows[0].n} records landed`);
    expect(by.volume).toMatchObject({ status: 'fail', observed: 0 });
    expect(by.nulls.details).toBe('no nulls in 0 rows');
    expect(by.integrity).toMatchObject({ status: 'pass', observed: 0 });
  });

  it('schedule gaps: counted from the schedule start; a day with no successful run after it is reported', async () => {
    const gap = seeded.dates[4];
    await env.pool.query(`update ops.pipeline_runs set status = 'failed' where dt = $1 and step = 'pipeline'`, [gap]);
    const { by } = await check(last);
    expect(by.schedule_gaps).toMatchObject({ status: 'warn', observed: 1 });
    expect(by.schedule_gaps.details).toContain(`no successful run on ${gap}`);

    // without a configured start, days count from the first date a scheduled run loaded: loads of history before
    // the schedule existed are no gaps, and with no scheduled run at all nothing was due
    const { runChecks } = createCheckActivities(env, { config: DQ_DEFAULTS });
    const unscheduled = await runChecks({ date: last, run: { workflowId: 'w', runId: 'unscheduled' } });
    expect(unscheduled.results.find((r) => r.check === 'schedule_gaps')).toMatchObject({ status: 'skip' });
    await env.pool.query(
      `update ops.pipeline_runs set details = details || '{"scheduled": true}' where step = 'pipeline' and dt >= $1`,
      [seeded.dates[6]],
    );
    const scheduled = await runChecks({ date: last, run: { workflowId: 'w', runId: 'scheduled' } });
    expect(scheduled.results.find((r) => r.check === 'schedule_gaps')).toMatchObject({
      status: 'pass',
      observed: 0,
      details: `every one of 3 days since ${seeded.dates[6]} has a successful run`,
    });
  });

  it('thresholds come from the environment with the SPEC defaults, and bad values are named', () => {
    expect(loadConfig({}).dq).toEqual(DQ_DEFAULTS);
    expect(DQ_DEFAULTS).toMatchObject({
      volumeTolerance: 0.2,
      deadLetterMaxRatio: 0.01,
      freshnessMaxAgeHours: 24,
      nullMaxRatio: 0,
    });
    expect(loadConfig({ DQ_DEAD_LETTER_MAX_RATIO: '0.06', DQ_VOLUME_TOLERANCE: ' 0.5 ' }).dq).toMatchObject({
      deadLetterMaxRatio: 0.06,
      volumeTolerance: 0.5,
    });
    expect(() => loadConfig({ DQ_VOLUME_TOLERANCE: 'twenty' }).dq).toThrow(
      /DQ_VOLUME_TOLERANCE="twenty".*number from 0/,
    );
    expect(() => loadConfig({ DQ_VOLUME_MIN_HISTORY_DAYS: '2.5' }).dq).toThrow(/DQ_VOLUME_MIN_HISTORY_DAYS.*integer/);
    expect(loadConfig({ DQ_SCHEDULE_START: '2026-01-05', DQ_VOLUME_MAD_K: '5' }).dq).toMatchObject({
      scheduleStart: '2026-01-05',
      volumeMadK: 5,
    });
    expect(() => loadConfig({ DQ_SCHEDULE_START: '2026-13-01' })).toThrow(/DQ_SCHEDULE_START.*2026-13-01/);
  });

  it('a bad date is refused with a non-retryable error naming it', async () => {
    const { runChecks } = createCheckActivities(env, { config: DQ_DEFAULTS });
    await expect(runChecks({ date: '2024-02-30', run: { workflowId: 'w', runId: 'r' } })).rejects.toMatchObject({
      nonRetryable: true,
      message: expect.stringContaining('2024-02-30'),
    });
  });

  it('nightshift check prints the results and its exit code reflects them', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', path.join('scripts', 'nightshift.ts'), 'check', ...args],
          {
            cwd: path.resolve(__dirname, '..'),
            env: { ...process.env, DATABASE_URL: env.config.databaseUrl, DQ_SCHEDULE_START: seeded.dates[0] },
          },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });

    const clean = await run(['--date', last]);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toMatch(/check\s+table\s+status\s+observed\s+threshold\s+details/);
    expect(clean.stdout).toMatch(/volume\s+warehouse\.fact_events\s+PASS/);
    expect(clean.stdout).toContain(`${CHECKS.length} pass, 0 warn, 0 fail`);

    // FORMAT=json: one valid JSON document on stdout, one object per check
    const json = await run(['--date', last, '--format', 'json']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({ date: last, ok: true, counts: { pass: CHECKS.length, fail: 0 } });
    expect(report.checks.map((c: { name: string }) => c.name)).toEqual(CHECKS.map((c) => c.name));
    for (const c of report.checks) {
      expect(Object.keys(c)).toEqual(['name', 'table', 'status', 'observed', 'threshold', 'details']);
    }
    expect(report.checks.find((c: { name: string }) => c.name === 'volume')).toMatchObject({
      table: 'warehouse.fact_events',
      status: 'pass',
    });
    expect((await run(['--date', last, '--format', 'xml'])).code).toBe(2);

    // a warning alone keeps exit code 0
    await env.pool.query(`update ops.pipeline_runs set status = 'failed' where dt = $1 and step = 'pipeline'`, [
      seeded.dates[3],
    ]);
    const warned = await run(['--date', last]);
    expect(warned.code).toBe(0);
    expect(warned.stdout).toMatch(/schedule_gaps\s+ops\.pipeline_runs\s+WARN/);

    await env.pool.query('delete from warehouse.fact_events where date_key = $1 and source_offset % 2 = 0', [lastKey]);
    const broken = await run(['--date', last]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/volume\s+warehouse\.fact_events\s+FAIL/);
    const { rows } = await env.pool.query(
      `select count(distinct run_id)::int as n from ops.dq_results where run_id like 'manual-%'`,
    );
    expect(rows[0].n).toBe(4);

    const bad = await run(['--date', '2024-13-01']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--date: "2024-13-01" is not a calendar date');
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage:');
  });
});
