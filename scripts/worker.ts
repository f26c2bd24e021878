import { inspect } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig } from '../lib/config';
import { exitWithError, redact } from '../lib/redact';
import { createWorker } from '../lib/worker';
import { createDb, createPool } from '../warehouse/db';

/** The Nightshift worker: polls the task queue, runs the workflows and activities. `make worker` runs it. */

async function main(): Promise<void> {
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
      process.exit(130);
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
}

if (require.main === module) {
  main().catch((err) => exitWithError(err));
}
