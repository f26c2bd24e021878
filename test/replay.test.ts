import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import type { History } from '@temporalio/common/lib/proto-utils';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { quietRuntime } from './temporal-support';

// Recorded by scripts/record-histories.ts. A change to the workflows that would break a run in flight (a new
// activity call in the middle, a reordered step) fails here: version it with patched() or re-record on purpose.
const HISTORIES_DIR = path.join(__dirname, 'histories');

describe('recorded workflow histories replay with the current workflow code', () => {
  const files = readdirSync(HISTORIES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort();

  it('has the daily pipeline, backfill and backfill child histories', () => {
    const kinds = files.map((f) => f.split('--')[0]);
    expect(kinds).toEqual(expect.arrayContaining(['backfill', 'backfill-child', 'daily-pipeline']));
  });

  it('replays every history without non-determinism', async () => {
    quietRuntime();
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath: path.join(__dirname, '..', 'workflows'),
      workflowInterceptorModules: [path.join(__dirname, '..', 'workflows', 'activity-summaries')],
      logger: silent,
    });
    const histories = files.map((f) => ({
      // <kind>--<workflow id>.json: the run must replay under its own id
      workflowId: f.replace(/\.json$/, '').split('--')[1],
      history: historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES_DIR, f), 'utf8'))),
    }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
  });
});

/**
 * `historyFromJSON` from @temporalio/common, minus its failure here: this install has two copies of protobufjs
 * (under @temporalio/common and @temporalio/proto), and common's JSON reader rejects proto's message types
 * ("type must be a Type"). The reader of proto's own copy reads the same JSON (the `temporal workflow show
 * --output json` format) into the same History.
 */
function historyFromJSON(json: unknown): History {
  const fromProto = createRequire(require.resolve('@temporalio/proto'));
  const { fromJson } = fromProto('protobufjs/ext/protojson') as {
    fromJson: (type: unknown, json: unknown, options: object) => History;
  };
  const { patchProtobufRoot } = fromProto('@temporalio/proto/lib/patch-protobuf-root') as {
    patchProtobufRoot: (root: unknown) => { lookupType(name: string): unknown };
  };
  const historyType = patchProtobufRoot(fromProto('@temporalio/proto')).lookupType('temporal.api.history.v1.History');
  return fromJson(historyType, json, { ignoreUnknownFields: true });
}

const noop = () => undefined;
const silent = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error };
