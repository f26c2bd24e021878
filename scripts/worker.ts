import { Runtime } from '@temporalio/worker';
import { EXIT, EXIT_CODES_HELP, parseCommandLine, runCommand } from '../lib/cli';
import { loadConfig } from '../lib/config';
import { loggerFromConfig, sdkLogger } from '../lib/log';
import { sdkTelemetryOptions, startWorkerMetrics } from '../lib/metrics';
import { createWorker } from '../lib/worker';
import { startLandingThreadsAhead } from '../activities/land';
import { stopLandingThreads } from '../activities/landing/threads';
import { keepStageThreadWarm } from '../activities/staging/threads';
import { createDb, createPool } from '../warehouse/db';

/** The Nightshift worker: polls the task queue, runs the workflows and activities. `nightshift worker` runs it. */

export const HELP = `Run a worker in the foreground: it polls TEMPORAL_TASK_QUEUE and runs the workflows and activities.
SIGINT or SIGTERM finishes the running tasks, then exits (a second one exits at once).

usage: nightshift worker   (make worker; make up starts one in the background)

${EXIT_CODES_HELP}`;

export async function main(argv: string[]): Promise<number> {
  if (parseCommandLine(argv, {}) === 'help') {
    console.log(HELP);
    return EXIT.ok;
  }
  const config = loadConfig();
  // every line, the SDK's included, goes through one logger, which redacts secrets (lib/log.ts)
  const logger = loggerFromConfig(config);
  // we handle the signals ourselves, to close the pool after the worker has drained
  Runtime.install({ shutdownSignals: [], logger: sdkLogger(logger), ...sdkTelemetryOptions(config) });
  const pool = createPool(config.databaseUrl, 8);
  const db = createDb(pool);
  const metrics = await startWorkerMetrics(config, pool);
  if (metrics) logger.info({ port: metrics.port }, `Prometheus metrics on http://0.0.0.0:${metrics.port}/metrics`);
  // the landing threads load and warm up while the workflows are bundled: the first landing does not wait for them
  const landingThreads = config.workerWarmUp ? startLandingThreadsAhead() : Promise.resolve();
  landingThreads.catch(() => undefined); // awaited below, once the worker is created
  const { worker, connection } = await createWorker(
    config,
    { config, pool, db },
    { identity: `nightshift-worker@${process.pid}`, logger },
  );
  // a warm-up that fails only costs the first landing its head start: it starts its own threads, as without one
  try {
    await landingThreads;
  } catch (err) {
    logger.warn(
      { err: String(err) },
      'could not start the landing threads ahead; the first landing will start its own',
    );
  }
  // a stage run then finds its worker thread started and its decoder compiled (activities/staging/threads.ts)
  if (config.workerWarmUp) {
    const warming = performance.now();
    try {
      await keepStageThreadWarm();
      logger.info(`stage thread ready in ${((performance.now() - warming) / 1000).toFixed(1)} s`);
    } catch (err) {
      logger.warn({ err: String(err) }, 'could not prepare a stage thread; the first stage run will start its own');
    }
  }

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting without waiting`);
      process.exit(EXIT.interrupted);
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
    await stopLandingThreads();
    await connection.close();
    await db.destroy(); // ends the pool
  }
  logger.info('stopped');
  return EXIT.ok;
}

if (require.main === module) runCommand('worker', main);
