import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
import { warmStageThread } from '../activities/staging/threads';
import { loadConfig } from '../lib/config';
import { addDays } from '../lib/temporal';
import { closeClient, connectClient } from '../lib/temporal-client';
import { exportFactRows, rawCopySeconds } from './bench/baseline';
import { type BenchEnv, benchName, createBenchEnv } from './bench/env';
import { type HistoryRun, historyTable, runHistory } from './bench/history';
import { type BenchJson, linearity, linearityTable, newestRun } from './bench/linearity';
import {
  type Row,
  dateUsers,
  factCount,
  land,
  loadDate,
  log,
  median,
  rss,
  startLandingThreadsRow,
  timed,
} from './bench/measure';
import { produceDay1, produceSpool } from './bench/produce';
import { type SettleMode, type SettleReport, Settler } from './bench/settle';
import { type PathEvents, type Target, evaluate, pathsTable, stageTable, targetLines } from './bench/report';
import { type PipelineRun, runDailyPipeline, startWorker } from './bench/temporal';

/**
 * `nightshift bench` (`make bench EVENTS=N HISTORY=D HISTORY_EVENTS=M`): times every path a user meets (SPEC
 * section 8, issue 17) on the local stack against the machine's raw COPY speed measured in the same run. Prints a
 * table, a paths block and the targets on stdout, progress on stderr, and writes the same figures as JSON to
 * .data/bench/<timestamp>.json. Exits 0 when targets are missed (it is a measurement); non-zero only on errors.
 */

const HELP = `Benchmark every path of the Nightshift pipeline against the machine's raw COPY speed.

usage: nightshift bench [flags]
   or: make bench EVENTS=N ROUNDS=K HISTORY=D HISTORY_EVENTS=M USERS=U

  --events N          events per day (default 1000000)
  --rounds K          rounds of the paths and of the Temporal run, each in a fresh database, topic and lake;
                      each stage is judged on its median over the rounds (default 3; 1 above 1,000,000 events)
  --history D         days of the history run (default 30; 0 skips it)
  --history-events M  events per day of the history run (default 200000)
  --date DATE         day 1, YYYY-MM-DD, a Monday to Thursday in the past (also the history's first day;
                      default: a Tuesday picked from the clock, so the workflow id daily-DATE is not in use)
  --seed S            generator seed (default 7)
  --bad-rate R        share of records the contract rejects (default 0.001)
  --partitions P      partitions of the fresh topics (default 4)
  --users U           day 1 and day 2 from a steady world of U users, as the history's (a new user takes the
                      place of one who leaves, so both days have about as many distinct users), instead of the
                      growing world where every new user stays and day 2 has about twice day 1's users
  --no-settle         run the paths back to back, as the bench did before it settled: each path also pays for the
                      write-back of what ran before it
  --cold              settle, and drop the page cache too (needs root), so every path starts cold
  --no-temporal       skip the run through Temporal
  --keep              keep the benchmark databases, topics and lakes
  --help              this text

Before each path, each Temporal run, each history day and each baseline COPY the machine is settled, as the
hours between two daily runs settle it in production: a CHECKPOINT (the role needs pg_checkpoint; the local
stack grants it when it creates the role) and a sync, outside every timed stage. Here the broker, the lake
and the warehouse share one disk and page cache, and back to back a path pays for the write-back of the ones
before it. The settle then fills the free memory above 0.5 GiB with clean page cache (a sparse file read in the
work folder, nothing written to disk; not with --cold), as such a server has its memory in use: on a virtual
machine that hands free memory back to its host, a path's first writes into it cost a fault on the host each.

R is the baseline: a raw COPY of day 1's fact rows into an unindexed UNLOGGED table, measured in every round
after day 1, after day 2 and after the Temporal run, and after the history run; R is the median, in rows/s.
Each path is shown in N/R-seconds = seconds x R / N (N: the path's events), i.e. in units of one raw COPY of
its rows. A path's "load" is stage + dimensions + facts + marts + checks, each activity called in-process (the
code the worker runs), each stage timed, and judged on each stage's median over the rounds. First, as
\`nightshift worker\` does when it starts, the landing threads and a stage thread are started and warmed (rows
of their own, in no path).

The paths, in each round, in a fresh database nightshift_bench_*, topic and lake (one world of generated
users; each round stands for a worker that has just started, so it starts and warms the threads first):
  first day     N events of day 1 produced (the first round generates and spools both days; the others
                produce the same records from the spools), landed, loaded;
  re-load       day 1 loaded again with nothing new;
  re-delivery   day 1's very same records produced again from the spool (new Kafka offsets, every event_id
                already loaded), landed, and day 1 loaded; its fact rows must stay what they were;
  next day      N events of day 2 (the same users come back, and new ones: see --users), landed and loaded on
                top of day 1;
  Temporal      the whole daily pipeline of day 1, landing included, in a database, topic and lake of its
                own, a fresh \`nightshift worker\` in a child process (its peak RSS from /proc); Temporal's
                overhead = wall time - the sum of its activities; judged: the round of median wall time, with
                the highest worker RSS of every round;
  history       in a database, topic and lake of its own: one world over D consecutive days of M events each
                (weekends as busy as weekdays), produced day by day; each day is landed on its own (one landing
                per day, as the daily schedule does) and loaded stage -> checks, in date order. The history
                runs for minutes, over which the machine's speed drifts, so it has a baseline of its own: after
                each day's load, a raw COPY of history day 1's fact rows; R near a day is the median of the
                COPYs after it and its neighbours (days 1-3 for day 1, D-2..D for day D). Below the series,
                each stage's trend (shown, not judged): fitted day D / fitted day 1 of a least-squares line
                through every day; the landing touches no warehouse table, so its trend is the machine's.

Targets (set for 1,000,000 events; judged at any size, so small runs fail on fixed costs):
  first-day load <= 4.0 N/R; landing >= 0.5 x R events/s; whole pipeline through Temporal, landing
  included <= 6.5 N/R; re-delivery load <= 4.0 N/R; re-load with nothing new <= 0.3 N/R; next day's load
  <= 1.1 x the first day's; history: day D's load <= 1.1 x day 1's of the history run, in seconds, each day
  read as the median of three (days D-2..D over days 1-3; under 6 days, the single days); beside it, not
  judged: the single days' ratio, and the same in N/R with R near each from the history's own COPYs;
  worker peak RSS < 1 GiB. Kept from issue 7: facts >= 0.40 x R, dimensions + marts <= 2 N/R, Temporal
  overhead < 5 %. Above 1,000,000 events (e.g. --events 10000000), day 2 <= 1.1 x day 1 is the next-day
  target above, and day 1's load is compared stage by stage with the newest 1,000,000-event run in
  .data/bench/ (raw, and adjusted by the two runs' R): at most 1.05 x the growth in events (10.5 x at 10M).

${EXIT_CODES_HELP} Missed targets are a measurement, not a failure: exit 0.`;

interface Options {
  events: number;
  date: string;
  seed: number;
  badRate: number;
  partitions: number;
  /** A steady world of this many users for day 1 and day 2 (GenerateOptions.users); undefined: the growing one. */
  users: number | undefined;
  temporal: boolean;
  /** What happens before each measured path (scripts/bench/settle.ts). */
  settle: SettleMode;
  /**
   * Whether each settle filled the free memory with page cache (Settler.fillFreeMemory): with 'settle' since it
   * does. Runs compared with each other (the linearity's reference) must agree on it.
   */
  fillFree: boolean;
  keep: boolean;
  history: number;
  historyEvents: number;
  rounds: number;
}

/** A Tuesday between 2010 and 2019 that changes every hour: day 1 and day 2 are weekdays in the past. */
function defaultDate(): string {
  const firstTuesday = Date.UTC(2010, 0, 5);
  const weeks = Math.floor(Date.now() / 3_600_000) % 520;
  return new Date(firstTuesday + weeks * 7 * 86_400_000).toISOString().slice(0, 10);
}

/** Rounds when --rounds is not given: 3, or 1 above 1,000,000 events, where one round takes 25 minutes or more. */
function defaultRounds(events: number): number {
  return events > 1_000_000 ? 1 : 3;
}

const OPTIONS = {
  events: { type: 'string', default: '1000000' },
  rounds: { type: 'string' },
  history: { type: 'string', default: '30' },
  'history-events': { type: 'string', default: '200000' },
  date: { type: 'string' },
  seed: { type: 'string', default: '7' },
  'bad-rate': { type: 'string', default: '0.001' },
  partitions: { type: 'string', default: '4' },
  users: { type: 'string' },
  'no-temporal': { type: 'boolean', default: false },
  'no-settle': { type: 'boolean', default: false },
  cold: { type: 'boolean', default: false },
  keep: { type: 'boolean', default: false },
} as const;

function parseBenchArgs(argv: string[]): Options | null {
  const parsed = parseCommandLine(argv, OPTIONS);
  if (parsed === 'help') return null;
  const v = parsed.values;
  const history = wholeNumber('--history', v.history, 0);
  let date = defaultDate();
  if (v.date !== undefined) {
    date = calendarDate('--date', v.date);
    const day = new Date(`${date}T00:00:00Z`).getUTCDay();
    if (day === 0 || day >= 5)
      throw new UsageError(`--date ${date}: pick a Monday to Thursday, so day 2 is a weekday with as many events`);
    if (addDays(date, Math.max(2, history)) > new Date().toISOString().slice(0, 10))
      throw new UsageError(
        `--date ${date}: pick a date in the past, ${Math.max(2, history)} days before today or more`,
      );
  }
  const events = wholeNumber('--events', v.events, 1);
  if (v.cold && v['no-settle']) throw new UsageError('--cold settles the machine: leave out --no-settle');
  return {
    events,
    date,
    seed: wholeNumber('--seed', v.seed, 0),
    badRate: share('--bad-rate', v['bad-rate'], { below1: true }),
    partitions: wholeNumber('--partitions', v.partitions, 1),
    users: v.users === undefined ? undefined : wholeNumber('--users', v.users, 1),
    temporal: !v['no-temporal'],
    settle: v.cold ? 'cold' : v['no-settle'] ? 'off' : 'settle',
    fillFree: !v.cold && !v['no-settle'],
    keep: v.keep,
    history,
    historyEvents: wholeNumber('--history-events', v['history-events'], 1),
    rounds: v.rounds === undefined ? defaultRounds(events) : wholeNumber('--rounds', v.rounds, 1),
  };
}

// --- the run through Temporal --------------------------------------------------------------------------------------

/** The activities that handle the day's records; the others (run records, alerts, re-load lists) are bookkeeping. */
const PIPELINE_STEPS = new Set([
  'landEvents',
  'stageEvents',
  'loadDimensions',
  'loadFacts',
  'refreshMarts',
  'runChecks',
]);

/** The whole daily pipeline of `date` through Temporal, `scripts/worker.ts` running in a child process. */
async function temporalRun(rows: Row[], tenv: BenchEnv, date: string, n: number): Promise<PipelineSummary> {
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
      const bookkeeping = !PIPELINE_STEPS.has(a.activity);
      rows.push({
        stage: `temporal: ${a.activity}`,
        rows: bookkeeping ? 0 : landed,
        seconds: a.seconds,
        n: bookkeeping ? undefined : n,
        note: a.queuedSeconds >= 0.05 ? `queued ${a.queuedSeconds.toFixed(2)} s` : undefined,
      });
    }
    rows.push({
      stage: 'temporal: whole pipeline',
      rows: landed,
      seconds: run.wallSeconds,
      n,
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

function settleLine(s: SettleReport): string {
  if (s.mode === 'off') return 'settled: no (--no-settle): each path ran right after the one before it';
  const what = s.checkpoint ? 'CHECKPOINT and sync' : 'sync only (the role may not CHECKPOINT)';
  const line = `settled: ${s.count} times, ${what}${s.mode === 'cold' ? ', page cache dropped (--cold)' : ''}, ${s.seconds.toFixed(1)} s in all, outside every timed stage`;
  const days = ['day 1', 'day 2'].flatMap((day) => {
    const gib = s.free
      .filter((f) => f.before === day && f.gib !== null)
      .map((f) => `${f.gib!.toFixed(1)}${f.filledGiB > 0 ? ` (${f.filledGiB.toFixed(1)} filled first)` : ''}`);
    return gib.length === 0 ? [] : [`before ${day} ${gib.join(', ')} GiB`];
  });
  // free memory costs a first write on a virtual machine that returns it to its host (scripts/bench/settle.ts); the
  // settle fills it with page cache, and says how much
  return days.length === 0 ? line : `${line}\n  memory free: ${days.join('; ')}`;
}

/** Counts that say the paths did what they claim: every record landed, no fact row added by a re-delivery. */
interface Counts {
  day1Produced: number;
  day1Bad: number;
  day1Landed: number;
  factsAfterDay1: number;
  factsAfterReload: number;
  redeliveryProduced: number;
  redeliveryLanded: number;
  redeliveryStaged: number;
  redeliveryDuplicates: number;
  factsAfterRedelivery: number;
  ok: boolean;
}

function countsLines(c: Counts): string[] {
  const expected = c.day1Produced - c.day1Bad;
  return [
    `counts (${c.ok ? 'ok' : 'MISMATCH'}): day 1 produced ${fmtInt(c.day1Produced)} (${fmtInt(c.day1Bad)} bad), landed ${fmtInt(c.day1Landed)}; fact rows of day 1 ${fmtInt(c.factsAfterDay1)} (N - bad = ${fmtInt(expected)}),`,
    `  after the re-load ${fmtInt(c.factsAfterReload)}; re-delivery produced ${fmtInt(c.redeliveryProduced)}, landed ${fmtInt(c.redeliveryLanded)}, staged ${fmtInt(c.redeliveryStaged)} (${fmtInt(c.redeliveryDuplicates)} duplicates dropped), fact rows after it ${fmtInt(c.factsAfterRedelivery)}`,
  ];
}

// --- one round of the paths ----------------------------------------------------------------------------------------

/** Day 1's and day 2's records, spooled once by the first round and produced again from the spools by the others. */
interface Spools {
  day1: string;
  day2: string;
}

interface RoundInput {
  base: ReturnType<typeof loadConfig>;
  workDir: string;
  o: Options;
  round: number;
  spools: Spools;
  /** Day 1's fact rows, exported once (by the first round) for every raw COPY of the run. */
  factRowsFile: string;
  /** Told the rows the first round exported into factRowsFile. */
  exported: (rows: number) => void;
  baseline: (env: BenchEnv, when: string) => Promise<void>;
  settler: Settler;
}

interface RoundResult {
  rows: Row[];
  counts: Counts;
  n: PathEvents;
  /** Distinct users with facts on day 1 and on day 2. */
  users: { day1: number; day2: number };
  pipeline: PipelineSummary | null;
}

/**
 * One round of the in-process paths (first day, re-load, re-delivery, next day) in a fresh database, topic and lake,
 * then the whole pipeline through Temporal in a fresh one of its own. Each round stands for a worker that has just
 * started: the landing threads and a stage thread are started and warmed first, as `nightshift worker` does. The
 * first round generates the records (day 1 straight into its topic, both days into spools, and exports day 1's fact
 * rows for the baseline); the others produce the same records from the spools.
 */
async function runRound(input: RoundInput): Promise<RoundResult> {
  const { base, workDir, o, round, spools, factRowsFile, exported, baseline, settler } = input;
  const first = round === 1;
  const day2 = addDays(o.date, 1);
  const rows: Row[] = [];
  const label = `round ${round} of ${o.rounds}`;
  const env = await createBenchEnv(base, workDir, { partitions: o.partitions });
  let result: Omit<RoundResult, 'pipeline'>;
  try {
    log(`${label}: database ${env.name}, topic ${env.config.kafkaTopic}`);
    const produced = first
      ? await produceDay1(
          base,
          { events: o.events, start: o.date, seed: o.seed, badRate: o.badRate, users: o.users },
          [env.config.kafkaTopic],
          spools,
          (k) => log(`  produced ${k}`),
        )
      : await produceSpool(env.config, spools.day1);
    log(
      `day 1: produced ${produced.records} records (${produced.bad} bad) in ${produced.seconds.toFixed(1)} s${first ? ', and spooled both days' : ''}`,
    );
    const run = (name: string) => ({ workflowId: 'bench', runId: `${env.name}-${name}` });

    // what `nightshift worker` does when it starts (scripts/worker.ts): the landing threads and a stage thread
    // start and warm up, each timed on a row of its own, in no path
    await startLandingThreadsRow(rows);
    await timed(
      rows,
      'worker start: stage thread',
      undefined,
      () => 0,
      () => warmStageThread(),
    );

    // first day: land, then stage → checks
    await settler.settle(env.pool, 'day 1');
    const landed1 = await land(rows, env, 'day 1', produced.records);
    await loadDate(rows, env, 'day 1', o.date, produced.records, run('day1'));
    const factRows = first ? await exportFactRows(env.pool, o.date, factRowsFile) : await factCount(env, o.date);
    if (first) exported(factRows);
    await baseline(env, `${label}, after day 1`);

    // re-load with nothing new: the same date again
    await settler.settle(env.pool, 'the re-load');
    await loadDate(rows, env, 're-load', o.date, produced.records, run('reload'));
    const factsAfterReload = await factCount(env, o.date);

    // re-delivery: day 1's records once more, in new offsets
    const again = await produceSpool(env.config, spools.day1);
    log(`re-delivery: produced day 1's ${again.records} records again in ${again.seconds.toFixed(1)} s`);
    await settler.settle(env.pool, 'the re-delivery');
    const landedAgain = await land(rows, env, 're-delivery', again.records);
    const redelivered = await loadDate(rows, env, 're-delivery', o.date, again.records, run('redelivery'));
    const factsAfterRedelivery = await factCount(env, o.date);

    // next day on top
    const produced2 = await produceSpool(env.config, spools.day2);
    log(`day 2: produced ${produced2.records} records (${produced2.bad} bad) in ${produced2.seconds.toFixed(1)} s`);
    await settler.settle(env.pool, 'day 2');
    await land(rows, env, 'day 2', produced2.records);
    await loadDate(rows, env, 'day 2', day2, produced2.records, run('day2'));
    await baseline(env, `${label}, after day 2`);
    const users = { day1: await dateUsers(env, o.date), day2: await dateUsers(env, day2) };

    const counts: Counts = {
      day1Produced: produced.records,
      day1Bad: produced.bad,
      day1Landed: landed1.recordsRead,
      factsAfterDay1: factRows,
      factsAfterReload,
      redeliveryProduced: again.records,
      redeliveryLanded: landedAgain.recordsRead,
      redeliveryStaged: redelivered.rowsStaged,
      redeliveryDuplicates: redelivered.duplicates,
      factsAfterRedelivery,
      ok:
        landed1.recordsRead === produced.records &&
        factRows === produced.records - produced.bad &&
        factsAfterReload === factRows &&
        landedAgain.recordsRead === again.records &&
        again.records === produced.records &&
        factsAfterRedelivery === factRows,
    };
    for (const line of countsLines(counts)) log(line);
    result = {
      rows,
      counts,
      n: { day1: produced.records, redelivery: again.records, day2: produced2.records },
      users,
    };
  } finally {
    await env.cleanup(o.keep);
  }

  // the whole pipeline through Temporal, on its own database, topic and lake
  let pipeline: PipelineSummary | null = null;
  if (o.temporal) {
    const tenv = await createBenchEnv(base, workDir, { partitions: o.partitions, poolSize: 2 });
    try {
      tenv.config.temporalTaskQueue = benchName('nightshift_bench');
      const produced = await produceSpool(tenv.config, spools.day1);
      log(
        `Temporal: database ${tenv.name}, task queue ${tenv.config.temporalTaskQueue}; day 1 produced in ${produced.seconds.toFixed(1)} s`,
      );
      await settler.settle(tenv.pool, 'the Temporal run');
      pipeline = await temporalRun(rows, tenv, o.date, produced.records);
      await baseline(tenv, `${label}, after the Temporal run`);
    } finally {
      await tenv.cleanup(o.keep);
    }
  }
  return { ...result, pipeline };
}

/**
 * The rounds folded into one set of rows: each stage's seconds is the median of its seconds over the rounds (its
 * peak RSS the highest), so a path, the sum of its stages, is judged on medians rather than on one minute of a shared
 * machine. With one round, that round's rows.
 */
function medianRows(rounds: Row[][]): Row[] {
  if (rounds.length === 1) return rounds[0];
  // a stage named twice in a round (a bookkeeping activity of the Temporal run) is matched by its occurrence
  const occurrence = (r: Row[], stage: string, k: number) => r.filter((x) => x.stage === stage)[k];
  return rounds[0].map((row, i) => {
    const k = rounds[0].slice(0, i).filter((x) => x.stage === row.stage).length;
    const same = rounds.map((r) => occurrence(r, row.stage, k)).filter((x): x is Row => x !== undefined);
    const seconds = same.map((x) => x.seconds);
    const peaks = same.flatMap((x) => (x.peakRssMiB === undefined ? [] : [x.peakRssMiB]));
    return {
      ...row,
      seconds: median(seconds),
      peakRssMiB: peaks.length > 0 ? Math.max(...peaks) : undefined,
      note: [row.note, `median of ${seconds.map((x) => x.toFixed(2)).join(', ')}`].filter(Boolean).join('; '),
    };
  });
}

/**
 * The Temporal runs folded into one: the run of median wall time (its activities and overhead as they were; of an
 * even number of runs, the slower of the middle two), with the highest worker RSS of every run.
 */
function medianPipeline(runs: PipelineSummary[]): PipelineSummary | null {
  if (runs.length === 0) return null;
  const byWall = [...runs].sort((a, b) => a.wallSeconds - b.wallSeconds);
  const mid = byWall[Math.floor(byWall.length / 2)];
  return {
    ...mid,
    workerPeakRssMiB: Math.max(...runs.map((r) => r.workerPeakRssMiB)),
    workerReadyRssMiB: Math.max(...runs.map((r) => r.workerReadyRssMiB)),
    workerPipelinePeakRssMiB: Math.max(...runs.map((r) => r.workerPipelinePeakRssMiB)),
  };
}

// --- main ----------------------------------------------------------------------------------------------------------

export async function main(argv: string[]): Promise<number> {
  const parsed = parseBenchArgs(argv);
  if (parsed === null) {
    console.log(HELP);
    return EXIT.ok;
  }
  const o = parsed;
  Settler.check(o.settle);
  const loadAtStart = os.loadavg();
  const base = loadConfig();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const benchDir = path.resolve('.data', 'bench');
  const workDir = path.join(benchDir, `work-${stamp}`);
  mkdirSync(workDir, { recursive: true });
  const settler = new Settler(o.settle, path.join(workDir, 'page-cache-ballast'));
  const baselines: { when: string; seconds: number }[] = [];
  const factRowsFile = path.join(workDir, 'fact_rows.copy');
  let factRows = 0;
  const baseline = async (env: BenchEnv, when: string) => {
    await settler.settle(env.pool, `the baseline COPY (${when})`);
    const { seconds, rows: copied } = await rawCopySeconds(env.pool, factRowsFile);
    if (copied !== factRows) throw new Error(`baseline copied ${copied} rows, expected ${factRows}`);
    baselines.push({ when, seconds });
    log(
      `baseline (${when}): raw COPY of ${copied} rows in ${seconds.toFixed(2)} s (${fmtInt(copied / seconds)} rows/s)`,
    );
  };
  log(
    `${o.events} events a day; day 1 ${o.date}, day 2 ${addDays(o.date, 1)}; ${o.rounds} round(s); history ${o.history} days of ${o.historyEvents}; work files in ${workDir}`,
  );

  // every round, Temporal run and history gets a fresh database, topic and lake
  const spools: Spools = { day1: path.join(workDir, 'day1.spool'), day2: path.join(workDir, 'day2.spool') };
  const rounds: RoundResult[] = [];
  let history: HistoryRun | null = null;
  try {
    for (let round = 1; round <= o.rounds; round++) {
      const result = await runRound({
        base,
        workDir,
        o,
        round,
        spools,
        factRowsFile,
        exported: (rows) => {
          factRows = rows;
        },
        baseline,
        settler,
      });
      rounds.push(result);
    }

    // the history run, on its own database, topic and lake
    if (o.history > 0) {
      history = await runHistory(
        base,
        workDir,
        {
          days: o.history,
          eventsPerDay: o.historyEvents,
          start: o.date,
          seed: o.seed,
          badRate: o.badRate,
          partitions: o.partitions,
        },
        (henv) => baseline(henv, 'after the history run'),
        settler,
        o.keep,
      );
    }
  } finally {
    settler.close();
    // the work files (lakes, spools, the baseline's rows) go too, also when a stage failed
    if (!o.keep) rmSync(workDir, { recursive: true, force: true });
  }
  rss.stop();
  const rows = medianRows(rounds.map((r) => r.rows));
  const n = rounds[0].n;
  const counts = { ...rounds[0].counts, ok: rounds.every((r) => r.counts.ok) };
  const pipeline = medianPipeline(rounds.flatMap((r) => (r.pipeline ? [r.pipeline] : [])));

  const baselineSeconds = median(baselines.map((b) => b.seconds));
  const R = factRows / baselineSeconds;
  const all: Row[] = [
    {
      stage: 'baseline: raw COPY (R)',
      rows: factRows,
      seconds: baselineSeconds,
      n: factRows,
      note: `median of ${baselines.length}`,
    },
    ...rows,
  ];
  const verdicts = evaluate(rows, R, n, pipeline && { ...pipeline, events: n.day1 }, history);
  // above 1M events: day 1's load against the newest 1M run, at most 1.05 x the growth in events
  const reference = o.events > 1_000_000 ? newestRun(benchDir, 1_000_000, o) : null;
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
  const targets: Target[] = [...verdicts.targets];
  if (linear) {
    const total = linear.rows[linear.rows.length - 1];
    targets.push({
      target: `day 1 load <= ${linear.limit.toFixed(2)} x the 1M run (R-adjusted)`,
      pass: total.adjusted <= linear.limit,
      measured: `${total.adjusted.toFixed(1)} x (raw ${total.raw.toFixed(1)} x)`,
    });
  }
  const output = [
    `Nightshift bench: ${fmtInt(o.events)} events a day, ${o.partitions} partitions, bad rate ${o.badRate}; R = ${fmtInt(R)} rows/s`,
    `world: ${o.users === undefined ? 'growing (every new user stays)' : `steady, ${fmtInt(o.users)} users (--users)`}; distinct users ${fmtInt(rounds[0].users.day1)} on day 1, ${fmtInt(rounds[0].users.day2)} on day 2`,
    `machine: ${os.cpus().length} cores, load average ${loadAtStart[0].toFixed(1)} at the start, ${os.loadavg()[0].toFixed(1)} at the end`,
    settleLine(settler.report()),
    ...(o.rounds > 1
      ? [
          `rounds: ${o.rounds}, each in a fresh database, topic and lake; each stage's seconds below is its median over the rounds${o.temporal ? ', the Temporal run the one of median wall time' : ''}`,
        ]
      : []),
    '',
    stageTable(all, R),
    '',
    ...rounds.flatMap((r, i) => [...(rounds.length > 1 ? [`round ${i + 1}:`] : []), ...countsLines(r.counts)]),
    '',
    ...(pipeline
      ? [
          ...(rounds.length > 1
            ? [
                `Temporal runs: wall ${rounds.map((r) => r.pipeline?.wallSeconds.toFixed(2)).join(', ')} s; judged: the median, ${pipeline.wallSeconds.toFixed(2)} s`,
              ]
            : []),
          `Temporal: wall ${pipeline.wallSeconds.toFixed(2)} s = activities ${pipeline.activitySeconds.toFixed(2)} s + overhead ${pipeline.overheadSeconds.toFixed(2)} s (${(pipeline.overheadShare * 100).toFixed(1)} %)`,
          `worker RSS: ${Math.round(pipeline.workerReadyRssMiB)} MiB when ready, ${Math.round(pipeline.workerPipelinePeakRssMiB)} MiB peak during the pipeline, ${Math.round(pipeline.workerPeakRssMiB)} MiB peak over its life (VmHWM)`,
          '',
        ]
      : []),
    ...(history
      ? [
          `history: ${history.days} days of ${fmtInt(history.eventsPerDay)} events from ${history.start}, each landed and loaded on top of the days before`,
          historyTable(history),
          '',
        ]
      : []),
    ...(linear ? [linearityTable(linear, o.events), ''] : []),
    `paths (N/R = seconds x R / N; load = stage + dimensions + facts + marts + checks):`,
    pathsTable(verdicts.paths),
    '',
    `targets${o.events === 1_000_000 ? '' : ' (set for 1,000,000 events)'}:`,
    ...targetLines(targets),
    'kept from issue 7:',
    ...targetLines(verdicts.kept),
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
    users: rounds[0].users,
    settle: settler.report(),
    baseline: {
      rows: factRows,
      secondsSamples: baselines.map((b) => b.seconds),
      samples: baselines,
      rowsPerSecond: R,
    },
    stages: all.map((r) => ({
      ...r,
      rowsPerSecond: r.rows / r.seconds,
      ratioToR: r.rows / r.seconds / R,
      nr: r.n ? (r.seconds * R) / r.n : null,
    })),
    events: n,
    counts,
    rounds: rounds.map((r) => ({
      stages: r.rows,
      counts: r.counts,
      pipeline: r.pipeline && {
        wallSeconds: r.pipeline.wallSeconds,
        activitySeconds: r.pipeline.activitySeconds,
        overheadSeconds: r.pipeline.overheadSeconds,
        workerPeakRssMiB: r.pipeline.workerPeakRssMiB,
      },
    })),
    paths: verdicts.paths,
    history,
    pipeline: pipeline && { ...pipeline, run: { ...pipeline.run, output: pipeline.run.output.summary } },
    benchPeakRssMiB: process.resourceUsage().maxRSS / 1024,
    targets,
    keptTargets: verdicts.kept,
    linearity: linear,
    table: output,
  };
  writeFileSync(jsonFile, `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${jsonFile}`);
  return EXIT.ok;
}

if (require.main === module) runCommand('bench', main);
