import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dailyWorkflowId } from '../lib/temporal';
import { closeClient } from '../lib/temporal-client';
import { backfillWorkflow } from '../workflows';
import { createTestEnv, lakeFiles, uniqueName } from './support';
import { killAndWait, produceDays, spawnWorker, startWorker, testClient, warehouseHashes } from './temporal-support';

/**
 * Workers on several machines: two worker processes on one task queue, each in a working folder and a temporary
 * folder of its own, sharing only PostgreSQL, Kafka, Temporal and the S3 lake. Their backfill loads every date and
 * builds the same warehouse as a single worker with a local lake.
 */

// the namespace is shared and workflow ids are per date: these dates are this test's own
const from = '2023-08-07';
const to = '2023-08-10';

describe('two workers with an S3 lake', () => {
  it(
    'run a backfill together: every date loads, the warehouse equals a single worker’s',
    { timeout: 300_000 },
    async () => {
      const reference = await createTestEnv();
      const shared = await createTestEnv({ lake: 's3' });
      const client = await testClient(reference.config);
      const folders: string[] = [];
      const children: ChildProcess[] = [];
      try {
        await produceDays(reference.config, from, 4);
        await produceDays(shared.config, from, 4);

        const single = await startWorker(reference);
        try {
          const out = await client.workflow.execute(backfillWorkflow, {
            taskQueue: reference.config.temporalTaskQueue,
            workflowId: uniqueName('backfill-single'),
            args: [{ from, to, concurrency: 2 }],
          });
          expect(out.failed).toEqual([]);
        } finally {
          await single.stop();
        }

        for (let i = 0; i < 2; i++) {
          const cwd = mkdtempSync(path.join(os.tmpdir(), `nightshift-machine${i}-cwd-`));
          const tmp = mkdtempSync(path.join(os.tmpdir(), `nightshift-machine${i}-tmp-`));
          folders.push(cwd, tmp);
          children.push(await spawnWorker(shared.config, { TMPDIR: tmp, LAKE_DIR: path.join(cwd, 'lake') }, cwd));
        }
        const out = await client.workflow.execute(backfillWorkflow, {
          taskQueue: shared.config.temporalTaskQueue,
          workflowId: uniqueName('backfill-two-workers'),
          args: [{ from, to, concurrency: 4 }],
        });
        expect(out.failed).toEqual([]);
        expect(out.succeeded).toHaveLength(4);

        // both workers ran activities (Temporal records the worker's identity, pid@host, on each started activity)
        const identities = new Set<string>();
        for (const date of ['2023-08-07', '2023-08-08', '2023-08-09', '2023-08-10']) {
          const history = await client.workflow.getHandle(dailyWorkflowId(date)).fetchHistory();
          for (const e of history.events ?? []) {
            const identity = e.activityTaskStartedEventAttributes?.identity;
            if (identity) identities.add(identity);
          }
        }
        expect(identities.size).toBe(2);

        expect(await warehouseHashes(shared.db)).toEqual(await warehouseHashes(reference.db));
        // the lake is in the bucket, nowhere on the workers' disks
        expect((await lakeFiles(shared)).length).toBeGreaterThan(0);
        for (const dir of folders)
          expect(readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.parquet'))).toEqual([]);
      } finally {
        for (const child of children) await killAndWait(child, 'SIGTERM');
        await closeClient(client);
        await reference.cleanup();
        await shared.cleanup();
        for (const dir of folders) rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
