import path from 'node:path';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { ActivityDeps } from '../activities/deps';
import type { Config } from './config';
import { livenessHeartbeat } from './liveness-heartbeat';
import { type Logger, activityLogging, loggerFromConfig } from './log';
import { temporalConnectionOptions, temporalUnreachable } from './temporal-client';

/** A Nightshift worker on the configured Temporal server: the workflows bundled once per process, every activity. */

export interface CreateWorkerOptions {
  /** Overrides config.temporalTaskQueue (tests use their own). */
  taskQueue?: string;
  /** Identity shown in the Temporal UI. */
  identity?: string;
  /** Where activity log lines go (default: LOG_FORMAT/LOG_LEVEL on stdout). */
  logger?: Logger;
}

export interface NightshiftWorker {
  worker: Worker;
  /** Owned by the caller: close it after `worker.run()` returns. */
  connection: NativeConnection;
}

// a directory: the bundler finds index.ts (require.resolve would need a TypeScript loader, absent under vitest)
const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows');
/** Workflow interceptors bundled with the workflows: activity summaries for the Temporal UI. */
export const WORKFLOW_INTERCEPTOR_MODULES = [path.join(WORKFLOWS_PATH, 'activity-summaries')];

// Bundling the workflow code takes seconds; a process that creates several workers bundles once.
let bundle: Promise<WorkflowBundle> | undefined;
function workflowBundle(): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    logger: quietBundlerLogger,
  });
  return bundle;
}

const noop = () => undefined;
const quietBundlerLogger = {
  log: noop,
  trace: noop,
  debug: noop,
  info: noop,
  warn: console.warn,
  error: console.error,
};

export async function createWorker(
  config: Config,
  deps: ActivityDeps,
  options: CreateWorkerOptions = {},
): Promise<NightshiftWorker> {
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(temporalConnectionOptions(config));
  } catch (err) {
    throw temporalUnreachable(config, err);
  }
  try {
    const worker = await Worker.create({
      connection,
      namespace: config.temporalNamespace,
      taskQueue: options.taskQueue ?? config.temporalTaskQueue,
      ...(options.identity ? { identity: options.identity } : {}),
      workflowBundle: await workflowBundle(),
      activities: createActivities(deps),
      // a heartbeat every 5 s for every running activity: a dead worker is noticed in seconds, not at start-to-close
      // and every log line of an activity carries its workflow id, run id, date and step
      interceptors: { activity: [livenessHeartbeat, activityLogging(options.logger ?? loggerFromConfig(config))] },
      // a 2-core machine: a few loads at once; each holds a database connection or two
      maxConcurrentActivityTaskExecutions: 6,
      // let a running activity finish its current step before a shutdown cancels it
      shutdownGraceTime: '20 seconds',
    });
    return { worker, connection };
  } catch (err) {
    await connection.close();
    throw err;
  }
}
