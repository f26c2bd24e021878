import path from 'node:path';
import { NativeConnection, Runtime, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { ActivityDeps } from '../activities/deps';
import { type Config, loadConfig } from '../lib/config';
import { livenessHeartbeat } from '../lib/liveness-heartbeat';
import { type Logger, activityLogging, loggerFromConfig, sdkLogger } from '../lib/log';
import { sdkTelemetryOptions, startWorkerMetrics } from '../lib/metrics';
import { createDb, createPool } from '../warehouse/db';

/** The Nightshift worker: polls the task queue, runs the workflows and activities. `make worker` runs it. */

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
    connection = await NativeConnection.connect({ address: config.temporalAddress });
  } catch (err) {
    throw new Error(
      `Cannot reach Temporal at ${config.temporalAddress} (TEMPORAL_ADDRESS): start it with \`make up\``,
      {
        cause: err,
      },
    );
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

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = loggerFromConfig(config);
  // we handle the signals ourselves, to close the pool after the worker has drained; the SDK logs through ours
  Runtime.install({ shutdownSignals: [], logger: sdkLogger(logger), ...sdkTelemetryOptions(config) });
  const pool = createPool(config.databaseUrl, 8);
  const db = createDb(pool);
  const metrics = await startWorkerMetrics(config, pool);
  if (metrics) logger.info({ port: metrics.port }, `Prometheus metrics on http://0.0.0.0:${metrics.port}/metrics`);
  const { worker, connection } = await createWorker(
    config,
    { config, pool, db },
    { identity: `nightshift-worker@${process.pid}`, logger },
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting without waiting`);
      process.exit(130);
    }
    stopping = true;
    logger.info(`${signal}: finishing running tasks, then exiting (send it again to exit now)`);
    worker.shutdown();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  logger.info(
    `polling task queue ${config.temporalTaskQueue} on ${config.temporalAddress} (namespace ${config.temporalNamespace})`,
  );
  try {
    await worker.run();
  } finally {
    await metrics?.close();
    await connection.close();
    await db.destroy(); // ends the pool
  }
  logger.info('stopped');
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
