import type { RunRef } from '../../activities/deps';
import { createActivities } from '../../activities/index';
import { startLandingThreadsAhead } from '../../activities/land';
import type { BenchEnv } from './env';

/** Timing the stages of a path: each activity called in-process (the code the worker runs), one row per stage. */

export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** Peak RSS of this process while a stage runs, sampled every 50 ms and at the stage's end. */
class RssSampler {
  private peak = 0;
  private readonly timer = setInterval(() => this.sample(), 50);
  constructor() {
    this.timer.unref();
  }
  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
  }
  reset(): void {
    this.peak = process.memoryUsage.rss();
  }
  peakMiB(): number {
    this.sample();
    return this.peak / 2 ** 20;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

export const rss = new RssSampler();

export interface Row {
  stage: string;
  /** What the stage reported handling (records read, rows staged, ...). */
  rows: number;
  seconds: number;
  /** The path's N: the events of the date it loads; N/R = seconds x R / n. */
  n?: number;
  /** Peak RSS in MiB of the process that ran the stage. */
  peakRssMiB?: number;
  note?: string;
}

/** The stages summed as a path's load: stage through checks (issue 17). */
export const LOAD_STAGES = ['stage', 'dimensions', 'facts', 'marts', 'checks'] as const;

export async function timed<T>(
  rows: Row[],
  stage: string,
  n: number | undefined,
  count: (result: T) => number,
  fn: () => Promise<T>,
  quiet = false,
): Promise<T> {
  rss.reset();
  const started = performance.now();
  const result = await fn();
  const seconds = (performance.now() - started) / 1000;
  const row: Row = { stage, rows: count(result), seconds, n, peakRssMiB: rss.peakMiB() };
  rows.push(row);
  if (!quiet) log(`${stage}: ${row.rows} rows in ${seconds.toFixed(2)} s (${Math.round(row.rows / seconds)} rows/s)`);
  return result;
}

export function activitiesOf(env: BenchEnv) {
  return createActivities({ config: env.config, pool: env.pool, db: env.db });
}

/**
 * What `nightshift worker` does when it boots for its landings (starts the landing threads and warms them and its own
 * thread up), timed as its own row: this process stands in for the worker, so its first landing takes those threads
 * (and its later landings start theirs, as the worker's do).
 */
export async function startLandingThreadsRow(rows: Row[]): Promise<void> {
  await timed(
    rows,
    'worker start: landing threads',
    undefined,
    () => 0,
    () => startLandingThreadsAhead(),
  );
}

/** Lands what the topic holds beyond the last landing, timed as `<label>: land`. */
export async function land(rows: Row[], env: BenchEnv, label: string, n: number, quiet = false) {
  const a = activitiesOf(env);
  return timed(
    rows,
    `${label}: land`,
    n,
    (r) => r.recordsRead,
    () => a.landEvents({}),
    quiet,
  );
}

/** Stage → dimensions → facts → marts → checks of one date, each step timed as `<label>: <step>`. */
export async function loadDate(
  rows: Row[],
  env: BenchEnv,
  label: string,
  date: string,
  n: number,
  run: RunRef,
  quiet = false,
): Promise<{ rowsStaged: number; duplicates: number; factRows: number }> {
  const a = activitiesOf(env);
  const staged = await timed(
    rows,
    `${label}: stage`,
    n,
    (r) => r.rowsStaged,
    () => a.stageEvents({ date, run }),
    quiet,
  );
  await timed(
    rows,
    `${label}: dimensions`,
    n,
    () => staged.rowsStaged,
    () => a.loadDimensions({ date, run }),
    quiet,
  );
  const facts = await timed(
    rows,
    `${label}: facts`,
    n,
    (r) => r.rowsRead,
    () => a.loadFacts({ date, run }),
    quiet,
  );
  await timed(
    rows,
    `${label}: marts`,
    n,
    () => facts.rowsDistinct,
    () => a.refreshMarts({ dates: [date], run }),
    quiet,
  );
  await timed(
    rows,
    `${label}: checks`,
    n,
    () => facts.rowsDistinct,
    () => a.runChecks({ date, run }),
    quiet,
  );
  return { rowsStaged: staged.rowsStaged, duplicates: staged.duplicates, factRows: facts.rowsDistinct };
}

/** The seconds of `<prefix>: <stage>` summed over `stages`; NaN when one is missing. */
export function sumStages(rows: Row[], prefix: string, stages: readonly string[]): number {
  return stages.reduce((s, stage) => s + (rows.find((r) => r.stage === `${prefix}: ${stage}`)?.seconds ?? NaN), 0);
}

/** The fact rows a date has in the warehouse. */
export async function factCount(env: BenchEnv, date: string): Promise<number> {
  const { rows } = await env.pool.query<{ n: string }>(
    'select count(*) as n from warehouse.fact_events where date_key = $1',
    [Number(date.replace(/-/g, ''))],
  );
  return Number(rows[0].n);
}

/** The distinct users with facts on a date (its warehouse.user_days rows, one per user). */
export async function dateUsers(env: BenchEnv, date: string): Promise<number> {
  const { rows } = await env.pool.query<{ n: string }>(
    'select count(*) as n from warehouse.user_days where date_key = $1',
    [Number(date.replace(/-/g, ''))],
  );
  return Number(rows[0].n);
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
