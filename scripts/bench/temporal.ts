import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { Config } from '../../lib/config';
import { lakeEnvironment } from '../../lib/lake-store';
import { dailyWorkflowId } from '../../lib/temporal';
import type { DailyPipelineOutput } from '../../workflows/daily-pipeline';

/** `nightshift worker`'s own entry point, run as a child so its peak RSS is the worker's alone: the compiled one from
 * dist/, or the TypeScript one under the loader this process runs with (its execArgv). */
const WORKER_SCRIPT = path.resolve(__dirname, '..', `worker${path.extname(__filename)}`);

export interface WorkerProcess {
  child: ChildProcess;
  /** MiB, from /proc/<pid>/status. */
  memory(): { rssMiB: number; hwmMiB: number };
  stop(): Promise<void>;
}

function procStatusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Starts `nightshift worker` on the environment of `config` and resolves once it polls its task queue. */
export async function startWorker(config: Config): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [...process.execArgv, WORKER_SCRIPT], {
    env: {
      ...process.env,
      DATABASE_URL: config.databaseUrl,
      KAFKA_TOPIC: config.kafkaTopic,
      ...lakeEnvironment(config),
      TEMPORAL_TASK_QUEUE: config.temporalTaskQueue,
      SLACK_WEBHOOK_URL: '',
      // the measured worker serves no metrics: the stack's worker (make up) holds METRICS_PORT and its SDK port
      METRICS_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // the worker's log is kept quiet; its last lines are shown when it fails
  const tail: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then((code) => {
    if (code !== 0 && code !== null)
      process.stderr.write(`[bench] the worker exited with code ${code}; its last output:\n${tail.join('')}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error('the worker did not start polling within 120 s')), 120_000);
    // the logger writes to stdout (JSON when not on a terminal), the runtime's errors to stderr: both are read
    const onOutput = (chunk: Buffer) => {
      tail.push(chunk.toString());
      if (tail.length > 40) tail.shift();
      if (seen !== 'ready') {
        seen += chunk.toString();
        if (seen.includes('polling task queue')) {
          seen = 'ready';
          clearTimeout(timer);
          resolve();
        }
      }
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the worker exited with code ${code} before polling`));
    });
  });
  const pid = child.pid as number;
  return {
    child,
    memory: () => ({ rssMiB: procStatusMiB(pid, 'VmRSS'), hwmMiB: procStatusMiB(pid, 'VmHWM') }),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface ActivitySpan {
  activity: string;
  /** ActivityTaskScheduled → Started: time in the task queue. */
  queuedSeconds: number;
  /** ActivityTaskStarted → Completed: the activity's own run time. */
  seconds: number;
  attempt: number;
}

export interface PipelineRun {
  workflowId: string;
  runId: string;
  wallSeconds: number;
  output: DailyPipelineOutput;
  activities: ActivitySpan[];
  /** First event to last event of the workflow history. */
  historySeconds: number;
}

interface Ts {
  seconds?: unknown;
  nanos?: number | null;
}

function tsMs(t: Ts | null | undefined): number {
  if (!t) return NaN;
  return Number(String(t.seconds ?? 0)) * 1000 + (t.nanos ?? 0) / 1e6;
}

/** Starts dailyPipelineWorkflow for `date` on the config's task queue, waits for it, and reads its history. */
export async function runDailyPipeline(client: Client, config: Config, date: string): Promise<PipelineRun> {
  const workflowId = dailyWorkflowId(date);
  const started = performance.now();
  const handle = await client.workflow.start('dailyPipelineWorkflow', {
    taskQueue: config.temporalTaskQueue,
    workflowId,
    args: [{ date }],
  });
  const output = (await handle.result()) as DailyPipelineOutput;
  const wallSeconds = (performance.now() - started) / 1000;
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  const scheduled = new Map<string, { name: string; at: number }>();
  const startedAt = new Map<string, { at: number; attempt: number }>();
  const activities: ActivitySpan[] = [];
  for (const e of events) {
    const id = String(e.eventId);
    if (e.activityTaskScheduledEventAttributes) {
      scheduled.set(id, {
        name: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?',
        at: tsMs(e.eventTime as Ts),
      });
    } else if (e.activityTaskStartedEventAttributes) {
      startedAt.set(id, { at: tsMs(e.eventTime as Ts), attempt: e.activityTaskStartedEventAttributes.attempt ?? 1 });
    } else if (e.activityTaskCompletedEventAttributes) {
      const a = e.activityTaskCompletedEventAttributes;
      const s = scheduled.get(String(a.scheduledEventId));
      const st = startedAt.get(String(a.startedEventId));
      if (!s || !st) continue;
      const done = tsMs(e.eventTime as Ts);
      activities.push({
        activity: s.name,
        queuedSeconds: (st.at - s.at) / 1000,
        seconds: (done - st.at) / 1000,
        attempt: st.attempt,
      });
    }
  }
  const first = tsMs(events[0]?.eventTime as Ts);
  const last = tsMs(events[events.length - 1]?.eventTime as Ts);
  return {
    workflowId,
    runId: handle.firstExecutionRunId,
    wallSeconds,
    output,
    activities,
    historySeconds: (last - first) / 1000,
  };
}
