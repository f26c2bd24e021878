import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { HISTORIES_DIR, HISTORY_PATHS, historyFiles, listReleases, readHistory, readManifest } from '../lib/histories';
import { quietRuntime } from './temporal-support';

// Recorded per release by scripts/record-histories.ts into test/histories/<release>/. A change to the workflows that
// would break a run in flight (a new activity call in the middle, a reordered step) fails here: guard it with
// patched() (README: "Changing a workflow safely").

const releases = listReleases();

describe('recorded workflow histories', () => {
  it('are kept per release, each folder with a manifest naming every history file in it', () => {
    expect(releases.length).toBeGreaterThan(0);
    for (const release of releases) {
      const dir = path.join(HISTORIES_DIR, release);
      const manifest = readManifest(dir);
      expect(manifest.release).toBe(release);
      expect(manifest.histories.map((h) => h.file).sort()).toEqual(historyFiles(dir));
    }
  });

  it('of the newest release cover every path through the workflow code', () => {
    const newest = releases[releases.length - 1];
    const covered = new Set(readManifest(path.join(HISTORIES_DIR, newest)).histories.flatMap((h) => h.paths));
    const missing = Object.keys(HISTORY_PATHS).filter((p) => !covered.has(p as keyof typeof HISTORY_PATHS));
    expect(missing, `paths ${newest} has no recording of`).toEqual([]);
  });

  it('of every release replay against the current workflow code without non-determinism', async () => {
    quietRuntime();
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath: path.join(__dirname, '..', 'workflows'),
      workflowInterceptorModules: [path.join(__dirname, '..', 'workflows', 'activity-summaries')],
      logger: silent,
    });
    const histories = releases.flatMap((release) => {
      const dir = path.join(HISTORIES_DIR, release);
      return readManifest(dir).histories.map((h) => ({
        // the run must replay under its own id: a daily run behaves by it
        workflowId: h.workflowId,
        history: readHistory(path.join(dir, h.file)),
        name: `${release}/${h.file}`,
      }));
    });
    const replayed: string[] = [];
    const failures: string[] = [];
    // results come in the order of the histories
    for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
      const name = histories[replayed.length].name;
      replayed.push(name);
      if (result.error) failures.push(`${name} (${result.workflowId}): ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toEqual(histories.map((h) => h.name));
  });
});

const noop = () => undefined;
const silent = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error };
