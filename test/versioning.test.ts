import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { History } from '@temporalio/common/lib/proto-utils';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { createActivities } from '../activities';
import { EVENT_TYPE, HISTORIES_DIR, listReleases, readHistory, readManifest } from '../lib/histories';
import { livenessHeartbeat } from '../lib/liveness-heartbeat';
import { closeClient } from '../lib/temporal-client';
import { dailyWorkflowId } from '../lib/temporal';
import type { dailyPipelineWorkflow } from '../workflows';
import { NEW_STEP_PATCH } from './fixtures/daily-variants/new-step';
import { createTestEnv } from './support';
import { produceDays, quietRuntime, testClient } from './temporal-support';

// What README "Changing a workflow safely" says, shown on the daily pipeline: the variants under
// test/fixtures/daily-variants/ wrap the real dailyPipelineWorkflow with one new first step (an activity call),
// unguarded, behind patched(), and after deprecatePatch().

const FIXTURES = path.join(__dirname, 'fixtures', 'daily-variants');

const release = listReleases().at(-1)!;
const releaseDir = path.join(HISTORIES_DIR, release);
/** Every recorded run of the daily pipeline in the newest release: plain, scheduled, failed, re-loading, in flight. */
const dailies = readManifest(releaseDir)
  .histories.filter((h) => h.workflowType === 'dailyPipelineWorkflow')
  .map((h) => ({
    name: `${release}/${h.file}`,
    workflowId: h.workflowId,
    history: readHistory(path.join(releaseDir, h.file)),
  }));

const noop = () => undefined;
const silent = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error };

function bundle(workflowsPath: string): Promise<WorkflowBundle> {
  return bundleWorkflowCode({ workflowsPath, logger: silent });
}

/** Replays each history with the bundle; the error of each (undefined when it replayed). */
async function replay(
  workflowBundle: WorkflowBundle,
  histories: { name: string; workflowId: string; history: History }[],
): Promise<Record<string, Error | undefined>> {
  const errors: Record<string, Error | undefined> = {};
  for (const h of histories) {
    try {
      await Worker.runReplayHistory({ workflowBundle }, h.history, h.workflowId);
      errors[h.name] = undefined;
    } catch (err) {
      errors[h.name] = err as Error;
    }
  }
  return errors;
}

describe('a change to the daily workflow', () => {
  let unguarded: WorkflowBundle;
  let guarded: WorkflowBundle;
  let deprecated: WorkflowBundle;
  let current: WorkflowBundle;

  beforeAll(async () => {
    quietRuntime();
    [unguarded, guarded, deprecated, current] = await Promise.all([
      bundle(path.join(FIXTURES, 'unguarded.ts')),
      bundle(path.join(FIXTURES, 'guarded.ts')),
      bundle(path.join(FIXTURES, 'deprecated.ts')),
      bundle(path.join(__dirname, '..', 'workflows')),
    ]);
  });

  it(`the newest release (${release}) has recorded daily runs of every kind to replay`, () => {
    const kinds = readManifest(releaseDir)
      .histories.filter((h) => h.workflowType === 'dailyPipelineWorkflow')
      .flatMap((h) => h.paths);
    expect(kinds).toEqual(
      expect.arrayContaining(['daily', 'daily-failed', 'daily-terminated', 'reload-late-dates', 'schedule-handoff']),
    );
  });

  it('unguarded, fails replay of every recorded daily run with a DeterminismViolationError', async () => {
    const errors = await replay(unguarded, dailies);
    for (const h of dailies) {
      expect(errors[h.name], h.name).toBeInstanceOf(DeterminismViolationError);
      // the recorded run's first command was not the new activity
      expect(errors[h.name]!.message, h.name).toMatch(/nondetermin/i);
    }
  });

  it('behind patched(), replays every recorded daily run', async () => {
    const errors = await replay(guarded, dailies);
    expect(Object.entries(errors).filter(([, e]) => e !== undefined)).toEqual([]);
  });

  it('after deprecatePatch(), no longer replays the runs from before the change: retire their release first', async () => {
    const errors = await replay(deprecated, dailies);
    for (const h of dailies) expect(errors[h.name], h.name).toBeInstanceOf(DeterminismViolationError);
  });

  it('behind patched(), takes the new step on a new run, whose history replays on the guarded and deprecated code', async () => {
    const env = await createTestEnv({ partitions: 1 });
    const client = await testClient(env.config);
    const date = '2022-11-15';
    const connection = await NativeConnection.connect({ address: env.config.temporalAddress });
    const worker = await Worker.create({
      connection,
      namespace: env.config.temporalNamespace,
      taskQueue: env.config.temporalTaskQueue,
      workflowBundle: guarded,
      activities: createActivities({ config: env.config, pool: env.pool, db: env.db }),
      interceptors: { activity: [livenessHeartbeat] },
    });
    const running = worker.run();
    try {
      await produceDays(env.config, date, 1, 100, 3);
      const handle = await client.workflow.start<typeof dailyPipelineWorkflow>('dailyPipelineWorkflow', {
        taskQueue: env.config.temporalTaskQueue,
        workflowId: dailyWorkflowId(date),
        args: [{ date }],
      });
      expect((await handle.result()).status).toBe('succeeded');
      const history = await handle.fetchHistory();

      const events = history.events ?? [];
      const marker = events.find((e) => e.eventType === EVENT_TYPE.MARKER_RECORDED);
      expect(marker?.markerRecordedEventAttributes?.markerName).toBe('core_patch');
      const patchData = marker?.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data;
      expect(JSON.parse(Buffer.from(patchData!).toString('utf8'))).toEqual({ id: NEW_STEP_PATCH, deprecated: false });
      const activities = events
        .filter((e) => e.eventType === EVENT_TYPE.ACTIVITY_TASK_SCHEDULED)
        .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
      expect(activities.slice(0, 3)).toEqual(['echo', 'recordPipelineRun', 'landEvents']);

      const fresh = [{ name: 'guarded run', workflowId: handle.workflowId, history }];
      expect(await replay(guarded, fresh)).toEqual({ 'guarded run': undefined });
      expect(await replay(deprecated, fresh)).toEqual({ 'guarded run': undefined });
      // and why a deploy is not rolled back past a patch: the code from before it cannot replay this run
      expect((await replay(current, fresh))['guarded run']).toBeInstanceOf(DeterminismViolationError);
    } finally {
      worker.shutdown();
      await running;
      await connection.close();
      await closeClient(client);
      await env.cleanup();
    }
  });
});
