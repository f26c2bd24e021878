import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { quietRuntime } from './temporal-support';

// Recorded by scripts/record-histories.ts. A change to the workflows that would break a run in flight (a new
// activity call in the middle, a reordered step) fails here: version it with patched() or re-record on purpose.
const HISTORIES_DIR = path.join(__dirname, 'histories');

describe('recorded workflow histories replay with the current workflow code', () => {
  const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json')).sort();

  it('has the daily pipeline, backfill and backfill child histories', () => {
    expect(files).toEqual(expect.arrayContaining(['backfill-child.json', 'backfill.json', 'daily-pipeline.json']));
  });

  it('replays every history without non-determinism', async () => {
    quietRuntime();
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: path.join(__dirname, '..', 'workflows'), logger: silent });
    const histories = files.map((f) => ({
      workflowId: f.replace(/\.json$/, ''),
      history: historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES_DIR, f), 'utf8'))),
    }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
  });
});

const noop = () => undefined;
const silent = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error };
