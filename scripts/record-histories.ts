import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Client, ScheduleOverlapPolicy, type WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { sql } from 'kysely';
import { type Config, loadConfig } from '../lib/config';
import {
  EVENT_TYPE,
  HISTORIES_DIR,
  HISTORY_PATHS,
  type HistoryManifest,
  type HistoryPath,
  MANIFEST_FILE,
  type ManifestEntry,
  readHistory,
  releaseProblem,
} from '../lib/histories';
import { type ScratchEnv, createScratchEnv, scratchName } from '../lib/scratch-env';
import { closeClient, connectClient } from '../lib/temporal-client';
import { backfillWorkflowId, dailyWorkflowId } from '../lib/temporal';
import { backfillWorkflow, dailyPipelineWorkflow } from '../workflows';
import { produceEvents } from '../lib/produce';
import { deleteSchedule, upsertSchedule } from '../lib/schedule';
import { createWorker } from '../lib/worker';

/**
 * Records the workflow histories of a release, one per path through the workflow code (lib/histories.ts
 * HISTORY_PATHS), against the Temporal server, Kafka and PostgreSQL of the configuration, with the real
 * activities, in a throw-away database, topic, lake folder and task queue. test/replay.test.ts replays them.
 *
 *   node --import tsx scripts/record-histories.ts --release v0.2 [--force]
 *
 * Writes test/histories/<release>/ (one JSON file per run and manifest.json). Record a release's histories from
 * the commit that is deployed, before the next change to workflows/ is made.
 */

const ROOT = path.resolve(__dirname, '..');
const TEMPORAL_CLI = path.join(ROOT, '.tools', 'venv', 'bin', 'temporal');

// dates no test uses: workflow ids are per date in a shared namespace
const PLAIN = '2022-12-01';
/** The schedule's nominal time of the hand-off run: it loads the day before. */
const HANDOFF_AT = '2022-12-03T02:00:00Z';
const RELOADED = '2022-12-04';
const RELOADING = '2022-12-05';
const SKIP_AT = '2022-12-07T02:00:00Z'; // loads 2022-12-06, which already runs
const SKIPPED = '2022-12-06';
const WAITED = '2022-12-08';
const CHAIN = ['2022-12-09', '2022-12-10', '2022-12-11'];
const FAILING = '2022-12-12';

interface Recorded {
  name: string;
  workflowId: string;
  runId: string;
  paths: HistoryPath[];
}

class Recorder {
  readonly recorded: Recorded[] = [];
  constructor(
    private readonly env: ScratchEnv,
    private readonly client: Client,
    /** A task queue no worker polls: a run started there stays running until it is terminated or a worker comes. */
    private readonly parking: string,
  ) {}

  private get config(): Config {
    return this.env.config;
  }

  add(name: string, workflowId: string, runId: string, ...paths: HistoryPath[]): void {
    this.recorded.push({ name, workflowId, runId, paths });
    console.log(`ran ${name}: ${workflowId} ${runId} (${paths.join(', ')})`);
  }

  async daily(date: string, taskQueue = this.config.temporalTaskQueue) {
    return this.client.workflow.start(dailyPipelineWorkflow, {
      taskQueue,
      workflowId: dailyWorkflowId(date),
      args: [{ date }],
    });
  }

  async plainDaily(): Promise<void> {
    const run = await this.daily(PLAIN);
    const out = await run.result();
    expect(out.status === 'succeeded' && out.reloads.length === 0, `daily ${PLAIN} succeeded without re-loads`, out);
    this.add('daily', run.workflowId, run.firstExecutionRunId, 'daily');
  }

  /** A run of the real schedule (scripts/schedule.ts) at a nominal time, taken through a schedule backfill. */
  async scheduledRun(scheduleId: string, at: string) {
    const nominal = new Date(at);
    await this.client.schedule.getHandle(scheduleId).backfill({
      start: new Date(nominal.getTime() - 30 * 60_000),
      end: new Date(nominal.getTime() + 30 * 60_000),
      overlap: ScheduleOverlapPolicy.ALLOW_ALL,
    });
    const handle = this.client.workflow.getHandle<typeof dailyPipelineWorkflow>(
      `${scheduleId}-${nominal.toISOString().replace('.000Z', 'Z')}`,
    );
    const runId = await until(`the scheduled run at ${at}`, async () => (await handle.describe()).runId);
    return { handle, runId, out: await handle.result() };
  }

  async scheduleHandoff(scheduleId: string): Promise<void> {
    const { handle, runId, out } = await this.scheduledRun(scheduleId, HANDOFF_AT);
    expect(out.status === 'delegated' && out.delegated?.status === 'succeeded', 'the scheduled run handed off', out);
    this.add('schedule-handoff', handle.workflowId, runId, 'schedule-handoff');
    this.add('schedule-handoff-child', out.delegatedTo!, out.delegated!.runId, 'schedule-handoff-child');
  }

  async reload(): Promise<void> {
    const first = await (await this.daily(RELOADED)).result();
    expect(first.status === 'succeeded', `daily ${RELOADED} succeeded`, first);
    // late records of RELOADED (another seed: other events) arrive after it was loaded, with RELOADING's
    await produceEvents(this.config, { events: 300, days: 2, start: RELOADED, seed: 12, badRate: 0 });
    const run = await this.daily(RELOADING);
    const out = await run.result();
    expect(
      out.reloads.some((r) => r.date === RELOADED),
      `daily ${RELOADING} re-loaded ${RELOADED}`,
      out,
    );
    this.add('daily-reload', run.workflowId, run.firstExecutionRunId, 'reload-late-dates');
  }

  async scheduleSkipsRunning(scheduleId: string): Promise<void> {
    const parked = await this.daily(SKIPPED, this.parking);
    try {
      const { handle, runId, out } = await this.scheduledRun(scheduleId, SKIP_AT);
      expect(out.status === 'skipped' && out.date === SKIPPED, `the scheduled run skipped ${SKIPPED}`, out);
      this.add('schedule-skips-running', handle.workflowId, runId, 'already-running-schedule');
    } finally {
      await parked.terminate('recording: the run the scheduled one found running is no longer needed');
    }
  }

  async backfillWaitsForRunning(): Promise<void> {
    const parked = await this.daily(WAITED, this.parking);
    const backfill = await this.client.workflow.start(backfillWorkflow, {
      taskQueue: this.config.temporalTaskQueue,
      workflowId: backfillWorkflowId(WAITED, WAITED),
      args: [{ from: WAITED, to: WAITED, concurrency: 1 }],
    });
    // the backfill found daily-<date> running and waits: now let that run finish on a worker of its own
    try {
      await until(
        'the backfill to wait for the running date',
        () => hasEvent(backfill, EVENT_TYPE.TIMER_STARTED),
        120_000,
      );
    } catch (err) {
      await parked.terminate('recording failed').catch(() => undefined);
      await backfill.terminate('recording failed').catch(() => undefined);
      throw err;
    }
    const other = await startWorker(this.env, this.parking);
    try {
      expect((await parked.result()).status === 'succeeded', `the other run of ${WAITED} succeeded`, null);
      const out = await backfill.result();
      expect(out.succeeded.includes(WAITED), `the backfill loaded ${WAITED} after waiting`, out);
      this.add(
        'backfill-waits-for-running',
        backfill.workflowId,
        backfill.firstExecutionRunId,
        'already-running-backfill',
      );
    } finally {
      await other.stop();
    }
  }

  async backfillTerminatedChildAndContinueAsNew(): Promise<void> {
    const [from, victimDate, to] = CHAIN;
    const backfill = await this.client.workflow.start(backfillWorkflow, {
      taskQueue: this.config.temporalTaskQueue,
      workflowId: backfillWorkflowId(from, to),
      args: [{ from, to, concurrency: 1, datesPerRun: 2 }],
    });
    // an operator terminates one date's run from the UI
    const victim = this.client.workflow.getHandle(dailyWorkflowId(victimDate));
    const victimRun = await until(
      `daily-${victimDate} of the backfill to run`,
      async () => {
        const d = await victim.describe();
        if (d.status.name !== 'RUNNING' || d.parentExecution?.workflowId !== backfill.workflowId) return null;
        // under way (its first activities scheduled), so its history is that of a run in flight
        const scheduled = await hasEvent(victim, EVENT_TYPE.ACTIVITY_TASK_SCHEDULED);
        return scheduled ? d.runId : null;
      },
      120_000,
    );
    await victim.terminate('recording: an operator stops this date');
    const out = await backfill.result();
    const outcome = out.results.find((r) => r.date === victimDate);
    expect(
      out.failed.join() === victimDate && /terminated/i.test(outcome?.error ?? ''),
      `${victimDate} was terminated before it finished (if it finished first, record again)`,
      out,
    );
    const last = (await backfill.describe()).runId;
    expect(last !== backfill.firstExecutionRunId, 'the backfill continued as new', out);
    this.add(
      'backfill-continue-as-new',
      backfill.workflowId,
      backfill.firstExecutionRunId,
      'backfill-continue-as-new',
      'backfill-terminated-child',
    );
    this.add('backfill-continued', backfill.workflowId, last, 'backfill-continued');
    this.add('daily-terminated', victim.workflowId, victimRun, 'daily-terminated');
  }

  async backfillFailedChild(): Promise<void> {
    // the offsets landed say the topic is further than the broker: landing fails non-retryably (OffsetsAheadOfBroker)
    await sql`insert into ops.kafka_offsets (topic, partition, next_offset) values (${this.config.kafkaTopic}, 0, 1000000000)
              on conflict (topic, partition) do update set next_offset = excluded.next_offset`.execute(this.env.db);
    const backfill = await this.client.workflow.start(backfillWorkflow, {
      taskQueue: this.config.temporalTaskQueue,
      workflowId: backfillWorkflowId(FAILING, FAILING),
      args: [{ from: FAILING, to: FAILING, concurrency: 1 }],
    });
    const out = await backfill.result();
    const child = out.results.find((r) => r.date === FAILING);
    expect(child?.status === 'failed' && child.runId !== undefined, `the child of ${FAILING} failed`, out);
    this.add('backfill-failed-child', backfill.workflowId, backfill.firstExecutionRunId, 'backfill-failed-child');
    this.add('daily-failed', child!.workflowId, child!.runId!, 'daily-failed');
  }
}

/** The history as `temporal workflow show --output json` writes it: the format replay reads. */
function historyJson(config: Config, workflowId: string, runId: string): string {
  const json = execFileSync(
    TEMPORAL_CLI,
    [
      'workflow',
      'show',
      '--address',
      config.temporalAddress,
      '--namespace',
      config.temporalNamespace,
      '-w',
      workflowId,
      '-r',
      runId,
      '--output',
      'json',
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  return json.endsWith('\n') ? json : `${json}\n`;
}

async function hasEvent(handle: WorkflowHandle, type: number): Promise<boolean> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).some((e) => e.eventType === type);
}

async function startWorker(env: ScratchEnv, taskQueue?: string) {
  const nw = await createWorker(env.config, { config: env.config, pool: env.pool, db: env.db }, { taskQueue });
  const running = nw.worker.run().finally(() => nw.connection.close());
  return {
    async stop() {
      if (nw.worker.getState() === 'RUNNING') nw.worker.shutdown();
      await running;
    },
  };
}

function expect(ok: boolean, what: string, got: unknown): void {
  if (!ok) throw new Error(`recording failed: expected ${what}; got ${JSON.stringify(got, null, 2)?.slice(0, 2000)}`);
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'workflows', 'lib/temporal.ts'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    return dirty ? `${head}+uncommitted workflow changes` : head;
  } catch {
    return 'unknown';
  }
}

/** Why the histories of `release` cannot be recorded into its folder, or null. */
function releaseDirProblem(release: string, force: boolean): string | null {
  const problem = releaseProblem(release);
  if (problem) return problem;
  const dir = path.join(HISTORIES_DIR, release);
  if (existsSync(dir) && readdirSync(dir).length > 0 && !force) {
    return `${path.relative(ROOT, dir)} exists: pass --force (make histories RELEASE=${release} FORCE=1) to record this release again`;
  }
  return null;
}

export async function recordHistories(release: string, options: { force?: boolean } = {}): Promise<string> {
  const problem = releaseDirProblem(release, options.force ?? false);
  if (problem) throw new Error(problem);
  const dir = path.join(HISTORIES_DIR, release);
  const commit = gitCommit();
  const env = await createScratchEnv(loadConfig(), 'ns_record');
  const client = await connectClient(env.config);
  const worker = await startWorker(env);
  const scheduleId = scratchName('nightshift-daily-record');
  const recorder = new Recorder(env, client, `${env.config.temporalTaskQueue}_parked`);
  try {
    await produceEvents(env.config, { events: 12 * 150, days: 12, start: PLAIN, seed: 11, badRate: 0 });
    await upsertSchedule(client, env.config, { scheduleId });
    await recorder.plainDaily();
    await recorder.scheduleHandoff(scheduleId);
    await recorder.reload();
    await recorder.scheduleSkipsRunning(scheduleId);
    await recorder.backfillWaitsForRunning();
    await recorder.backfillTerminatedChildAndContinueAsNew();
    await recorder.backfillFailedChild(); // last: it leaves the landing broken

    const missing = Object.keys(HISTORY_PATHS).filter(
      (p) => !recorder.recorded.some((r) => r.paths.includes(p as HistoryPath)),
    );
    if (missing.length) throw new Error(`recording failed: no history covers ${missing.join(', ')}`);

    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const histories: ManifestEntry[] = [];
    for (const r of recorder.recorded) {
      const file = `${r.name}.json`;
      writeFileSync(path.join(dir, file), historyJson(env.config, r.workflowId, r.runId));
      const history = readHistory(path.join(dir, file)); // reads back as replay will
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      histories.push({
        file,
        workflowId: r.workflowId,
        runId: r.runId,
        workflowType: started?.workflowType?.name ?? 'unknown',
        paths: r.paths,
        events: history.events?.length ?? 0,
      });
      console.log(`recorded ${path.relative(ROOT, path.join(dir, file))} (${history.events?.length} events)`);
    }
    const manifest: HistoryManifest = { release, commit, recordedAt: new Date().toISOString(), histories };
    writeFileSync(path.join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    return dir;
  } finally {
    await deleteSchedule(client, scheduleId).catch(() => undefined);
    await worker.stop();
    await closeClient(client);
    await env.cleanup();
  }
}

async function main(): Promise<number> {
  let values: { release?: string; force?: boolean };
  try {
    ({ values } = parseArgs({
      options: { release: { type: 'string' }, force: { type: 'boolean', default: false } },
      strict: true,
    }));
  } catch (err) {
    console.error(`record-histories: ${(err as Error).message}`);
    return 2;
  }
  const problem =
    values.release === undefined
      ? 'give the release: --release v0.2'
      : releaseDirProblem(values.release, values.force ?? false);
  if (problem) {
    console.error(`record-histories: ${problem}`);
    return 2;
  }
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const dir = await recordHistories(values.release!, { force: values.force });
  console.log(`histories of ${values.release} in ${path.relative(ROOT, dir)}; test/replay.test.ts replays them`);
  return 0;
}

if (require.main === module) {
  main()
    .then((code) => process.exit(code))
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
