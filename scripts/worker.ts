import { inspect } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { EXIT, EXIT_CODES_HELP, parseCommandLine, runCommand } from '../lib/cli';
import { loadConfig } from '../lib/config';
import { redact } from '../lib/redact';
import { createWorker } from '../lib/worker';
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
  // we handle the signals ourselves, to close the pool after the worker has drained
  // the SDK logs activity failures with their messages: those pass through the redaction like every other line
  Runtime.install({
    shutdownSignals: [],
    logger: new DefaultLogger('INFO', ({ level, message, meta }) =>
      console.error(redact(`[${level}] ${message}${meta && Object.keys(meta).length ? ` ${inspect(meta)}` : ''}`)),
    ),
  });
  const config = loadConfig();
  const pool = createPool(config.databaseUrl, 8);
  const db = createDb(pool);
  const { worker, connection } = await createWorker(
    config,
    { config, pool, db },
    { identity: `nightshift-worker@${process.pid}` },
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`[worker] ${signal} again: exiting without waiting`);
      process.exit(EXIT.interrupted);
    }
    stopping = true;
    console.error(`[worker] ${signal}: finishing running tasks, then exiting (send it again to exit now)`);
    worker.shutdown();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  console.error(
    `[worker] polling task queue ${config.temporalTaskQueue} on ${config.temporalAddress} (namespace ${config.temporalNamespace})`,
  );
  try {
    await worker.run();
  } finally {
    await connection.close();
    await db.destroy(); // ends the pool
  }
  console.error('[worker] stopped');
  return EXIT.ok;
}

if (require.main === module) runCommand('worker', main);
