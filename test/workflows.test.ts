import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, ScheduleOverlapPolicy, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import { sql } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../lib/config';
import { closeClient } from '../lib/temporal-client';
import {
  PIPELINE_DATE,
  PIPELINE_STEP,
  addDays,
  backfillWorkflowId,
  dailyWorkflowId,
  previousUtcDay,
  utcDate,
} from '../lib/temporal';
import { createMartActivities } from '../activities/marts';
import { EventSender } from '../lib/kafka';
import type { RawEventV1 } from '../lib/events';
import { deleteSchedule, upsertSchedule } from '../lib/schedule';
import { backfillWorkflow, dailyPipelineWorkflow, progressQuery } from '../workflows';
import { createTestEnv, type TestEnv, uniqueName } from './support';
import {
  ROOT,
  envFor,
  killAndWait,
  produceDays,
  spawnWorker,
  startWorker,
  testClient,
  until,
  warehouseHashes,
  type RunningWorker,
} from './temporal-support';

// Workflow ids are per date and the namespace is shared: each test owns its own dates.

async function factDates(env: TestEnv): Promise<Record<string, number>> {
  const { rows } = await sql<{ dt: string; n: number }>`
    select to_char(to_date(date_key::text, 'YYYYMMDD'), 'YYYY-MM-DD') as dt, count(*)::int as n
    from warehouse.fact_events group by 1 order by 1`.execute(env.db);
  return Object.fromEntries(rows.map((r) => [r.dt, r.n]));
}

async function pipelineRows(env: TestEnv, date: string) {
  return env.db
    .selectFrom('ops.pipeline_runs')
    .select(['workflow_id', 'run_id', 'status', 'rows_inserted'])
    .where('dt', '=', date)
    .where('step', '=', 'pipeline')
    .execute();
}

/**
 * The scenario of the tests of marts after an earlier date's load: uma's signup (plan pro) on `earlier` and her
 * purchase on `later`, produced to the test's topic.
 */
async function produceUmaSignupAndPurchase(env: TestEnv, earlier: string, later: string): Promise<void> {
  const event = (type: RawEventV1['event_type'], time: string, extra: Partial<RawEventV1>): RawEventV1 => ({
    schema_version: 'v1',
    event_id: randomUUID(),
    event_type: type,
    event_time: time,
    user_id: 'uma',
    session_id: `s-uma-${time.slice(0, 10)}`,
    device: { type: 'desktop', os: 'macOS', browser: 'Safari' },
    context: { country: 'DE', page: '/checkout' },
    ...extra,
  });
  const producer = EventSender.connect(env.config, env.config.kafkaTopic);
  for (const e of [
    event('user_signup', `${earlier}T09:00:00Z`, { user: { email: 'uma@example.com', plan: 'pro', country: 'DE' } }),
    event('purchase', `${later}T10:00:00Z`, {
      purchase: { order_id: 'o-uma-1', product_id: 'p-42', amount: 30, currency: 'EUR' },
    }),
  ])
    await producer.send(Buffer.from(e.user_id), Buffer.from(JSON.stringify(e)));
  await producer.close();
}

describe('backfill through Temporal', () => {
  let env: TestEnv;
  let client: Client;
  let worker: RunningWorker;
  const dates = ['2023-01-02', '2023-01-03', '2023-01-04'];

  beforeAll(async () => {
    env = await createTestEnv();
    client = await testClient(env.config);
    await produceDays(env.config, dates[0], dates.length);
    worker = await startWorker(env);
  });
  afterAll(async () => {
    await worker?.stop();
    if (client) await closeClient(client);
    await env?.cleanup();
  });

  it('loads every date with concurrency 3, one daily-<date> run per date, search attributes set', async () => {
    const handle = await client.workflow.start(backfillWorkflow, {
      taskQueue: env.config.temporalTaskQueue,
      workflowId: uniqueName(backfillWorkflowId(dates[0], dates[2])),
      args: [{ from: dates[0], to: dates[2], concurrency: 3 }],
    });
    const result = await handle.result();
    expect(result.failed).toEqual([]);
    expect(result.succeeded).toEqual(dates);

    const progress = await handle.query(progressQuery);
    expect(progress).toMatchObject({ total: 3, done: 3, succeeded: 3, failed: [], running: [], phase: 'done' });

    const facts = await factDates(env);
    for (const d of dates) expect(facts[d]).toBeGreaterThan(0);
    expect(result.results.map((r) => r.factRows)).toEqual(dates.map((d) => facts[d]));

    for (const d of dates) {
      const runs = await pipelineRows(env, d);
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ workflow_id: dailyWorkflowId(d), status: 'succeeded' });
      const listed = await until(`visibility of ${dailyWorkflowId(d)}`, async () => {
        const found = [];
        for await (const w of client.workflow.list({
          query: `WorkflowId = '${dailyWorkflowId(d)}' AND PipelineDate = '${d}' AND RunId = '${runs[0].run_id}'`,
        })) {
          found.push(w);
        }
        return found.length === 1 && found[0].status.name === 'COMPLETED' ? found : undefined;
      });
      expect(listed[0].typedSearchAttributes.get(PIPELINE_DATE)).toBe(d);
      expect(listed[0].typedSearchAttributes.get(PIPELINE_STEP)).toBe('done');
    }
  });

  it('a second start of daily-D while it runs attaches to it instead of loading D again', async () => {
    const date = dates[1];
    const options = {
      taskQueue: env.config.temporalTaskQueue,
      workflowId: dailyWorkflowId(date),
      args: [{ date }] as [{ date: string }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    };
    const first = await client.workflow.start(dailyPipelineWorkflow, options);
    const second = await client.workflow.start(dailyPipelineWorkflow, options);
    expect(second.firstExecutionRunId).toBe(first.firstExecutionRunId);
    await expect(
      client.workflow.start(dailyPipelineWorkflow, {
        ...options,
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      }),
    ).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
    const result = await first.result();
    expect(result.status).toBe('succeeded');

    const runs = await pipelineRows(env, date);
    // the backfill's run and this one: one more, not two more
    expect(runs).toHaveLength(2);
    expect(runs.filter((r) => r.run_id === first.firstExecutionRunId)).toHaveLength(1);
  });

  it('mode missing runs only the unloaded dates; mode failed only the dates whose latest run failed', async () => {
    const from = '2023-01-01'; // never loaded: nothing was produced for it
    const to = dates[2];
    const missing = await client.workflow.execute(backfillWorkflow, {
      taskQueue: env.config.temporalTaskQueue,
      workflowId: uniqueName('backfill-missing'),
      args: [{ from, to, mode: 'missing' }],
    });
    expect(missing.results.map((r) => r.date)).toEqual([from]);
    expect(missing).toMatchObject({ total: 1, skipped: 3, failed: [] });

    // make the latest whole run of one date a failed one
    await env.db
      .insertInto('ops.pipeline_runs')
      .values({
        workflow_id: dailyWorkflowId(dates[0]),
        run_id: uniqueName('failed-run'),
        dt: dates[0],
        step: 'pipeline',
        status: 'failed',
        error: 'simulated',
      })
      .execute();
    const failed = await client.workflow.execute(backfillWorkflow, {
      taskQueue: env.config.temporalTaskQueue,
      workflowId: uniqueName('backfill-failed'),
      args: [{ from, to, mode: 'failed' }],
    });
    expect(failed.results.map((r) => r.date)).toEqual([dates[0]]);
    expect(failed.failed).toEqual([]);

    // its re-run succeeded, so nothing is left to retry
    const again = await client.workflow.execute(backfillWorkflow, {
      taskQueue: env.config.temporalTaskQueue,
      workflowId: uniqueName('backfill-failed'),
      args: [{ from, to, mode: 'failed' }],
    });
    expect(again.results).toEqual([]);
  });
});

describe('a long backfill', () => {
  it('continues as new with its progress, and one failed date neither stops the others nor escapes mode failed', async () => {
    const env = await createTestEnv();
    const client = await testClient(env.config);
    const worker = await startWorker(env);
    const dates = ['2023-06-01', '2023-06-02', '2023-06-03'];
    try {
      await produceDays(env.config, dates[0], 3, 200, 5);
      const handle = await client.workflow.start(backfillWorkflow, {
        taskQueue: env.config.temporalTaskQueue,
        workflowId: uniqueName('backfill-can'),
        args: [{ from: dates[0], to: dates[2], concurrency: 1, datesPerRun: 2 }],
      });
      // an operator terminates one date's run from the UI
      const victim = client.workflow.getHandle(dailyWorkflowId(dates[1]));
      await until(
        'daily run of the second date',
        async () => (await victim.describe()).status.name === 'RUNNING',
        120_000,
      );
      await victim.terminate('test: an operator stops this date');

      const result = await handle.result();
      expect(result.succeeded).toEqual([dates[0], dates[2]]);
      expect(result.failed).toEqual([dates[1]]);
      expect(result.results.find((r) => r.date === dates[1])?.error).toMatch(/terminated|stops this date/i);
      // the result came from the second run of the chain, which carried the first run's outcomes
      const progress = await handle.query(progressQuery);
      expect(progress.generation).toBe(2);
      expect(progress.done).toBe(3);

      const runs = await pipelineRows(env, dates[1]);
      expect(runs.map((r) => r.status)).toEqual(['failed']);
      const retry = await client.workflow.execute(backfillWorkflow, {
        taskQueue: env.config.temporalTaskQueue,
        workflowId: uniqueName('backfill-retry'),
        args: [{ from: dates[0], to: dates[2], mode: 'failed' }],
      });
      expect(retry.succeeded).toEqual([dates[1]]);
      expect(retry.skipped).toBe(2);
    } finally {
      await worker.stop();
      await closeClient(client);
      await env.cleanup();
    }
  });
});

describe('a backfill with a failed date', () => {
  it('posts a summary that names the failed date and why, and is not a pass; marked dates are re-loaded and picked by mode missing', async () => {
    const env = await createTestEnv();
    // a local HTTP server standing in for Slack's incoming webhook
    const received: { text: string; blocks: unknown[] }[] = [];
    const slack = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => slack.listen(0, '127.0.0.1', resolve));
    env.config = {
      ...env.config,
      slackWebhookUrl: `http://127.0.0.1:${(slack.address() as AddressInfo).port}/services/T000/B000/XXXX`,
    };
    const client = await testClient(env.config);
    const worker = await startWorker(env);
    const dates = ['2023-03-06', '2023-03-07'];
    const backfill = (mode: 'all' | 'failed' | 'missing') =>
      client.workflow.execute(backfillWorkflow, {
        taskQueue: env.config.temporalTaskQueue,
        workflowId: uniqueName(`backfill-${mode}`),
        args: [{ from: dates[0], to: dates[1], mode }],
      });
    try {
      await produceDays(env.config, dates[0], 2, 300, 13);
      expect((await backfill('all')).failed).toEqual([]);

      // a lake file of the second date no longer matches the manifest: its stage fails without retry
      const corrupt = (delta: number) =>
        sql`update ops.lake_files set row_count = row_count + ${delta}
            where lake_file_id = (select min(lake_file_id) from ops.lake_files where area = 'events' and dt = ${dates[1]})`.execute(
          env.db,
        );
      await corrupt(1);
      const out = await backfill('all');
      expect(out.succeeded).toEqual([dates[0]]);
      expect(out.failed).toEqual([dates[1]]);
      expect(out.summary).toMatchObject({
        datesSucceeded: 1,
        datesFailed: [{ date: dates[1], status: 'failed', error: expect.stringMatching(/ops\.lake_files lists/) }],
      });
      const message = received.find((m) => m.text.includes(`(failed: ${dates[1]})`));
      expect(message?.text).toContain(`Backfill ${dates[0]} → ${dates[1]}: 1 succeeded, 1 failed;`);
      expect(JSON.stringify(message?.blocks)).toMatch(new RegExp(`:x: \\*${dates[1]}\\* failed: staged \\d+ rows`));
      const status = await env.db
        .selectFrom('ops.alerts')
        .select('status')
        .where('kind', '=', 'summary')
        .orderBy('alert_id', 'desc')
        .executeTakeFirstOrThrow();
      expect(status.status).toBe('fail');

      // repaired, mode failed re-runs just that date
      await corrupt(-1);
      const retried = await backfill('failed');
      expect(retried.results.map((r) => r.date)).toEqual([dates[1]]);
      expect(retried.failed).toEqual([]);

      // a date marked for re-load (a load that left records out) counts as missing, and the next daily run re-loads it
      await env.db
        .updateTable('ops.date_loads')
        .set({ needs_reload: true, reload_reason: 'test: a load left records out' })
        .where('dt', '=', dates[0])
        .execute();
      const missing = await backfill('missing');
      expect(missing.results.map((r) => r.date)).toEqual([dates[0]]);
      await env.db.updateTable('ops.date_loads').set({ needs_reload: true }).where('dt', '=', dates[0]).execute();
      const daily = await client.workflow.execute(dailyPipelineWorkflow, {
        taskQueue: env.config.temporalTaskQueue,
        workflowId: dailyWorkflowId(dates[1]),
        args: [{ date: dates[1] }],
      });
      expect(daily.reloads.map((r) => r.date)).toEqual([dates[0]]);
      const marks = await env.db.selectFrom('ops.date_loads').select(['dt', 'needs_reload']).orderBy('dt').execute();
      expect(marks).toEqual(dates.map((dt) => ({ dt, needs_reload: false })));
    } finally {
      await worker.stop();
      await closeClient(client);
      await new Promise((resolve) => slack.close(resolve));
      await env.cleanup();
    }
  });
});

describe('loading an earlier date after a later one', () => {
  it('refreshes the marts of the later dates whose facts moved to another user version', async () => {
    const env = await createTestEnv();
    const client = await testClient(env.config);
    const worker = await startWorker(env);
    const dates = ['2023-05-01', '2023-05-02', '2023-05-03'];
    try {
      await produceDays(env.config, dates[0], 3, 600, 21);
      for (const date of [...dates].reverse()) {
        const out = await client.workflow.execute(dailyPipelineWorkflow, {
          taskQueue: env.config.temporalTaskQueue,
          workflowId: dailyWorkflowId(date),
          args: [{ date }],
        });
        expect(out.status).toBe('succeeded');
      }
      const repointed = await env.db
        .selectFrom('ops.pipeline_runs')
        .select(sql<number>`(details->'user'->>'factsRepointed')::int`.as('n'))
        .where('step', '=', 'dimensions')
        .execute();
      expect(repointed.some((r) => r.n > 0)).toBe(true); // the scenario happened

      const incremental = await warehouseHashes(env.db);
      await createMartActivities({ config: env.config, pool: env.pool, db: env.db }).refreshMarts({ dates });
      expect(incremental).toEqual(await warehouseHashes(env.db));
    } finally {
      await worker.stop();
      await closeClient(client);
      await env.cleanup();
    }
  });
  it('refreshes the marts of a later date whose version an earlier date completed in place', async () => {
    const env = await createTestEnv();
    const client = await testClient(env.config);
    const worker = await startWorker(env);
    const [earlier, later] = ['2023-05-08', '2023-05-09'];
    const revenue = () =>
      env.db.selectFrom('marts.revenue_daily').select(['plan', 'revenue']).where('date', '=', later).execute();
    try {
      // uma buys on the later date; her signup (plan pro) is on the earlier one, loaded second: the later date's
      // facts point at an inferred member, which the signup completes under the same key (no fact is re-pointed)
      await produceUmaSignupAndPurchase(env, earlier, later);

      const runs = [];
      for (const date of [later, earlier]) {
        runs.push(
          await client.workflow.execute(dailyPipelineWorkflow, {
            taskQueue: env.config.temporalTaskQueue,
            workflowId: dailyWorkflowId(date),
            args: [{ date }],
          }),
        );
      }
      // the scenario: the earlier date's load changed a version in place and re-pointed nothing
      expect(runs[1].load?.dimensions.user).toMatchObject({ factsRepointed: 0, versionsUpdated: 1 });
      expect(runs[1].load?.repointedDates).toEqual([later]);
      expect(await revenue()).toEqual([{ plan: 'pro', revenue: '30.00' }]);

      const incremental = await warehouseHashes(env.db);
      await createMartActivities({ config: env.config, pool: env.pool, db: env.db }).refreshMarts({
        dates: [earlier, later],
      });
      expect(incremental).toEqual(await warehouseHashes(env.db));
    } finally {
      await worker.stop();
      await closeClient(client);
      await env.cleanup();
    }
  });
});

describe('worker killed mid-backfill', () => {
  const from = '2023-04-03';
  const to = '2023-04-06';

  it('ends with the same warehouse as an uninterrupted run', { timeout: 300_000 }, async () => {
    const reference = await createTestEnv();
    const killed = await createTestEnv();
    const client = await testClient(reference.config);
    try {
      await produceDays(reference.config, from, 4);
      await produceDays(killed.config, from, 4);

      const ref = await startWorker(reference);
      try {
        const out = await client.workflow.execute(backfillWorkflow, {
          taskQueue: reference.config.temporalTaskQueue,
          workflowId: uniqueName('backfill-reference'),
          args: [{ from, to, concurrency: 2 }],
        });
        expect(out.failed).toEqual([]);
      } finally {
        await ref.stop();
      }

      let child = await spawnWorker(killed.config);
      const handle = await client.workflow.start(backfillWorkflow, {
        taskQueue: killed.config.temporalTaskQueue,
        workflowId: uniqueName('backfill-killed'),
        args: [{ from, to, concurrency: 2 }],
      });
      // kill it once a load step of some date is under way
      await until(
        'a load step in flight',
        async () => {
          const { rows } = await sql<{ n: number }>`
            select count(*)::int as n from ops.pipeline_runs where step in ('stage', 'dimensions', 'facts')`.execute(
            killed.db,
          );
          return rows[0].n > 0;
        },
        120_000,
      );
      await killAndWait(child, 'SIGKILL');
      child = await spawnWorker(killed.config);
      try {
        const out = await handle.result();
        expect(out.failed).toEqual([]);
        expect(out.succeeded).toHaveLength(4);
      } finally {
        await killAndWait(child, 'SIGTERM');
      }

      expect(await warehouseHashes(killed.db)).toEqual(await warehouseHashes(reference.db));
    } finally {
      await closeClient(client);
      await reference.cleanup();
      await killed.cleanup();
    }
  });
});

describe('worker killed after a dimension load committed, before it reported', () => {
  it(
    "the retried load finds nothing to change, and the later date's marts are refreshed all the same",
    { timeout: 180_000 },
    async () => {
      const env = await createTestEnv();
      const client = await testClient(env.config);
      const [earlier, later] = ['2023-06-12', '2023-06-13'];
      const revenue = () =>
        env.db.selectFrom('marts.revenue_daily').select(['plan', 'revenue']).where('date', '=', later).execute();
      const holders: pg.Client[] = [];
      /** An open transaction of its own connection holding what `statement` takes; rolled back by `release`. */
      const hold = async (statement: string, values: unknown[] = []) => {
        const holder = new pg.Client({ connectionString: env.config.databaseUrl, application_name: 'kill-test' });
        await holder.connect();
        holders.push(holder);
        await holder.query('begin');
        await holder.query(statement, values);
        return () => holder.query('rollback');
      };
      const waiting = (pattern: string) =>
        until(`a worker statement like ${pattern} waiting on a lock`, async () => {
          const { rows } = await env.pool.query(
            `select 1 from pg_stat_activity
           where datname = current_database() and application_name = 'nightshift' and wait_event_type = 'Lock'
             and query ilike $1`,
            [pattern],
          );
          return rows.length > 0;
        });
      let child = await spawnWorker(env.config);
      try {
        // uma's signup (plan pro) is on the earlier date, her purchase on the later one, loaded first
        await produceUmaSignupAndPurchase(env, earlier, later);
        const start = (date: string) =>
          client.workflow.start(dailyPipelineWorkflow, {
            taskQueue: env.config.temporalTaskQueue,
            workflowId: dailyWorkflowId(date),
            args: [{ date }],
            workflowIdConflictPolicy: WorkflowIdConflictPolicy.TERMINATE_EXISTING,
          });
        await (await start(later)).result();
        expect(await revenue()).toEqual([{ plan: 'unknown', revenue: '30.00' }]);

        // the earlier date's user dimension waits inside its transaction; its step row is then held too, so that the
        // step's bookkeeping after the commit waits: the worker dies between the commit and the activity's report
        const releaseChanges = await hold('lock table warehouse.user_changes in exclusive mode');
        const handle = await start(earlier);
        await waiting('%insert into warehouse.user_changes%');
        const releaseStep = await hold(
          `select 1 from ops.pipeline_runs where dt = $1::date and step = 'dimensions' for update`,
          [earlier],
        );
        await releaseChanges();
        await waiting('%update "ops"."pipeline_runs"%');
        const committed = await env.db
          .selectFrom('warehouse.dim_user')
          .select(['plan', 'is_inferred'])
          .where('user_id', '=', 'uma')
          .execute();
        expect(committed).toEqual([{ plan: 'pro', is_inferred: false }]);
        await killAndWait(child, 'SIGKILL');
        await releaseStep();
        child = await spawnWorker(env.config);

        const out = await handle.result();
        expect(out.load?.dimensions).toMatchObject({ user: { versionsUpdated: 0 } });
        expect(out.load?.dimensions.attempt).toBeGreaterThan(1);
        expect(out.load?.repointedDates).toEqual([later]);
        expect(await revenue()).toEqual([{ plan: 'pro', revenue: '30.00' }]);
      } finally {
        for (const holder of holders) await holder.end().catch(() => undefined);
        await killAndWait(child, 'SIGTERM');
        await closeClient(client);
        await env.cleanup();
      }
    },
  );
});

describe('daily schedule', () => {
  it('is created idempotently; a triggered or caught-up run loads the day before its scheduled time', async () => {
    const env = await createTestEnv({ topic: true });
    const client = await testClient(env.config);
    const worker = await startWorker(env);
    const scheduleId = uniqueName('nightshift-daily-test');
    try {
      expect(await upsertSchedule(client, env.config, { scheduleId, cron: '0 2 * * *' })).toBe('created');
      expect(await upsertSchedule(client, env.config, { scheduleId, cron: '0 3 * * *' })).toBe('updated');
      const described = await client.schedule.getHandle(scheduleId).describe();
      expect(described.spec.calendars?.[0]?.hour).toEqual([{ start: 3, end: 3, step: 1 }]);
      expect(described.policies.overlap).toBe('BUFFER_ALL');

      const before = new Date();
      await client.schedule.getHandle(scheduleId).trigger();
      const action = await until('the triggered run', async () => {
        const d = await client.schedule.getHandle(scheduleId).describe();
        return d.info.recentActions[0]?.action;
      });
      const scheduledRun = client.workflow.getHandle<typeof dailyPipelineWorkflow>(
        action.workflow.workflowId,
        action.workflow.firstExecutionRunId,
      );
      const result = await scheduledRun.result();
      const expected = previousUtcDay(before);
      // the trigger might straddle midnight UTC
      expect([expected, previousUtcDay(new Date())]).toContain(result.date);
      expect(result.status).toBe('delegated');
      expect(result.delegatedTo).toBe(dailyWorkflowId(result.date));
      expect(result.delegated?.status).toBe('succeeded');
      const runs = await pipelineRows(env, result.date);
      expect(runs).toEqual([
        expect.objectContaining({ workflow_id: dailyWorkflowId(result.date), status: 'succeeded' }),
      ]);

      // a missed run caught up late loads the day before its nominal time, not before the time it ran
      const nominal = new Date(`${addDays(utcDate(new Date()), -5)}T03:00:00Z`);
      await client.schedule.getHandle(scheduleId).backfill({
        start: new Date(nominal.getTime() - 30 * 60_000),
        end: new Date(nominal.getTime() + 30 * 60_000),
        overlap: ScheduleOverlapPolicy.ALLOW_ALL,
      });
      const caughtUp = client.workflow.getHandle<typeof dailyPipelineWorkflow>(
        `${scheduleId}-${nominal.toISOString().replace('.000Z', 'Z')}`,
      );
      await until('the caught-up run', async () => (await caughtUp.describe()).runId, 30_000);
      const late = await caughtUp.result();
      expect(late.date).toBe(previousUtcDay(nominal));
      expect(late.delegated?.status).toBe('succeeded');
    } finally {
      await deleteSchedule(client, scheduleId);
      await worker.stop();
      await closeClient(client);
      await env.cleanup();
    }
  });
});

describe('nightshift backfill argument checks', () => {
  it.each([
    [['--date', '2024-02-30'], /2024-02-30.*not a calendar date/],
    [['--from', '2024-03-02', '--to', '2024-03-01'], /FROM 2024-03-02 is after TO 2024-03-01/],
    [
      ['--from', '2024-03-01', '--to', '2024-03-02', '--mode', 'some'],
      /--mode some is not one of all, missing, failed/,
    ],
    [['--date', '2024-03-01', '--concurrency', '40'], /--concurrency "40" is not a whole number from 1 to 16/],
    [['--date', '2024-03-01', '--bogus'], /Unknown option '--bogus'/],
  ])('%j fails fast with a clear message and starts nothing', async (args, message) => {
    const config = { ...loadConfig(), temporalTaskQueue: uniqueName('nightshift_cli') };
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/nightshift.ts', 'backfill', ...args], {
      cwd: ROOT,
      env: envFor(config),
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(message);
    const client = await testClient(config);
    try {
      const started = [];
      for await (const w of client.workflow.list({ query: `TaskQueue = '${config.temporalTaskQueue}'` }))
        started.push(w);
      expect(started).toEqual([]);
    } finally {
      await closeClient(client);
    }
  });
});
