import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { createRunAlertActivities } from '../activities/run-alerts';
import { LATE_DATA_SCHEDULE_ID, upsertLateDataSchedule } from '../lib/late-data';
import { closeClient } from '../lib/temporal-client';
import { addDays, utcDate } from '../lib/temporal';
import { produceEvents } from '../lib/produce';
import { upsertSchedule } from '../lib/schedule';
import { dailyPipelineWorkflow } from '../workflows';
import { startSlackStandIn, type SlackStandIn } from './slack-stand-in';
import { createTestEnv, uniqueName, type TestEnv } from './support';
import { type RunningWorker, startWorker, testClient, until } from './temporal-support';

/** Alerts about runs, against a local Slack stand-in: a failed run, its recovery, late data, a Slack that hangs. */

const texts = (slack: SlackStandIn, prefix: string) =>
  slack.received.map((m) => m.text).filter((t) => t.startsWith(prefix));

describe('run alerts', () => {
  let env: TestEnv;
  let slack: SlackStandIn;
  let client: Client;
  let worker: RunningWorker | undefined;

  async function setUp(options: { hang?: boolean } = {}) {
    env = await createTestEnv({ partitions: 2 });
    slack = await startSlackStandIn(options);
    env.config = { ...env.config, slackWebhookUrl: slack.url };
    client = await testClient(env.config);
    worker = await startWorker(env);
  }
  beforeEach(() => {
    worker = undefined;
  });
  afterEach(async () => {
    await worker?.stop();
    await closeClient(client);
    await slack.close();
    await env.cleanup();
  });

  const runDate = (date: string) =>
    client.workflow.execute(dailyPipelineWorkflow, {
      workflowId: `daily-${date}`,
      taskQueue: env.config.temporalTaskQueue,
      args: [{ date }],
    });

  it('a failed run posts one message with the step and error; re-runs and retries nothing more; the fix one "recovered"', async () => {
    await setUp();
    const date = '2023-05-09';
    await produceEvents(env.config, { events: 500, days: 1, start: date, seed: 21, badRate: 0 });
    await runDate(date);
    expect(texts(slack, 'Run ')).toEqual([]);

    // the lake manifest no longer matches the date's file: staging refuses it, non-retryably
    await env.pool.query(`update ops.lake_files set row_count = row_count + 1 where dt = $1 and area = 'events'`, [
      date,
    ]);
    await expect(runDate(date)).rejects.toBeInstanceOf(WorkflowFailedError);
    await expect(runDate(date)).rejects.toBeInstanceOf(WorkflowFailedError);
    const failed = texts(slack, 'Run failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toContain(`Run failed ${date} at step stage`);
    expect(failed[0]).toContain('differs from the manifest');
    expect(failed[0]).toContain(`/workflows/daily-${date}/`);

    // a retry of the alert activity finds the failure open
    const { alertRunOutcome } = createRunAlertActivities(env);
    const retry = await alertRunOutcome({
      date,
      run: { workflowId: `daily-${date}`, runId: 'retry' },
      status: 'failed',
      step: 'stage',
      error: 'again',
    });
    expect(retry.alerted).toBeNull();

    await env.pool.query(`update ops.lake_files set row_count = row_count - 1 where dt = $1 and area = 'events'`, [
      date,
    ]);
    await runDate(date);
    await runDate(date);
    expect(texts(slack, 'Run failed')).toHaveLength(1);
    expect(texts(slack, 'Run recovered')).toEqual([
      expect.stringContaining(`Run recovered ${date}: the date loaded successfully`),
    ]);
    const { rows } = await env.pool.query(
      `select fingerprint, delivered from ops.alerts where check_name = 'run' order by alert_id`,
    );
    expect(rows).toEqual([
      { fingerprint: `${date}:run:fail`, delivered: true },
      { fingerprint: `${date}:run:recovered`, delivered: true },
    ]);
  });

  it('with the daily schedule paused and the deadline passed, exactly one "late" message for the missing date', async () => {
    await setUp();
    const dailyId = uniqueName('daily_paused');
    const lateId = uniqueName(LATE_DATA_SCHEDULE_ID);
    await upsertSchedule(client, env.config, { scheduleId: dailyId });
    await client.schedule.getHandle(dailyId).pause('test: the schedule is paused');
    // a deadline of 00:00: for the previous UTC day it has passed whenever the test runs
    await upsertLateDataSchedule(client, { ...env.config, lateDataDeadline: '00:00' }, lateId);
    const late = client.schedule.getHandle(lateId);
    try {
      for (let n = 1; n <= 2; n++) {
        await late.trigger();
        const ids = await until(`late-data run ${n}`, async () => {
          const actions = (await late.describe()).info.recentActions;
          return actions.length >= n && actions.map((a) => a.action.workflow.workflowId);
        });
        await client.workflow.getHandle(ids[n - 1]).result();
      }
      const date = addDays(utcDate(new Date()), -1);
      const lateTexts = texts(slack, 'Data late');
      expect(lateTexts).toHaveLength(1);
      expect(lateTexts[0]).toContain(`Data late: ${date} not loaded by 00:00 UTC — never started`);
    } finally {
      await late.delete();
      await client.schedule.getHandle(dailyId).delete();
    }
  });

  it('late data names the state: running on a step, or failed with its error; a loaded date or an early check says nothing', async () => {
    await setUp();
    const { checkLateData } = createRunAlertActivities(env);
    const run = { workflowId: 'late', runId: 'r' };
    const [running, failed, loaded] = ['2023-06-01', '2023-06-02', '2023-06-03'];
    await env.pool.query(
      `insert into ops.pipeline_runs (workflow_id, run_id, dt, step, status, error, started_at) values
         ('daily-2023-06-01', 'a', '2023-06-01', 'pipeline', 'running', null, now() - interval '1 hour'),
         ('daily-2023-06-01', 'a', '2023-06-01', 'land', 'succeeded', null, now() - interval '1 hour'),
         ('daily-2023-06-01', 'a', '2023-06-01', 'facts', 'running', null, now()),
         ('daily-2023-06-02', 'b', '2023-06-02', 'pipeline', 'failed', 'dimensions: connection refused', now()),
         ('daily-2023-06-02', 'b', '2023-06-02', 'dimensions', 'failed', 'connection refused', now()),
         ('daily-2023-06-03', 'c', '2023-06-03', 'pipeline', 'succeeded', null, now())`,
    );
    const at = (date: string) => `${addDays(date, 1)}T06:30:00Z`;
    const early = await checkLateData({
      date: running,
      deadline: '06:00',
      run,
      now: `${addDays(running, 1)}T05:59:00Z`,
    });
    expect(early.verdict).toBe('not-due');
    expect((await checkLateData({ date: running, deadline: '06:00', run, now: at(running) })).verdict).toBe('late');
    expect((await checkLateData({ date: failed, deadline: '06:00', run, now: at(failed) })).verdict).toBe('late');
    expect((await checkLateData({ date: loaded, deadline: '06:00', run, now: at(loaded) })).verdict).toBe('loaded');
    expect((await checkLateData({ date: failed, deadline: '06:00', run, now: at(failed) })).alerted).toBeNull();
    expect(texts(slack, 'Data late')).toEqual([
      expect.stringContaining(`Data late: ${running} not loaded by 06:00 UTC — still running on step facts`),
      expect.stringContaining(
        `Data late: ${failed} not loaded by 06:00 UTC — failed at step dimensions: dimensions: connection refused`,
      ),
    ]);
  });

  it('a Slack that never answers: the run completes and the alert is recorded as undelivered', async () => {
    await setUp({ hang: true });
    const date = '2023-05-16';
    // 5 % bad records: the dead-letter check fails, so the run has an alert to post
    await produceEvents(env.config, { events: 500, days: 1, start: date, seed: 22, badRate: 0.05 });
    const out = await runDate(date);
    expect(out.status).toBe('succeeded');
    expect(out.alert).toMatchObject({ messagesDelivered: 0, messagesUndelivered: 1 });
    expect(slack.requests).toBeGreaterThan(0);
    const { rows } = await env.pool.query(
      `select delivered, attempts, last_error from ops.alerts where dt = $1 and check_name = 'dead_letters'`,
      [date],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].delivered).toBe(false);
    expect(rows[0].attempts).toBeGreaterThan(0);
    expect(rows[0].last_error).toMatch(/timeout/i);
  });
});
