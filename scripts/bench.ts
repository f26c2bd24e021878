import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunRef } from '../activities/deps';
import { createActivities } from '../activities/index';
import {
  EXIT,
  EXIT_CODES_HELP,
  UsageError,
  calendarDate,
  parseCommandLine,
  runCommand,
  share,
  wholeNumber,
} from '../lib/cli';
import { loadConfig } from '../lib/config';
import { addDays } from '../lib/temporal';
import { closeClient, connectClient } from '../lib/temporal-client';
import { exportFactRows, rawCopySeconds, removeFile } from './bench/baseline';
import { type BenchEnv, benchName, createBenchEnv } from './bench/env';
import { produceDay1, produceSpool } from './bench/produce';
import { type BenchJson, linearity, linearityTable, newestRun } from './bench/linearity';
import { type PipelineRun, runDailyPipeline, startWorker } from './bench/temporal';

/**
 * `nightshift bench --events N` (`make bench EVENTS=N`): times every stage of the daily pipeline on the local stack against the machine's raw COPY
 * speed measured in the same run (SPEC section 8, issue 7). Prints a table on stdout, progress on stderr, and
 * writes the same figures as JSON to .data/bench/<timestamp>.json. Exits 0 when targets are missed (it is a
 * measurement); non-zero only on errors.
 */

const HELP = `Benchmark the Nightshift pipeline against the machine's raw COPY speed.

usage: nightshift bench [flags]
   or: make bench EVENTS=N

  --events N        events per day (default 1000000)
  --date DATE       day 1, YYYY-MM-DD; it and the next day should be weekdays (default: a Tuesday
                    picked from the clock, so the workflow id daily-DATE is not in use elsewhere)
  --seed S          generator seed (default 7)
  --bad-rate R      share of records the contract rejects (default 0.001)
  --partitions P    partitions of the fresh topics (default 4)
  --no-temporal     skip the run through Temporal
  --keep            keep the benchmark databases, topics and lakes
  --help            this text

Above 1,000,000 events, day 1 is also compared stage by stage with the newest 1,000,000-event run in
.data/bench/ (raw, and adjusted by the two runs' R): the target is at most 1.1 x the growth in events.

What it does, each part in a fresh database nightshift_bench_*, topic and lake:
  1. produces N events of day 1; times land, stage, dimensions, facts, marts, checks by calling the
     activities in-process (the code the worker runs);
  2. re-loads day 1 (every row already present): stage, dimensions, facts;
  3. produces N events of day 2 (the same simulated users), lands and loads it on top of day 1;
  4. the baseline R: a raw COPY of day 1's fact rows into an unindexed UNLOGGED table, three times
     spread over the run; R is the median;
  5. the whole daily pipeline of day 1 through Temporal, with \`nightshift worker\` in a child process
     (its peak RSS from /proc); Temporal's overhead = wall time - the sum of its activities.

${EXIT_CODES_HELP} Missed targets are a measurement, not a failure: exit 0.`;

interface Options {
  events: number;
  date: string;
  seed: number;
  badRate: number;
  partitions: number;
  temporal: boolean;
  keep: boolean;
}

/** A Tuesday between 2010 and 2019 that changes every hour: day 1 and day 2 are weekdays in the past. */
function defaultDate(): string {
  const firstTuesday = Date.UTC(2010, 0, 5);
  const weeks = Math.floor(Date.now() / 3_600_000) % 520;
  return new Date(firstTuesday + weeks * 7 * 86_400_000).toISOString().slice(0, 10);
}

const OPTIONS = {
  events: { type: 'string', default: '1000000' },
  date: { type: 'string' },
  seed: { type: 'string', default: '7' },
  'bad-rate': { type: 'string', default: '0.001' },
  partitions: { type: 'string', default: '4' },
  'no-temporal': { type: 'boolean', default: false },
  keep: { type: 'boolean', default: false },
} as const;

function parseBenchArgs(argv: string[]): Options | null {
  const parsed = parseCommandLine(argv, OPTIONS);
  if (parsed === 'help') return null;
  const v = parsed.values;
  let date = defaultDate();
  if (v.date !== undefined) {
    date = calendarDate('--date', v.date);
    const day = new Date(`${date}T00:00:00Z`).getUTCDay();
    if (day === 0 || day >= 5)
      throw new UsageError(`--date ${date}: pick a Monday to Thursday, so day 2 is a weekday with as many events`);
    if (addDays(date, 2) > new Date().toISOString().slice(0, 10))
      throw new UsageError(`--date ${date}: pick a date in the past`);
  }
  return {
    events: wholeNumber('--events', v.events, 1),
    date,
    seed: wholeNumber('--seed', v.seed, 0),
    badRate: share('--bad-rate', v['bad-rate'], { below1: true }),
    partitions: wholeNumber('--partitions', v.partitions, 1),
    temporal: !v['no-temporal'],
    keep: v.keep,
  };
}

// --- measuring -----------------------------------------------------------------------------------------------------

function log(message: string): void {
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

interface Row {
  stage: string;
  rows: number;
  seconds: number;
  /** Peak RSS in MiB of the process that ran the stage. */
  peakRssMiB?: number;
  note?: string;
}

const rss = new RssSampler();

async function timed<T>(rows: Row[], stage: string, count: (result: T) => number, fn: () => Promise<T>): Promise<T> {
  rss.reset();
  const started = performance.now();
  const result = await fn();
  const seconds = (performance.now() - started) / 1000;
  const row: Row = { stage, rows: count(result), seconds, peakRssMiB: rss.peakMiB() };
  rows.push(row);
  log(`${stage}: ${row.rows} rows in ${seconds.toFixed(2)} s (${Math.round(row.rows / seconds)} rows/s)`);
  return result;
}

function activitiesOf(env: BenchEnv) {
  return createActivities({ config: env.config, pool: env.pool, db: env.db });
}

/** Land → stage → dimensions → facts → marts → checks of one date, each step timed; returns the day's rows. */
async function runDay(rows: Row[], env: BenchEnv, label: string, date: string, run: RunRef): Promise<void> {
  const a = activitiesOf(env);
  await timed(
    rows,
    `${label}: land`,
    (r) => r.recordsRead,
    () => a.landEvents({}),
  );
  await loadDate(rows, env, label, date, run);
  const events = rows[rows.length - 1].rows;
  await timed(
    rows,
    `${label}: marts`,
    () => events,
    () => a.refreshMarts({ dates: [date], run }),
  );
  await timed(
    rows,
    `${label}: checks`,
    () => events,
    () => a.runChecks({ date, run }),
  );
}

async function loadDate(rows: Row[], env: BenchEnv, label: string, date: string, run: RunRef): Promise<void> {
  const a = activitiesOf(env);
  const staged = await timed(
    rows,
    `${label}: stage`,
    (r) => r.rowsStaged,
    () => a.stageEvents({ date, run }),
  );
  await timed(
    rows,
    `${label}: dimensions`,
    () => staged.rowsStaged,
    () => a.loadDimensions({ date, run }),
  );
  await timed(
    rows,
    `${label}: facts`,
    (r) => r.rowsRead,
    () => a.loadFacts({ date, run }),
  );
}

/** The whole daily pipeline of `date` through Temporal, `scripts/worker.ts` running in a child process. */
async function temporalRun(rows: Row[], tenv: BenchEnv, date: string): Promise<PipelineSummary> {
  const worker = await startWorker(tenv.config);
  let pipelinePeak = 0;
  const sampler = setInterval(() => {
    pipelinePeak = Math.max(pipelinePeak, worker.memory().rssMiB);
  }, 100);
  try {
    const ready = worker.memory();
    const client = await connectClient(tenv.config);
    let run: PipelineRun;
    try {
      log(
        `Temporal: worker ready (RSS ${Math.round(ready.rssMiB)} MiB, peak so far ${Math.round(ready.hwmMiB)} MiB); starting dailyPipelineWorkflow ${date}`,
      );
      run = await runDailyPipeline(client, tenv.config, date);
    } finally {
      await closeClient(client);
    }
    const mem = worker.memory();
    pipelinePeak = Math.max(pipelinePeak, mem.rssMiB);
    const activitySeconds = run.activities.reduce((s, a) => s + a.seconds, 0);
    const overheadSeconds = run.wallSeconds - activitySeconds;
    log(
      `Temporal: pipeline ${run.wallSeconds.toFixed(2)} s, activities ${activitySeconds.toFixed(2)} s, worker peak RSS ${Math.round(mem.hwmMiB)} MiB`,
    );
    const landed = run.output.summary.recordsLanded;
    for (const a of run.activities) {
      const bookkeeping = a.activity === 'recordPipelineRun' || a.activity === 'sendAlerts';
      rows.push({
        stage: `temporal: ${a.activity}`,
        rows: bookkeeping ? 0 : landed,
        seconds: a.seconds,
        note: a.queuedSeconds >= 0.05 ? `queued ${a.queuedSeconds.toFixed(2)} s` : undefined,
      });
    }
    rows.push({
      stage: 'temporal: whole pipeline',
      rows: landed,
      seconds: run.wallSeconds,
      peakRssMiB: mem.hwmMiB,
      note: 'worker',
    });
    return {
      wallSeconds: run.wallSeconds,
      activitySeconds,
      overheadSeconds,
      overheadShare: overheadSeconds / run.wallSeconds,
      workerPeakRssMiB: mem.hwmMiB,
      workerReadyRssMiB: ready.rssMiB,
      workerPipelinePeakRssMiB: pipelinePeak,
      run,
    };
  } finally {
    clearInterval(sampler);
    await worker.stop();
  }
}

// --- the report ----------------------------------------------------------------------------------------------------

interface Target {
  target: string;
  pass: boolean;
  measured: string;
}

const sum = (rows: Row[], prefix: string, stages: string[]) =>
  stages.reduce((s, stage) => s + (rows.find((r) => r.stage === `${prefix}: ${stage}`)?.seconds ?? NaN), 0);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function targets(o: Options, rows: Row[], R: number, pipeline: PipelineSummary | null): Target[] {
  const n = o.events;
  const scale = n / 1_000_000;
  const t: Target[] = [];
  const find = (stage: string) => rows.find((r) => r.stage === stage) as Row;
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  if (pipeline) {
    const limit = 60 * scale;
    t.push({
      target: `pipeline through Temporal < ${limit.toFixed(1)} s${n === 1_000_000 ? '' : ' (60 s per 1M events, scaled)'}`,
      pass: pipeline.wallSeconds < limit,
      measured: `${pipeline.wallSeconds.toFixed(1)} s`,
    });
  }
  const land = find('day 1: land');
  t.push({
    target: 'landing >= 60,000 events/s',
    pass: land.rows / land.seconds >= 60_000,
    measured: `${Math.round(land.rows / land.seconds)} events/s`,
  });
  const facts = find('day 1: facts');
  const factsRatio = facts.rows / facts.seconds / R;
  t.push({ target: 'facts >= 0.40 x R', pass: factsRatio >= 0.4, measured: `${factsRatio.toFixed(2)} x R` });
  const load = ['stage', 'dimensions', 'facts'];
  const first = sum(rows, 'day 1', load);
  const reload = sum(rows, 'reload', load);
  t.push({
    target: 're-load <= first load (stage+dims+facts)',
    pass: reload <= first,
    measured: `${reload.toFixed(1)} s vs ${first.toFixed(1)} s`,
  });
  const dimsMarts = sum(rows, 'day 1', ['dimensions', 'marts']);
  t.push({
    target: `dimensions + marts <= 2 N / R = ${((2 * n) / R).toFixed(2)} s`,
    pass: dimsMarts <= (2 * n) / R,
    measured: `${dimsMarts.toFixed(2)} s`,
  });
  if (pipeline) {
    t.push({
      target: 'worker peak RSS < 1 GiB',
      pass: pipeline.workerPeakRssMiB < 1024,
      measured: `${Math.round(pipeline.workerPeakRssMiB)} MiB`,
    });
  }
  const day = ['land', 'stage', 'dimensions', 'facts', 'marts', 'checks'];
  const day1 = sum(rows, 'day 1', day);
  const day2 = sum(rows, 'day 2', day);
  t.push({
    target: 'day 2 <= 1.25 x day 1 (land..checks)',
    pass: day2 <= 1.25 * day1,
    measured: `${day2.toFixed(1)} s vs ${day1.toFixed(1)} s (${(day2 / day1).toFixed(2)} x)`,
  });
  if (pipeline) {
    t.push({
      target: 'Temporal overhead < 5 %',
      pass: pipeline.overheadShare < 0.05,
      measured: `${pct(pipeline.overheadShare)} (${pipeline.overheadSeconds.toFixed(2)} s)`,
    });
  }
  return t;
}

interface PipelineSummary {
  wallSeconds: number;
  activitySeconds: number;
  overheadSeconds: number;
  overheadShare: number;
  workerPeakRssMiB: number;
  workerReadyRssMiB: number;
  workerPipelinePeakRssMiB: number;
  run: PipelineRun;
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

function table(rows: Row[], R: number): string {
  const header = ['stage', 'rows', 'seconds', 'rows/s', 'x R', 'peak RSS'];
  const body = rows.map((r) => {
    const rate = r.rows / r.seconds;
    return [
      r.stage + (r.note ? ` (${r.note})` : ''),
      fmtInt(r.rows),
      r.seconds.toFixed(2),
      fmtInt(rate),
      (rate / R).toFixed(2),
      r.peakRssMiB === undefined ? '' : `${Math.round(r.peakRssMiB)} MiB`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

// --- main ----------------------------------------------------------------------------------------------------------

export async function main(argv: string[]): Promise<number> {
  const parsed = parseBenchArgs(argv);
  if (parsed === null) {
    console.log(HELP);
    return EXIT.ok;
  }
  const o = parsed;
  const loadAtStart = os.loadavg();
  const base = loadConfig();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const benchDir = path.resolve('.data', 'bench');
  const workDir = path.join(benchDir, `work-${stamp}`);
  mkdirSync(workDir, { recursive: true });
  const day2 = addDays(o.date, 1);
  const rows: Row[] = [];
  const baselines: number[] = [];
  const factRowsFile = path.join(workDir, 'fact_rows.copy');
  let factRows = 0;
  const baseline = async (env: BenchEnv, when: string) => {
    const { seconds, rows: copied } = await rawCopySeconds(env.pool, factRowsFile);
    if (copied !== factRows) throw new Error(`baseline copied ${copied} rows, expected ${factRows}`);
    baselines.push(seconds);
    log(
      `baseline (${when}): raw COPY of ${copied} rows in ${seconds.toFixed(2)} s (${fmtInt(copied / seconds)} rows/s)`,
    );
  };
  log(`${o.events} events a day; day 1 ${o.date}, day 2 ${day2}; work files in ${workDir}`);

  // every part gets a fresh database, topic and lake; day 1 is generated once into both topics, day 2 spooled
  const env = await createBenchEnv(base, workDir, { partitions: o.partitions });
  let tenv: BenchEnv | null = null;
  let pipeline: PipelineSummary | null = null;
  try {
    if (o.temporal) {
      tenv = await createBenchEnv(base, workDir, { partitions: o.partitions, poolSize: 2 });
      tenv.config.temporalTaskQueue = benchName('nightshift_bench');
    }
    log(`database ${env.name}, topic ${env.config.kafkaTopic}${tenv ? `; for Temporal: ${tenv.name}` : ''}`);
    const spoolFile = path.join(workDir, 'day2.spool');
    const topics = [env.config.kafkaTopic, ...(tenv ? [tenv.config.kafkaTopic] : [])];
    const produced = await produceDay1(
      base,
      { events: o.events, start: o.date, seed: o.seed, badRate: o.badRate },
      topics,
      spoolFile,
      (n) => log(`  produced ${n}`),
    );
    log(
      `day 1: produced ${produced.records} records (${produced.bad} bad) into ${topics.length} topic(s) in ${produced.seconds.toFixed(1)} s`,
    );

    // 1-3: the stages in-process, on one database
    await runDay(rows, env, 'day 1', o.date, { workflowId: 'bench', runId: `${env.name}-day1` });
    factRows = await exportFactRows(env.pool, o.date, factRowsFile);
    await baseline(env, 'after day 1');
    await loadDate(rows, env, 'reload', o.date, { workflowId: 'bench', runId: `${env.name}-reload` });
    const produced2 = await produceSpool(env.config, spoolFile);
    removeFile(spoolFile);
    log(`day 2: produced ${produced2.records} records (${produced2.bad} bad) in ${produced2.seconds.toFixed(1)} s`);
    await runDay(rows, env, 'day 2', day2, { workflowId: 'bench', runId: `${env.name}-day2` });
    await baseline(env, 'after day 2');

    // 5: the whole pipeline through Temporal, on its own database, topic and lake
    if (tenv) {
      log(`Temporal: task queue ${tenv.config.temporalTaskQueue}`);
      pipeline = await temporalRun(rows, tenv, o.date);
      await baseline(tenv, 'after the Temporal run');
    }
  } finally {
    await env.cleanup(o.keep);
    await tenv?.cleanup(o.keep);
    // the work files (lakes, day 2's spool, the baseline's rows) go too, also when a stage failed
    if (!o.keep) rmSync(workDir, { recursive: true, force: true });
  }
  rss.stop();

  const R = factRows / median(baselines);
  const all: Row[] = [
    {
      stage: 'baseline: raw COPY (R)',
      rows: factRows,
      seconds: median(baselines),
      note: `median of ${baselines.length}`,
    },
    ...rows,
  ];
  const checks = targets(o, rows, R, pipeline);
  // above 1M events: the cost of day 1 against the newest 1M run, which should grow at most 1.1 x the events
  const reference = o.events > 1_000_000 ? newestRun(benchDir, 1_000_000) : null;
  const linear =
    reference &&
    linearity(
      {
        startedAt: stamp,
        options: o,
        baseline: { rowsPerSecond: R },
        stages: all.map((r) => ({ stage: r.stage, seconds: r.seconds })),
      } satisfies BenchJson,
      reference.json,
      reference.file,
    );
  if (linear) {
    const total = linear.rows[linear.rows.length - 1];
    checks.push({
      target: `day 1 <= ${linear.limit.toFixed(1)} x the 1M run (R-adjusted)`,
      pass: total.adjusted <= linear.limit,
      measured: `${total.adjusted.toFixed(1)} x (raw ${total.raw.toFixed(1)} x)`,
    });
  }
  const output = [
    `Nightshift bench: ${fmtInt(o.events)} events a day, ${o.partitions} partitions, bad rate ${o.badRate}; R = ${fmtInt(R)} rows/s`,
    `machine: ${os.cpus().length} cores, load average ${loadAtStart[0].toFixed(1)} at the start, ${os.loadavg()[0].toFixed(1)} at the end`,
    '',
    table(all, R),
    '',
    ...(pipeline
      ? [
          `Temporal: wall ${pipeline.wallSeconds.toFixed(2)} s = activities ${pipeline.activitySeconds.toFixed(2)} s + overhead ${pipeline.overheadSeconds.toFixed(2)} s (${(pipeline.overheadShare * 100).toFixed(1)} %)`,
          `worker RSS: ${Math.round(pipeline.workerReadyRssMiB)} MiB when ready, ${Math.round(pipeline.workerPipelinePeakRssMiB)} MiB peak during the pipeline, ${Math.round(pipeline.workerPeakRssMiB)} MiB peak over its life (VmHWM)`,
          '',
        ]
      : []),
    ...(linear ? [linearityTable(linear, o.events), ''] : []),
    'targets:',
    ...checks.map((c) => `  ${c.pass ? 'PASS' : 'FAIL'}  ${c.target.padEnd(52)} ${c.measured}`),
  ].join('\n');
  process.stdout.write(`${output}\n`);

  const jsonFile = path.join(benchDir, `${stamp}.json`);
  const json = {
    startedAt: stamp,
    options: o,
    machine: {
      cpus: os.cpus().length,
      node: process.version,
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: os.loadavg(),
    },
    baseline: { rows: factRows, secondsSamples: baselines, rowsPerSecond: R },
    stages: all.map((r) => ({ ...r, rowsPerSecond: r.rows / r.seconds, ratioToR: r.rows / r.seconds / R })),
    pipeline: pipeline && { ...pipeline, run: { ...pipeline.run, output: pipeline.run.output.summary } },
    benchPeakRssMiB: process.resourceUsage().maxRSS / 1024,
    targets: checks,
    linearity: linear,
    table: output,
  };
  writeFileSync(jsonFile, `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${jsonFile}`);
  return EXIT.ok;
}

if (require.main === module) runCommand('bench', main);
