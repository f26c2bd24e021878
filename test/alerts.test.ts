import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAlertActivities } from '../activities/alert';
import { createCheckActivities } from '../activities/checks';
import { DQ_DEFAULTS } from '../lib/checks';
import { loadConfig } from '../lib/config';
import { ALERT_DEFAULTS, type AlertConfig, isMaterialChange } from '../lib/slack';
import { createTestEnv, type TestEnv } from './support';
import { cleanupEnv, dateKey, seedWarehouse, type Seeded } from './seed-warehouse';

/** The alert lifecycle against a local HTTP server standing in for Slack's incoming webhook. */

interface FakeSlack {
  url: string;
  received: any[];
  /** Status codes to answer with, in order; 200 once exhausted. */
  failures: number[];
  close(): Promise<void>;
}

async function startFakeSlack(): Promise<FakeSlack> {
  const state: FakeSlack = { url: '', received: [], failures: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const status = state.failures.shift() ?? 200;
      if (status === 200) state.received.push(JSON.parse(body));
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'internal_error');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/XXXX`;
  state.close = () => new Promise((resolve) => server.close(() => resolve()));
  return state;
}

const FAST: AlertConfig = { ...ALERT_DEFAULTS, retryBaseMs: 20, retryBudgetMs: 500, maxAttempts: 3, timeoutMs: 2000 };
const quiet = () => undefined;

describe('Slack alerts', () => {
  let env: TestEnv;
  let slack: FakeSlack;
  let seeded: Seeded;
  let last: string;

  beforeEach(async () => {
    env = await createTestEnv({ topic: false });
    slack = await startFakeSlack();
    env.config = {
      ...env.config,
      slackWebhookUrl: slack.url,
      temporalUiUrl: 'http://temporal.example:8233',
      temporalNamespace: 'default',
    };
    seeded = await seedWarehouse(env.pool, {
      start: '2024-12-01',
      days: 10,
      users: 120,
      churn: 0,
      steady: true,
      seed: 5,
    });
    last = seeded.dates[seeded.dates.length - 1];
  });
  afterEach(async () => {
    await slack?.close();
    await cleanupEnv(env);
  });

  let removed: unknown[] = [];
  /** Removes half of the last date's facts (kept, so repairVolume can put exactly them back). */
  const breakVolume = async () => {
    const { rows } = await env.pool.query(
      'delete from warehouse.fact_events where date_key = $1 and source_offset % 2 = 0 returning *',
      [dateKey(last)],
    );
    removed = rows;
  };
  const repairVolume = () =>
    env.pool.query(
      'insert into warehouse.fact_events select * from jsonb_populate_recordset(null::warehouse.fact_events, $1::jsonb)',
      [JSON.stringify(removed)],
    );

  async function pipelineRun(
    runId: string,
    options: { alerts?: ReturnType<typeof createAlertActivities>; suppress?: boolean; date?: string } = {},
  ) {
    const date = options.date ?? last;
    const run = { workflowId: `daily-${date}`, runId };
    await createCheckActivities(env, { config: DQ_DEFAULTS }).runChecks({ date, run });
    const alerts = options.alerts ?? createAlertActivities(env, { alertConfig: FAST, log: quiet });
    return alerts.sendAlerts({ date, run, suppressAlerts: options.suppress });
  }

  it('posts exactly one Block Kit message for a run with failures, even when retried or re-run; then one "recovered"', async () => {
    await breakVolume();
    const alerts = createAlertActivities(env, { alertConfig: FAST, log: quiet });
    const first = await pipelineRun('run-a', { alerts });
    expect([...first.alerted].sort()).toEqual([`${last}:reconciliation:fail`, `${last}:volume:fail`]);
    // the activity is retried
    const retry = await alerts.sendAlerts({ date: last, run: { workflowId: `daily-${last}`, runId: 'run-a' } });
    expect(retry.alerted).toEqual([]);
    // the same date is re-run with the same failure
    const rerun = await pipelineRun('run-b', { alerts });
    expect(rerun.alerted).toEqual([]);

    expect(slack.received).toHaveLength(1);
    const message = slack.received[0];
    expect(message.text).toContain(`Data quality ${last}`);
    expect(message.blocks[0]).toMatchObject({ type: 'header', text: { type: 'plain_text' } });
    const body = JSON.stringify(message.blocks);
    expect(body).toContain(`http://temporal.example:8233/namespaces/default/workflows/daily-${last}/run-a/history`);
    expect(body).toMatch(/\*volume\* — FAIL/);
    expect(body).toMatch(/\*Observed:\* \d+ {3}\*Expected:\* \d+–\d+/);
    for (const block of message.blocks) expect(['header', 'section', 'divider', 'context']).toContain(block.type);
    expect(Object.keys(message).sort()).toEqual(['blocks', 'text']);

    // the data is repaired and the date re-run: one short "recovered" message
    await repairVolume();
    const fixed = await pipelineRun('run-c', { alerts });
    expect([...fixed.recovered].sort()).toEqual([`${last}:reconciliation:recovered`, `${last}:volume:recovered`]);
    expect(fixed.alerted).toEqual([]);
    expect(slack.received).toHaveLength(2);
    expect(slack.received[1].text).toMatch(new RegExp(`^Recovered ${last}: .*volume`));
    await alerts.sendAlerts({ date: last, run: { workflowId: `daily-${last}`, runId: 'run-c' } });
    expect(slack.received).toHaveLength(2);

    const { rows } = await env.pool.query(
      `select kind, fingerprint, delivered, attempts from ops.alerts order by alert_id`,
    );
    expect(rows.every((r) => r.delivered && r.attempts === 1)).toBe(true);
  });

  it('a run with only passing checks posts nothing', async () => {
    const out = await pipelineRun('run-clean');
    expect(out).toMatchObject({ alerted: [], recovered: [], messagesDelivered: 0 });
    expect(slack.received).toHaveLength(0);
  });

  it('while Slack answers 500 the run still completes, and the alert is delivered once it recovers', async () => {
    await breakVolume();
    // two failures, then 200: delivered within the activity's own retries
    slack.failures = [500, 500];
    const started = Date.now();
    const out = await pipelineRun('run-500');
    expect(out.messagesDelivered).toBe(1);
    expect(slack.received).toHaveLength(1);
    const { rows } = await env.pool.query(`select delivered, attempts from ops.alerts where run_id = 'run-500'`);
    expect(rows.every((r) => r.delivered && r.attempts === 3)).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('when Slack stays down the alert is recorded as undelivered, and the next alert run delivers it first', async () => {
    await breakVolume();
    slack.failures = Array(10).fill(500);
    const started = Date.now();
    const down = await pipelineRun('run-down');
    expect(Date.now() - started).toBeLessThan(FAST.retryBudgetMs + 8000);
    expect(down).toMatchObject({ messagesDelivered: 0, messagesUndelivered: 1 });
    const { rows } = await env.pool.query(
      `select delivered, attempts, last_error from ops.alerts where run_id = 'run-down'`,
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => !r.delivered && r.attempts === FAST.maxAttempts && /HTTP 500/.test(r.last_error))).toBe(
      true,
    );
    expect(slack.received).toHaveLength(0);

    // Slack is back; a later run for another (clean) date retries the undelivered message first
    slack.failures = [];
    const later = await pipelineRun('run-next', { date: seeded.dates[7] });
    expect(later.messagesDelivered).toBe(1);
    expect(slack.received).toHaveLength(1);
    expect(JSON.stringify(slack.received[0].blocks)).toContain('/run-down/history');
    // and never again
    await pipelineRun('run-next-2', { date: seeded.dates[7] });
    expect(slack.received).toHaveLength(1);
  });

  it('without SLACK_WEBHOOK_URL the alert is logged and recorded as undelivered, never failing', async () => {
    await breakVolume();
    env.config = { ...env.config, slackWebhookUrl: null };
    const logged: string[] = [];
    const alerts = createAlertActivities(env, {
      alertConfig: FAST,
      log: (msg, meta) => logged.push(`${msg} ${JSON.stringify(meta)}`),
    });
    const out = await pipelineRun('run-nourl', { alerts });
    expect(out.alerted.length).toBeGreaterThan(0);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain(`Data quality ${last}`);
    const { rows } = await env.pool.query(`select delivered, last_error from ops.alerts where run_id = 'run-nourl'`);
    expect(rows.every((r) => !r.delivered && r.last_error === 'no SLACK_WEBHOOK_URL')).toBe(true);
    await alerts.sendAlerts({ date: last, run: { workflowId: `daily-${last}`, runId: 'run-nourl' } });
    expect(logged).toHaveLength(1);
  });

  it('re-alerts the same fingerprint only when the observed value changes materially (> 10 %)', async () => {
    const alerts = createAlertActivities(env, { alertConfig: FAST, log: quiet });
    const result = async (runId: string, observed: number) => {
      await env.pool.query(
        `insert into ops.dq_results (run_id, dt, check_name, table_name, observed, threshold, status, details)
         values ($1, $2::date, 'dead_letters', 'ops.lake_files', $3, '< 1 %', 'fail', 'x')`,
        [runId, last, observed],
      );
      return alerts.sendAlerts({ date: last, run: { workflowId: `daily-${last}`, runId } });
    };
    expect((await result('m1', 0.05)).alerted).toEqual([`${last}:dead_letters:fail`]);
    expect((await result('m2', 0.053)).alerted).toEqual([]); // +6 %
    expect((await result('m3', 0.08)).alerted).toEqual([`${last}:dead_letters:fail`]); // +51 %
    expect(slack.received).toHaveLength(2);
    expect(isMaterialChange(100, 111, 0.1)).toBe(true);
    expect(isMaterialChange(100, 109, 0.1)).toBe(false);
    expect(isMaterialChange(null, null, 0.1)).toBe(false);
  });

  it('a backfill posts one summary for the whole range, not one message per date', async () => {
    await breakVolume();
    const alerts = createAlertActivities(env, { alertConfig: FAST, log: quiet });
    for (const date of seeded.dates.slice(3)) {
      const out = await pipelineRun(`bf-${date}`, { alerts, suppress: true, date });
      expect(out.suppressed).toBe(true);
    }
    expect(slack.received).toHaveLength(0);
    const run = { workflowId: `backfill-${seeded.dates[3]}-${last}`, runId: 'bf-run' };
    const summary = await alerts.sendBackfillSummary({ from: seeded.dates[3], to: last, run });
    expect(summary).toMatchObject({ datesChecked: 7, datesWithProblems: 1, messagesDelivered: 1 });
    expect(summary.alerted).toContain(`${last}:volume:fail`);
    // retried: nothing new
    await alerts.sendBackfillSummary({ from: seeded.dates[3], to: last, run });
    expect(slack.received).toHaveLength(1);
    expect(slack.received[0].text).toContain(
      `Backfill ${seeded.dates[3]} → ${last}: 7 succeeded, 0 failed; 7 dates checked, 6 clean, 1 with warnings or failures`,
    );
    expect(JSON.stringify(slack.received[0].blocks)).toContain(
      `/workflows/backfill-${seeded.dates[3]}-${last}/bf-run/history`,
    );
    // the fingerprints the summary covered are not posted again by a later daily re-run
    await pipelineRun('after-backfill');
    expect(slack.received).toHaveLength(1);
  });

  it('a backfill summary counts succeeded, failed and checked dates apart, names each failed date and why, and is never a pass with a failure', async () => {
    const alerts = createAlertActivities(env, { alertConfig: FAST, log: quiet });
    const dates = seeded.dates.slice(3);
    for (const date of dates) await pipelineRun(`bf2-${date}`, { alerts, suppress: true, date });
    const failedDate = dates[2];
    const run = { workflowId: `backfill-${dates[0]}-${last}`, runId: 'bf-failed' };
    const summary = await alerts.sendBackfillSummary({
      from: dates[0],
      to: last,
      run,
      outcomes: dates.map((date) =>
        date === failedDate
          ? { date, status: 'failed' as const, error: 'facts: connection terminated unexpectedly' }
          : { date, status: 'succeeded' as const },
      ),
    });
    expect(summary).toMatchObject({
      datesChecked: 7,
      datesWithProblems: 0,
      datesSucceeded: 6,
      datesFailed: [{ date: failedDate, status: 'failed', error: 'facts: connection terminated unexpectedly' }],
      messagesDelivered: 1,
    });
    expect(slack.received).toHaveLength(1);
    const message = slack.received[0];
    expect(message.text).toContain(`Backfill ${dates[0]} → ${last}: 6 succeeded, 1 failed; 7 dates checked`);
    expect(message.text).toContain(`(failed: ${failedDate})`);
    expect(message.blocks[0].text.text).toMatch(/^:x: /);
    expect(JSON.stringify(message.blocks)).toContain(
      `:x: *${failedDate}* failed: facts: connection terminated unexpectedly`,
    );
    const { rows } = await env.pool.query(`select status, observed from ops.alerts where kind = 'summary'`);
    expect(rows).toEqual([{ status: 'fail', observed: '1' }]);
  });

  it('a re-run backfill whose problems were all alerted before posts nothing, and records the summary as suppressed', async () => {
    await breakVolume();
    const alerts = createAlertActivities(env, { alertConfig: FAST, log: quiet });
    const backfill = async (runId: string) => {
      for (const date of seeded.dates.slice(3)) await pipelineRun(`${runId}-${date}`, { alerts, suppress: true, date });
      return alerts.sendBackfillSummary({
        from: seeded.dates[3],
        to: last,
        run: { workflowId: `backfill-${seeded.dates[3]}-${last}`, runId },
      });
    };
    const first = await backfill('bf-first');
    expect(first).toMatchObject({ datesWithProblems: 1, suppressed: false, messagesDelivered: 1 });
    const again = await backfill('bf-again');
    expect(again).toMatchObject({ datesWithProblems: 1, alerted: [], recovered: [], suppressed: true });
    expect(again.messagesDelivered).toBe(0);
    expect(slack.received).toHaveLength(1);
    const { rows } = await env.pool.query<{ run_id: string; suppressed: boolean; delivered: boolean }>(
      `select run_id, suppressed, delivered from ops.alerts where kind = 'summary' order by alert_id`,
    );
    expect(rows).toEqual([
      { run_id: 'bf-first', suppressed: false, delivered: true },
      { run_id: 'bf-again', suppressed: true, delivered: false },
    ]);
  });

  it('alert settings come from the environment, bad values named', () => {
    expect(loadConfig({}).alerts).toEqual(ALERT_DEFAULTS);
    expect(loadConfig({ SLACK_RETRY_BUDGET_MS: '1000', ALERT_MATERIAL_CHANGE: '0.25' }).alerts).toMatchObject({
      retryBudgetMs: 1000,
      materialChange: 0.25,
    });
    expect(() => loadConfig({ SLACK_MAX_ATTEMPTS: '0' }).alerts).toThrow(/SLACK_MAX_ATTEMPTS="0"/);
  });
});
