import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { closeClient } from '../lib/temporal-client';
import { spawn } from 'node:child_process';
import { backfillWorkflowId } from '../lib/temporal';
import { createTestEnv, type TestEnv } from './support';
import { ROOT, envFor, produceDays, type RunningWorker, startWorker, testClient } from './temporal-support';

/** The Temporal UI tells the story: static summary and details of a backfill and its daily runs, current details. */

describe('run summaries in the Temporal UI', () => {
  let env: TestEnv;
  let client: Client;
  let worker: RunningWorker;

  beforeAll(async () => {
    env = await createTestEnv({ partitions: 2 });
    client = await testClient(env.config);
    worker = await startWorker(env);
  });
  afterAll(async () => {
    await worker?.stop();
    await closeClient(client);
    await env.cleanup();
  });

  it('a backfill and its daily runs carry a one-line summary, details, and their outcome as current details', async () => {
    const [from, to] = ['2023-07-03', '2023-07-04'];
    await produceDays(env.config, from, 2, 300, 31);
    // what `make backfill FROM=… TO=…` runs
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'scripts/nightshift.ts', 'backfill', '--from', from, '--to', to, '--concurrency', '2'],
        { cwd: ROOT, env: envFor(env.config), stdio: 'ignore' },
      );
      child.on('error', reject);
      child.on('exit', resolve);
    });
    expect(code).toBe(0);
    const run = { workflowId: backfillWorkflowId(from, to) };
    const backfill = client.workflow.getHandle(run.workflowId);

    const described = await backfill.describe();
    expect(await described.staticSummary()).toBe(`Backfill ${from}..${to} · mode all · 2 at a time`);
    expect(await described.staticDetails()).toContain(`**Range:** ${from} to ${to}`);

    const daily = await client.workflow.getHandle(`daily-${to}`).describe();
    expect(await daily.staticSummary()).toBe(`Daily pipeline ${to} · backfill ${from}..${to} (${run.workflowId})`);
    expect(await daily.staticDetails()).toContain(`**Date:** ${to}`);

    const metadata = (await client.workflow.getHandle(`daily-${to}`).query('__temporal_workflow_metadata')) as {
      currentDetails?: string;
    };
    expect(metadata.currentDetails).toMatch(
      new RegExp(`^\\*\\*${to}\\*\\* succeeded · \\d+ records landed · \\d+ fact rows · checks: \\d+ pass`),
    );
    // each activity carries a one-line summary in the event history
    const history = await client.workflow.getHandle(`daily-${to}`).fetchHistory();
    const summaries = (history.events ?? [])
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => JSON.parse(Buffer.from(e.userMetadata?.summary?.data ?? []).toString() || 'null'));
    expect(summaries).toEqual(
      expect.arrayContaining([`landEvents · ${to}`, `stageEvents · ${to}`, `loadFacts · ${to}`, `runChecks · ${to}`]),
    );
    const backfillMetadata = (await backfill.query('__temporal_workflow_metadata')) as { currentDetails?: string };
    expect(backfillMetadata.currentDetails).toBe('2 of 2 dates done');
  });
});
