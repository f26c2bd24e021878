import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import fc from 'fast-check';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawEventV1 } from '../lib/events';
import { generateEvents } from '../lib/generator';
import { EventRows, lakeFilePath, readEventFile, toParquet, writeLakeFile } from '../lib/lake';
import { closeClient } from '../lib/temporal-client';
import { dailyWorkflowId } from '../lib/temporal';
import { dailyPipelineWorkflow } from '../workflows';
import { createDimensionActivities } from '../activities/dimensions';
import { createFactActivities } from '../activities/facts';
import { createLandActivities } from '../activities/land';
import { createStageActivities } from '../activities/stage';
import { applyMutation, mutations } from './fuzz-events';
import { createTestEnv, type TestEnv } from './support';
import { startWorker, testClient, type RunningWorker } from './temporal-support';

/**
 * Bad input never blocks a date (SPEC sections 3 and 9), through the real landing, load and Temporal: each bad
 * record is dead-lettered with a precise reason or loaded intact, a lake row PostgreSQL refuses is set aside,
 * and every run succeeds on its first attempt.
 */

// Workflow ids are per date and the namespace is shared: these dates belong to this file.
const DATE = '2019-05-21';
const LAKE_DATE = '2019-05-22';
const FUZZ_DATE = '2019-06-03';

const SQL_USER_ID = "x'); drop table warehouse.fact_events; --";
const FOUR_BYTE_PAGE = '/music/𝄞/😀/𠜎';

function event(overrides: Partial<RawEventV1> & Record<string, unknown> = {}): RawEventV1 {
  return {
    schema_version: 'v1',
    event_id: randomUUID(),
    event_type: 'page_view',
    event_time: `${DATE}T10:00:00Z`,
    user_id: 'u-bad-input',
    context: { country: 'DE', page: '/home', referrer: 'direct' },
    ...overrides,
  };
}

const purchase = (amount: number, currency = 'EUR') =>
  event({ event_type: 'purchase', purchase: { order_id: 'o-1', product_id: 'p-1', amount, currency } });

/** The records of the first test: [value, expected dead-letter reason or null when it must load intact]. */
function badRecords(): { id: string; value: string; reason: string | null }[] {
  const out: { id: string; value: string; reason: string | null }[] = [];
  const add = (e: RawEventV1, reason: string | null, value = JSON.stringify(e)) =>
    out.push({ id: e.event_id, value, reason });
  add(event({ user_id: 'u'.repeat(1_000_000) }), 'field "user_id" is 1000000 characters long, above its limit of 256');
  add(purchase(1e13), 'field "purchase.amount" must be below 999999999999.995');
  add(purchase(1e308), 'field "purchase.amount" must be below 999999999999.995');
  add(event({ context: { page: '/a\u0000b' } }), 'field "context.page" contains U+0000');
  add(event({ event_time: '0001-01-01T00:00:00Z' }), 'field "event_time" must be in the years 2001-2099');
  add(event({ event_time: '9999-12-31T23:59:59Z' }), 'field "event_time" must be in the years 2001-2099');
  const deep = event();
  add(
    deep,
    'record nests objects and arrays more than 16 levels deep',
    `${JSON.stringify(deep).slice(0, -1)},"extra":${'['.repeat(10_000)}${']'.repeat(10_000)}}`,
  );
  add(
    event({ context: { page: 'p'.repeat(900_000) } }),
    'field "context.page" is 900000 characters long, above its limit of 2048',
  );
  add(purchase(12.5, 'eur'), 'field "purchase.currency" must be an ISO-4217 code of 3 upper-case letters, got "eur"');
  add(event({ user_id: SQL_USER_ID }), null);
  add(event({ context: { country: 'DE', page: FOUR_BYTE_PAGE } }), null);
  add(purchase(1.005), null);
  add(purchase(999_999_999_999.99), null);
  return out;
}

async function produce(producer: Producer, topic: string, values: { key: string; value: string }[]): Promise<void> {
  for (let i = 0; i < values.length; i += 500) {
    await producer.send({ topic, messages: values.slice(i, i + 500) });
  }
}

describe('bad input never blocks a date', () => {
  let env: TestEnv;
  let client: Client;
  let worker: RunningWorker;
  let producer: Producer;

  beforeAll(async () => {
    env = await createTestEnv({ partitions: 2 });
    client = await testClient(env.config);
    worker = await startWorker(env);
    producer = new Kafka({ brokers: env.config.kafkaBrokers, logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
  });
  afterAll(async () => {
    await producer?.disconnect();
    await worker?.stop();
    if (client) await closeClient(client);
    await env?.cleanup();
  });

  /** Runs the date's pipeline and checks it succeeded without a single retried or failed activity. */
  async function runFirstAttempt(date: string) {
    const handle = await client.workflow.start(dailyPipelineWorkflow, {
      taskQueue: env.config.temporalTaskQueue,
      workflowId: dailyWorkflowId(date),
      args: [{ date }],
    });
    const result = await handle.result();
    expect(result.status).toBe('succeeded');
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const started = events.filter((e) => e.activityTaskStartedEventAttributes);
    expect(started.length).toBeGreaterThan(5);
    for (const e of started) expect(e.activityTaskStartedEventAttributes!.attempt).toBe(1);
    expect(events.filter((e) => e.activityTaskFailedEventAttributes || e.activityTaskTimedOutEventAttributes)).toEqual(
      [],
    );
    return result;
  }

  it('each bad record is dead-lettered with a precise reason or loaded intact; a record delivered twice is one fact; the run succeeds first time', async () => {
    const good = [...generateEvents({ events: 1_500, days: 1, start: DATE, seed: 11, badRate: 0 })].map((r) => ({
      key: r.key,
      value: r.value.toString(),
    }));
    const bad = badRecords();
    const twice = event({ user_id: 'u-twice' });
    const topic = env.config.kafkaTopic;
    await produce(producer, topic, good);
    for (const r of bad) await producer.send({ topic, messages: [{ key: 'bad', value: r.value }] });
    // an at-least-once producer retry: the same record twice
    await producer.send({ topic, messages: [{ key: twice.user_id, value: JSON.stringify(twice) }] });
    await producer.send({ topic, messages: [{ key: twice.user_id, value: JSON.stringify(twice) }] });

    const result = await runFirstAttempt(DATE);
    expect(result.land!.recordsRead).toBe(good.length + bad.length + 2);
    const rejected = bad.filter((r) => r.reason !== null);
    expect(result.land!.recordsDeadLettered).toBe(rejected.length);

    // every dead letter carries its reason; bad records are told apart by the event_id the landing salvaged
    const deadFiles = await env.db.selectFrom('ops.lake_files').selectAll().where('area', '=', 'dead_letter').execute();
    const reasons: string[] = [];
    const byId = new Map<string, string>();
    for (const f of deadFiles) {
      const table = await readEventFile(path.join(env.config.lakeDir, f.path));
      for (let i = 0; i < table.numRows; i++) {
        const reason = table.getChild('reason')!.get(i) as string;
        const id = table.getChild('event_id')!.get(i) as string | null;
        reasons.push(reason);
        if (id) byId.set(id, reason);
      }
    }
    expect(reasons).toHaveLength(rejected.length);
    for (const r of rejected) {
      const reason = byId.get(r.id) ?? reasons.find((x) => x.includes(r.reason!));
      expect(reason, r.reason!).toContain(r.reason);
    }

    // loaded intact: the SQL-looking user_id, the 4-byte UTF-8 page, amounts rounded half away from zero
    const facts = await env.pool.query<{ event_id: string; user_id: string; page: string | null; amount: string }>(
      `select f.event_id, u.user_id, f.page, f.amount::text as amount
       from warehouse.fact_events as f join warehouse.dim_user as u on u.user_key = f.user_key
       where f.event_id = any ($1::uuid[])`,
      [bad.filter((r) => r.reason === null).map((r) => r.id)],
    );
    const loaded = Object.fromEntries(facts.rows.map((r) => [r.event_id, r]));
    const intact = bad.filter((r) => r.reason === null);
    expect(loaded[intact[0].id].user_id).toBe(SQL_USER_ID);
    expect(loaded[intact[1].id].page).toBe(FOUR_BYTE_PAGE);
    expect(loaded[intact[2].id].amount).toBe('1.01');
    expect(loaded[intact[3].id].amount).toBe('999999999999.99');
    const { rows: tables } = await env.pool.query(`select to_regclass('warehouse.fact_events') is not null as ok`);
    expect(tables[0].ok).toBe(true);

    // delivered twice: one fact, and reconciliation passes
    const { rows: twiceRows } = await env.pool.query(
      'select count(*)::int as n from warehouse.fact_events where event_id = $1',
      [twice.event_id],
    );
    expect(twiceRows[0].n).toBe(1);
    expect(result.load!.stage.duplicates).toBe(1);
    const checks = Object.fromEntries(result.checks!.results.map((c) => [c.check, c]));
    expect(checks.reconciliation).toMatchObject({ status: 'pass', observed: good.length + intact.length + 1 });
    expect(checks.dead_letters.status).toBe('pass');
    expect(checks.set_aside).toMatchObject({ status: 'pass', observed: 0 });
  });

  it('a lake file with rows PostgreSQL refuses, and an unreadable one, do not fail the date: they are set aside and counted; a re-loaded date is checked again', async () => {
    const good = [...generateEvents({ events: 300, days: 1, start: LAKE_DATE, seed: 12, badRate: 0 })].map((r) => ({
      key: r.key,
      value: r.value.toString(),
    }));
    // with a late record for the date loaded by the test before: this run re-loads it and checks it again
    const late = event({ user_id: 'u-late' });
    await produce(producer, env.config.kafkaTopic, [...good, { key: late.user_id, value: JSON.stringify(late) }]);
    // the landing of this run is done first, so the hand-written files join a manifest the landing already keeps
    const first = await runFirstAttempt(LAKE_DATE);
    expect(first.reloads.map((r) => r.date)).toEqual([DATE]);
    expect(first.reloadChecks?.map((c) => c.date)).toEqual([DATE]);
    const reloaded = Object.fromEntries(first.reloadChecks![0].results.map((c) => [c.check, c]));
    expect(reloaded.reconciliation.status).toBe('pass');
    expect(reloaded.reconciliation.details).toContain('1 repeated event_ids');

    // values the contract rules out, written straight into the lake by the project's lake writer
    const rows = new EventRows(env.config.kafkaTopic, 7);
    const base = {
      schema_version: 'v1',
      event_type: 'purchase' as const,
      event_time_us: Date.parse(`${LAKE_DATE}T12:00:00Z`) * 1000,
      user_id: 'u-lake',
      session_id: null,
      device_type: null,
      device_os: null,
      device_browser: null,
      country: 'DE',
      page: '/ok',
      referrer: null,
      user_email: null,
      user_plan: null,
      user_country: null,
      order_id: 'o-lake',
      product_id: 'p-lake',
      amount: 10,
      currency: 'EUR',
    };
    const ids = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    rows.push({ ...base, event_id: ids[0] }, 0, Date.now());
    rows.push({ ...base, event_id: ids[1], page: '/nul\u0000byte' }, 1, Date.now());
    rows.push({ ...base, event_id: ids[2], amount: 1e20 }, 2, Date.now());
    rows.push({ ...base, event_id: ids[3], user_id: 'u'.repeat(5_000) }, 3, Date.now());
    const goodFile = lakeFilePath('events', LAKE_DATE, 7, 0, 3);
    await writeLakeFile(env.config.lakeDir, goodFile, toParquet(rows.toTable()));
    const corruptFile = lakeFilePath('events', LAKE_DATE, 8, 0, 9);
    writeFileSync(path.join(env.config.lakeDir, corruptFile), Buffer.from('PAR1 this is not a parquet file PAR1'));
    const { rows: landings } = await env.pool.query<{ landing_id: string }>(
      'select landing_id from ops.landings order by landing_id limit 1',
    );
    await env.pool.query(
      `insert into ops.lake_files (landing_id, path, area, dt, topic, partition, first_offset, last_offset, row_count, bytes)
       values ($1, $2, 'events', $4::date, $5, 7, 0, 3, 4, 1), ($1, $3, 'events', $4::date, $5, 8, 0, 9, 10, 1)`,
      [landings[0].landing_id, goodFile, corruptFile, LAKE_DATE, env.config.kafkaTopic],
    );

    const result = await runFirstAttempt(LAKE_DATE);
    // the date is loaded: this run stages only the two files added to its manifest, on top of the loaded ones
    expect(result.load!.stage).toMatchObject({ rowsRead: 4 + 10, rowsSetAside: 3 + 10 });
    expect(result.load!.stage.filesAlreadyLoaded).toBeGreaterThan(0);
    const { rows: setAside } = await env.pool.query<{
      path: string;
      row_number: number | null;
      kafka_offset: number | null;
      event_id: string | null;
      reason: string;
      sqlstate: string | null;
    }>(
      `select path, row_number, kafka_offset, event_id, reason, sqlstate from ops.rejected_rows
       where dt = $1::date order by path, row_number`,
      [LAKE_DATE],
    );
    expect(setAside).toMatchObject([
      { path: goodFile, row_number: 1, kafka_offset: 1, event_id: ids[1], sqlstate: '22021' },
      { path: goodFile, row_number: 2, kafka_offset: 2, event_id: ids[2], sqlstate: '22003' },
      { path: goodFile, row_number: 3, kafka_offset: 3, event_id: ids[3], sqlstate: '23514' },
      { path: corruptFile, row_number: null, event_id: null, sqlstate: null },
    ]);
    expect(setAside[0].reason).toContain('0x00');
    expect(setAside[1].reason).toContain('numeric field overflow');
    expect(setAside[2].reason).toContain('user_id_at_most_1024_bytes');
    expect(setAside[3].reason).toContain('is not readable Parquet');

    // the good row of the hand-written file loaded; the checks count what was set aside and reconcile the rest
    const { rows: loaded } = await env.pool.query(
      'select count(*)::int as n from warehouse.fact_events where event_id = any ($1::uuid[])',
      [ids],
    );
    expect(loaded[0].n).toBe(1);
    const checks = Object.fromEntries(result.checks!.results.map((c) => [c.check, c]));
    expect(checks.set_aside).toMatchObject({ status: 'warn', observed: 13 });
    expect(checks.set_aside.details).toContain('1 unreadable files');
    expect(checks.reconciliation).toMatchObject({ status: 'pass', observed: good.length + 1 });
  });

  it('fuzzed records through the real landing and load: nothing throws, counts are conserved, every landed record loads (fixed seed, 400 cases)', async () => {
    const fuzzEnv = await createTestEnv({ partitions: 2 });
    try {
      const bases = [...generateEvents({ events: 400, days: 1, start: FUZZ_DATE, seed: 13, badRate: 0 })].map(
        (r) => JSON.parse(r.value.toString()) as Record<string, unknown>,
      );
      const cases = fc.sample(fc.tuple(fc.integer({ min: 0, max: bases.length - 1 }), mutations()), {
        seed: 20261127,
        numRuns: 400,
      });
      const values = cases.map(([i, muts]) => {
        const e = structuredClone(bases[i]);
        for (const m of muts) applyMutation(e, m);
        return { key: 'fuzz', value: JSON.stringify(e) };
      });
      const fuzzProducer = new Kafka({ brokers: fuzzEnv.config.kafkaBrokers, logLevel: logLevel.NOTHING }).producer();
      await fuzzProducer.connect();
      await produce(fuzzProducer, fuzzEnv.config.kafkaTopic, values);
      await fuzzProducer.disconnect();

      const deps = { config: fuzzEnv.config, pool: fuzzEnv.pool, db: fuzzEnv.db };
      const landed = await createLandActivities(deps).landEvents({});
      expect(landed.recordsRead).toBe(values.length);
      expect(landed.recordsLanded + landed.recordsDeadLettered).toBe(values.length);
      expect(landed.recordsLanded).toBeGreaterThan(0);
      expect(landed.recordsDeadLettered).toBeGreaterThan(0);

      const files = await fuzzEnv.db.selectFrom('ops.lake_files').selectAll().execute();
      const ids = new Set<string>();
      for (const f of files.filter((x) => x.area === 'events')) {
        const table = await readEventFile(path.join(fuzzEnv.config.lakeDir, f.path));
        for (let i = 0; i < table.numRows; i++) ids.add(table.getChild('event_id')!.get(i) as string);
      }
      const dates = [...new Set(files.filter((f) => f.area === 'events').map((f) => String(f.dt)))];
      const stage = createStageActivities(deps);
      const dims = createDimensionActivities(deps);
      const facts = createFactActivities(deps);
      for (const dt of dates) {
        const date = new Date(dt).toISOString().slice(0, 10);
        const input = { date, run: { workflowId: 'fuzz-load', runId: `fuzz-${date}` } };
        const staged = await stage.stageEvents(input);
        expect(staged.rowsSetAside, `rows set aside on ${date}`).toBe(0);
        await dims.loadDimensions(input);
        await facts.loadFacts(input);
      }
      const { rows } = await fuzzEnv.pool.query('select count(*)::int as n from warehouse.fact_events');
      expect(rows[0].n).toBe(ids.size);
    } finally {
      await fuzzEnv.cleanup();
    }
  });
});
