import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { loadConfig } from '../lib/config';
import { closeClient, connectClient } from '../lib/temporal-client';
import { createDb, createPool } from '../warehouse/db';
import { createWorker } from '../lib/worker';
import { smokeWorkflow } from '../workflows';
import { uniqueName } from './support';

describe('Temporal smoke', () => {
  const config = { ...loadConfig(), temporalTaskQueue: uniqueName('nightshift_smoke') };
  const pool = createPool(config.databaseUrl, 1); // the smoke activity does no I/O; the pool never connects
  const db = createDb(pool);
  let client: Client;

  beforeAll(async () => {
    client = await connectClient(config);
  });
  afterAll(async () => {
    if (client) await closeClient(client);
    await db.destroy();
  });

  it('a workflow with one activity runs through a worker against the local dev server', async () => {
    const { worker, connection } = await createWorker(config, { config, pool, db });
    try {
      const result = await worker.runUntil(
        client.workflow.execute(smokeWorkflow, {
          taskQueue: config.temporalTaskQueue,
          workflowId: uniqueName('smoke'),
          args: [{ message: 'hello nightshift' }],
          workflowExecutionTimeout: '1 minute',
        }),
      );
      expect(result).toEqual({ message: 'hello nightshift', activityPid: process.pid });
    } finally {
      await connection.close();
    }
  });
});
