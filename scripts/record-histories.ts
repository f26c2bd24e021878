import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Config } from '../lib/config';
import { closeClient } from '../lib/temporal-client';
import { backfillWorkflow, dailyPipelineWorkflow } from '../workflows';
import setupTemplate from '../test/global-setup';
import { createTestEnv } from '../test/support';
import { produceDays, startWorker, testClient } from '../test/temporal-support';
import { exitWithError } from '../lib/redact';

/**
 * Records the histories that test/replay.test.ts replays: a daily pipeline, a backfill (with a continue-as-new
 * when asked) and one of its children, run against the local stack in a throw-away database and topic.
 * Run it after a deliberate, replay-safe change to the workflows: `node --import tsx scripts/record-histories.ts`.
 */

export const HISTORIES_DIR = path.resolve(__dirname, '..', 'test', 'histories');

// dates no other test uses: workflow ids are per date in a shared namespace
const FROM = '2022-12-01';
const TO = '2022-12-02';

const TEMPORAL_CLI = path.resolve(__dirname, '..', '.tools', 'venv', 'bin', 'temporal');

/** The history as `temporal workflow show --output json` writes it: the format replay reads. */
function save(config: Config, name: string, workflowId: string, runId: string): void {
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
  // the workflow id is part of the name: replay needs it (a daily run behaves by its id) and the history lacks it
  const file = path.join(HISTORIES_DIR, `${name}--${workflowId}.json`);
  writeFileSync(file, json.endsWith('\n') ? json : `${json}\n`);
  const events = (JSON.parse(json) as { events: unknown[] }).events.length;
  console.log(`recorded ${workflowId} (${events} events) -> ${path.relative(process.cwd(), file)}`);
}

async function main(): Promise<void> {
  const dropTemplate = await setupTemplate();
  const env = await createTestEnv();
  const client = await testClient(env.config);
  const worker = await startWorker(env);
  try {
    await produceDays(env.config, FROM, 2, 300, 11);
    mkdirSync(HISTORIES_DIR, { recursive: true });

    const daily = await client.workflow.start(dailyPipelineWorkflow, {
      taskQueue: env.config.temporalTaskQueue,
      workflowId: `daily-${FROM}`,
      args: [{ date: FROM }],
    });
    await daily.result();
    save(env.config, 'daily-pipeline', daily.workflowId, daily.firstExecutionRunId);

    const backfill = await client.workflow.start(backfillWorkflow, {
      taskQueue: env.config.temporalTaskQueue,
      workflowId: `backfill-${FROM}-${TO}`,
      args: [{ from: FROM, to: TO, concurrency: 2 }],
    });
    const result = await backfill.result();
    if (result.failed.length) throw new Error(`backfill failed for ${result.failed.join(', ')}`);
    save(env.config, 'backfill', backfill.workflowId, backfill.firstExecutionRunId);
    const child = result.results.find((r) => r.date === TO)!;
    save(env.config, 'backfill-child', child.workflowId, child.runId!);
  } finally {
    await worker.stop();
    await closeClient(client);
    await env.cleanup();
    await dropTemplate();
  }
}

if (require.main === module) {
  main().catch((err) => exitWithError(err));
}
