import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { createLogger, prettyLine, sdkLogger } from '../lib/log';
import { closeClient } from '../lib/temporal-client';
import { produceEvents } from '../lib/produce';
import { createWorker } from '../lib/worker';
import { dailyPipelineWorkflow } from '../workflows';
import { createTestEnv, type TestEnv } from './support';
import { quietRuntime, testClient } from './temporal-support';

/** Structured logs: JSON lines with workflowId, runId, date and step on every line of an activity. */

const DATE = '2023-04-11';

describe('structured logs', () => {
  let env: TestEnv;
  let client: Client;

  beforeAll(async () => {
    env = await createTestEnv({ partitions: 2 });
    client = await testClient(env.config);
  });
  afterAll(async () => {
    await closeClient(client);
    await env.cleanup();
  });

  it('every line written inside an activity carries the workflow id, run id, date and step', async () => {
    const lines: string[] = [];
    const logger = createLogger({ format: 'json', level: 'info', write: (line) => lines.push(line) });
    quietRuntime();
    const { worker, connection } = await createWorker(
      { ...env.config, slackWebhookUrl: null },
      { config: { ...env.config, slackWebhookUrl: null }, pool: env.pool, db: env.db },
      { logger },
    );
    const running = worker.run();
    try {
      // 5 % bad records: the dead-letter check fails and the alert activity logs the undelivered message
      await produceEvents(env.config, { events: 600, days: 1, start: DATE, seed: 9, badRate: 0.05 });
      const handle = await client.workflow.start(dailyPipelineWorkflow, {
        workflowId: `daily-${DATE}`,
        taskQueue: env.config.temporalTaskQueue,
        args: [{ date: DATE }],
      });
      await handle.result();
      const entries = lines.map((l) => JSON.parse(l));
      const done = entries.filter((e) => e.msg === 'activity completed');
      expect(done.map((e) => e.step)).toEqual(
        expect.arrayContaining(['land', 'stage', 'dimensions', 'facts', 'marts', 'checks', 'alert']),
      );
      const inside = entries.filter((e) => e.activity);
      expect(inside.some((e) => e.msg.startsWith('Slack alert (no SLACK_WEBHOOK_URL'))).toBe(true);
      for (const e of inside) {
        expect(e).toMatchObject({
          workflowId: `daily-${DATE}`,
          runId: handle.firstExecutionRunId,
          date: DATE,
          level: expect.any(Number),
          time: expect.any(Number),
        });
        expect(typeof e.step).toBe('string');
      }
    } finally {
      worker.shutdown();
      await running;
      await connection.close();
    }
  });

  it('the SDK logs through the same logger; a terminal gets readable lines', () => {
    const lines: string[] = [];
    sdkLogger(createLogger({ format: 'json', level: 'info', write: (l) => lines.push(l) })).warn('poll failed', {
      sdkComponent: 'worker',
      taskQueue: 'q',
    });
    expect(JSON.parse(lines[0])).toMatchObject({
      level: 40,
      msg: 'poll failed',
      sdkComponent: 'worker',
      taskQueue: 'q',
    });

    const pretty: string[] = [];
    createLogger({ format: 'pretty', level: 'info', write: (l) => pretty.push(l) })
      .child({ workflowId: 'daily-2024-12-17', runId: 'r1', date: '2024-12-17', step: 'facts' })
      .info({ ms: 12 }, 'activity completed');
    expect(pretty[0]).toMatch(
      /^\d\d:\d\d:\d\d INFO {2}activity completed {2}workflowId=daily-2024-12-17 runId=r1 date=2024-12-17 step=facts ms=12\n$/,
    );
    expect(prettyLine('not json')).toBe('not json');
  });
});
