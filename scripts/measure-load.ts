import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { createDimensionActivities } from '../activities/dimensions';
import { createCheckActivities } from '../activities/checks';
import { createFactActivities } from '../activities/facts';
import { createMartActivities } from '../activities/marts';
import { createStageActivities, stagingEventsTable } from '../activities/stage';
import { EXIT, calendarDate, parseCommandLine, runCommand, wholeNumber } from '../lib/cli';
import { type Config, loadConfig } from '../lib/config';
import { createDb, createPool } from '../warehouse/db';
import { migrateToLatest } from '../warehouse/migrate';
import { writeLake } from './bench/lake';

/**
 * Measures the warehouse load of one date: N generated events written straight into a temporary lake (the
 * landing is measured elsewhere), then stage, dimensions, facts, marts, checks, and a re-load of the same date,
 * each in rows/s,
 * against a raw COPY of the same rows into an unindexed UNLOGGED table on the same database as the baseline.
 * Runs in a database of its own, dropped afterwards (--keep keeps it).
 *
 * --day2 also generates the next day (the same simulated users, N events more) and loads it on top of the first
 * day after the re-load, to compare day 2 with day 1 (SPEC section 8: cost linear in the day's events). --users U
 * generates both days from a steady world of U users, where day 2 has about as many distinct users as day 1,
 * instead of the growing one, where it has about twice as many.
 *
 * Usage: see USAGE.
 */

const USAGE =
  'usage: node --import tsx scripts/measure-load.ts [--events 1000000] [--date 2024-12-17] [--seed 7] [--partitions 4] [--day2] [--users U] [--keep]';

interface Options {
  events: number;
  date: string;
  seed: number;
  partitions: number;
  keep: boolean;
  day2: boolean;
  /** A steady world of this many users (GenerateOptions.users); undefined: the growing one. */
  users: number | undefined;
}

function parseMeasureArgs(argv: string[]): Options | null {
  const parsed = parseCommandLine(argv, {
    events: { type: 'string', default: '1000000' },
    date: { type: 'string', default: '2024-12-17' },
    seed: { type: 'string', default: '7' },
    partitions: { type: 'string', default: '4' },
    day2: { type: 'boolean', default: false },
    users: { type: 'string' },
    keep: { type: 'boolean', default: false },
  });
  if (parsed === 'help') return null;
  const v = parsed.values;
  return {
    events: wholeNumber('--events', v.events, 1),
    date: calendarDate('--date', v.date),
    seed: wholeNumber('--seed', v.seed, 0),
    partitions: wholeNumber('--partitions', v.partitions, 1),
    day2: v.day2,
    users: v.users === undefined ? undefined : wholeNumber('--users', v.users, 1),
    keep: v.keep,
  };
}

/** The baseline: the same rows, as COPY text, into an unindexed UNLOGGED table. Returns seconds. */
async function rawCopySeconds(pool: pg.Pool, date: string): Promise<number> {
  const client = await pool.connect();
  try {
    const source = `staging.${client.escapeIdentifier(stagingEventsTable(date))}`;
    const chunks: Buffer[] = [];
    await pipeline(
      client.query(copyTo(`copy ${source} to stdout`)),
      new Writable({
        write(chunk: Buffer, _enc, done) {
          chunks.push(chunk);
          done();
        },
      }),
    );
    await client.query(`create unlogged table staging.measure_baseline (like ${source})`);
    const started = performance.now();
    const copy = client.query(copyFrom('copy staging.measure_baseline from stdin'));
    await pipeline(async function* () {
      yield* chunks;
    }, copy);
    const seconds = (performance.now() - started) / 1000;
    await client.query('drop table staging.measure_baseline');
    return seconds;
  } finally {
    client.release();
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; result: T }> {
  const started = performance.now();
  const result = await fn();
  return { seconds: (performance.now() - started) / 1000, result };
}

async function main(argv: string[]): Promise<number> {
  const o = parseMeasureArgs(argv);
  if (o === null) {
    console.log(USAGE);
    return EXIT.ok;
  }
  const base = loadConfig();
  const database = `nightshift_measure_${Date.now().toString(36)}_${randomBytes(2).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base.databaseUrl });
  await admin.connect();
  await admin.query(`create database ${database}`);
  const url = new URL(base.databaseUrl);
  url.pathname = `/${database}`;
  const lakeDir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-measure-'));
  const config: Config = { ...base, databaseUrl: url.toString(), lakeDir, lakeS3: null };
  const pool = createPool(config.databaseUrl, 4);
  const db = createDb(pool);
  try {
    await migrateToLatest(db);
    console.log(`database ${database}, lake ${lakeDir}`);
    const dates = o.day2
      ? [o.date, new Date(Date.parse(`${o.date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10)]
      : [o.date];
    const lake = await timed(() => writeLake(config, pool, o, dates));
    const n = lake.result.rows[0];
    console.log(
      `lake: ${lake.result.rows.join(' + ')} events of ${dates.join(', ')} in ${lake.result.files} files, ${(lake.result.bytes / 1e6).toFixed(1)} MB (written in ${lake.seconds.toFixed(1)} s)`,
    );

    const deps = { config, pool, db };
    const stage = createStageActivities(deps);
    const dims = createDimensionActivities(deps);
    const facts = createFactActivities(deps);
    const marts = createMartActivities(deps);
    const checks = createCheckActivities(deps);
    const loadOnce = async (label: string, date = o.date) => {
      const input = { date, run: { workflowId: 'measure-load', runId: `${database}-${label}` } };
      const s = await timed(() => stage.stageEvents(input));
      const d = await timed(() => dims.loadDimensions(input));
      const f = await timed(() => facts.loadFacts(input));
      const m = await timed(() => marts.refreshMarts({ dates: [date], run: input.run }));
      const c = await timed(() => checks.runChecks(input));
      const total = s.seconds + d.seconds + f.seconds + m.seconds + c.seconds;
      return { stage: s, dims: d, facts: f, marts: m, checks: c, total };
    };
    const first = await loadOnce('first');
    const baseline = await rawCopySeconds(pool, o.date);
    const reload = await loadOnce('reload');
    const day2 = o.day2 ? await loadOnce('day2', dates[1]) : undefined;
    const { rows: users } = await pool.query(
      `select count(distinct user_id)::int as users, count(*)::int as versions from warehouse.dim_user`,
    );

    const rate = (seconds: number) => Math.round(n / seconds);
    const rawRate = rate(baseline);
    const line = (label: string, seconds: number, note = '') =>
      console.log(
        `${label.padEnd(22)} ${seconds.toFixed(2).padStart(7)} s ${String(rate(seconds)).padStart(9)} rows/s ${(rate(seconds) / rawRate).toFixed(2).padStart(6)} x raw${note}`,
      );
    console.log(`\n${n} events, ${users[0].users} users, ${users[0].versions} dim_user versions`);
    line('raw COPY (baseline)', baseline);
    line('first: stage', first.stage.seconds);
    line(
      'first: dimensions',
      first.dims.seconds,
      `  (budget 2 x N / R = ${((2 * n) / rawRate).toFixed(2)} s, dims + marts)`,
    );
    line('first: facts', first.facts.seconds, '  (target >= 0.40 x raw)');
    line('first: marts', first.marts.seconds);
    line('first: checks', first.checks.seconds);
    line('first: total', first.total);
    line('reload: stage', reload.stage.seconds);
    line('reload: dimensions', reload.dims.seconds);
    line('reload: facts', reload.facts.seconds);
    line('reload: marts', reload.marts.seconds);
    line('reload: checks', reload.checks.seconds);
    line('reload: total', reload.total, `  (target <= first: ${first.total.toFixed(2)} s)`);
    if (day2) {
      const n2 = lake.result.rows[1];
      const ratio = (label: string, s2: number, s1: number) =>
        console.log(
          `${label.padEnd(22)} ${s2.toFixed(2).padStart(7)} s  ${n2} events  ${(s2 / s1).toFixed(2)} x day 1`,
        );
      ratio('day 2: stage', day2.stage.seconds, first.stage.seconds);
      ratio('day 2: dimensions', day2.dims.seconds, first.dims.seconds);
      ratio('day 2: facts', day2.facts.seconds, first.facts.seconds);
      ratio('day 2: marts', day2.marts.seconds, first.marts.seconds);
      ratio('day 2: checks', day2.checks.seconds, first.checks.seconds);
      ratio('day 2: total', day2.total, first.total);
      console.log('day 2       users:', JSON.stringify(day2.dims.result.user));
    }
    console.log('\nfirst load  facts:', JSON.stringify(first.facts.result));
    console.log('first load  users:', JSON.stringify(first.dims.result.user));
    console.log('reload      facts:', JSON.stringify(reload.facts.result));
    console.log('reload      users:', JSON.stringify(reload.dims.result.user));
  } finally {
    await db.destroy();
    rmSync(lakeDir, { recursive: true, force: true });
    // plain DROP: it stops autovacuum workers on the database, which WITH (FORCE) may not terminate for a non-superuser
    if (!o.keep) await admin.query(`drop database if exists ${database}`);
    await admin.end();
  }
  return EXIT.ok;
}

runCommand('measure-load', main);
