import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import type { ActivityDeps, RunRef } from './deps';
import { lockAlertDecisions, lockAlertDelivery, unlockAlertDelivery } from '../lib/locks';
import { type Logger as PinoLogger, currentLogger, loggerFromConfig } from '../lib/log';
import { recordStep } from '../lib/runs';
import {
  type AlertConfig,
  type AlertedCheck,
  type BackfillDateSummary,
  type RunLink,
  type SlackMessage,
  buildAlertMessage,
  backfillSummaryHasNews,
  buildBackfillSummary,
  buildRecoveredMessage,
  isMaterialChange,
  postToSlack,
} from '../lib/slack';
import { dateRange, dateProblem, rangeProblem, workflowUiUrl } from '../lib/temporal';

/**
 * The alert lifecycle of SPEC section 6. Every decision is recorded in ops.alerts (one row per fingerprint
 * decision, the row's payload being the Slack message it goes out in) in a transaction before anything is
 * posted; delivery then posts only rows not yet delivered, oldest first, one message per (run, payload).
 *
 * - fingerprint `date:check:status`; a (date, check) whose latest alert has the same status and an observed value
 *   within ALERT_MATERIAL_CHANGE (10 %) is not alerted again: retries, re-runs and backfills stay quiet.
 * - a check that passes while its latest alert is a warn/fail gets a "recovered" row (fingerprint `date:check:recovered`).
 * - per-date runs of a backfill pass `suppressAlerts` and decide nothing; `sendBackfillSummary` decides for the
 *   whole range and posts one summary.
 */

export const ALERT_STEP = 'alert';
const NO_WEBHOOK = 'no SLACK_WEBHOOK_URL';

export interface SendAlertsInput {
  /** The date whose check results (of this run) are alerted on, YYYY-MM-DD. */
  date: string;
  run: RunRef;
  /** Part of a backfill: decide and post nothing for the date; the backfill's summary covers it. */
  suppressAlerts?: boolean;
}

export interface SendAlertsOutput {
  date: string;
  suppressed: boolean;
  /** Fingerprints newly alerted by this call (empty on a retry or a re-run with the same failures). */
  alerted: string[];
  /** Fingerprints of recoveries recorded by this call. */
  recovered: string[];
  /** Slack messages delivered by this call, including older undelivered ones. */
  messagesDelivered: number;
  /** Messages still undelivered after this call (Slack down or no webhook configured). */
  messagesUndelivered: number;
}

export interface SendBackfillSummaryInput {
  from: string;
  to: string;
  /** The backfill workflow's run: the summary links to it. */
  run: RunRef;
  /**
   * How each date the backfill ran ended. Absent (a backfill started before this field existed): read from the
   * latest whole run of each date in ops.pipeline_runs.
   */
  outcomes?: BackfillDateOutcome[];
}

export interface BackfillDateOutcome {
  date: string;
  status: 'succeeded' | 'failed';
  /** Why it failed: the step and the error. */
  error?: string;
}

export interface SendBackfillSummaryOutput {
  from: string;
  to: string;
  datesChecked: number;
  datesWithProblems: number;
  /** Dates whose run succeeded, and those whose run failed with why. */
  datesSucceeded: number;
  datesFailed: BackfillDateOutcome[];
  alerted: string[];
  recovered: string[];
  /** The summary had nothing new (every item alerted before): recorded in ops.alerts as suppressed, not posted. */
  suppressed: boolean;
  messagesDelivered: number;
  messagesUndelivered: number;
}

interface ResultRow {
  dt: string;
  check_name: string;
  table_name: string;
  status: string;
  observed: string | null;
  threshold: string | null;
  details: string | null;
}

interface PriorAlert {
  dt: string;
  check_name: string;
  kind: 'alert' | 'recovered';
  status: string | null;
  observed: string | null;
}

interface Decision {
  alerts: AlertedCheck[];
  stillFailing: string[];
  recovered: AlertedCheck[];
}

/** One date of a backfill: what the summary says about it, and the decision recorded for it. */
type DateDecision = BackfillDateSummary & { decision: Decision };

type Logger = (message: string, meta?: Record<string, unknown>) => void;

function defaultLogger(fallback: PinoLogger): Logger {
  // inside an activity: its logger, which binds workflowId, runId, date and step to the line (and redacts secrets)
  return (message, meta) => currentLogger(fallback)!.info(meta ?? {}, message);
}

const toNumber = (v: string | null): number | null => (v === null ? null : Number(v));

function toChecked(r: ResultRow): AlertedCheck {
  return {
    check: r.check_name,
    table: r.table_name,
    status: r.status,
    observed: toNumber(r.observed),
    threshold: r.threshold,
    details: r.details,
  };
}

/** What the results of one date call for, given the latest alert of each of its checks. */
function decide(results: ResultRow[], priors: PriorAlert[], config: AlertConfig): Decision {
  const decision: Decision = { alerts: [], stillFailing: [], recovered: [] };
  for (const r of results) {
    const prior = priors.find((p) => p.check_name === r.check_name);
    const open = prior?.kind === 'alert';
    if (r.status === 'warn' || r.status === 'fail') {
      if (
        open &&
        prior!.status === r.status &&
        !isMaterialChange(toNumber(prior!.observed), toNumber(r.observed), config.materialChange)
      ) {
        decision.stillFailing.push(r.check_name);
      } else {
        decision.alerts.push(toChecked(r));
      }
    } else if (r.status === 'pass' && open) {
      decision.recovered.push(toChecked(r));
    }
  }
  return decision;
}

async function latestAlerts(client: pg.ClientBase, dates: string[]): Promise<PriorAlert[]> {
  const { rows } = await client.query<PriorAlert>(
    `select distinct on (a.dt, a.check_name) to_char(a.dt, 'YYYY-MM-DD') as dt, a.check_name, a.kind, a.status, a.observed
     from ops.alerts as a
     where a.dt = any ($1::date[]) and a.kind in ('alert', 'recovered')
     order by a.dt, a.check_name, a.alert_id desc`,
    [dates],
  );
  return rows;
}

/** The latest finished whole run of each date of the range (ops.pipeline_runs, step 'pipeline'), as outcomes. */
async function latestRunOutcomes(client: pg.ClientBase, from: string, to: string): Promise<BackfillDateOutcome[]> {
  const { rows } = await client.query<{ dt: string; status: 'succeeded' | 'failed'; error: string | null }>(
    `select distinct on (r.dt) to_char(r.dt, 'YYYY-MM-DD') as dt, r.status, r.error
     from ops.pipeline_runs as r
     where r.dt between $1::date and $2::date and r.step = 'pipeline' and r.status in ('succeeded', 'failed')
     order by r.dt, r.started_at desc, r.run_step_id desc`,
    [from, to],
  );
  return rows.map((r) => ({ date: r.dt, status: r.status, ...(r.error ? { error: r.error } : {}) }));
}

async function insertAlertRows(
  client: pg.ClientBase,
  runId: string,
  kind: 'alert' | 'recovered',
  date: string,
  checks: AlertedCheck[],
  message: SlackMessage,
  lastError: string | null,
): Promise<string[]> {
  const fingerprints = checks.map((c) => `${date}:${c.check}:${kind === 'alert' ? c.status : 'recovered'}`);
  await client.query(
    `insert into ops.alerts (fingerprint, kind, dt, check_name, status, observed, run_id, payload, last_error)
     select r.fingerprint, $1, $2::date, r.check_name, r.status, r.observed, $3, $4::jsonb, $5
     from jsonb_to_recordset($6::jsonb) as r (fingerprint text, check_name text, status text, observed numeric)`,
    [
      kind,
      date,
      runId,
      JSON.stringify(message),
      lastError,
      JSON.stringify(
        checks.map((c, i) => ({
          fingerprint: fingerprints[i],
          check_name: c.check,
          status: c.status,
          observed: c.observed,
        })),
      ),
    ],
  );
  return fingerprints;
}

/** Runs `fn` in a transaction holding the alert-decision lock (decisions for any date never interleave). */
async function inDecisionTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await lockAlertDecisions(client);
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export interface AlertActivityOptions {
  alertConfig?: AlertConfig;
  log?: Logger;
  sleep?: (ms: number) => Promise<void>;
}

export function createAlertActivities({ config, pool, db }: ActivityDeps, options: AlertActivityOptions = {}) {
  const alertConfig = options.alertConfig ?? config.alerts;
  const log = options.log ?? defaultLogger(loggerFromConfig(config));
  const webhookUrl = config.slackWebhookUrl;

  const linkFor = (run: RunRef): RunLink => ({
    url: workflowUiUrl(config.temporalUiUrl, config.temporalNamespace, run.workflowId, run.runId),
    label: `${run.workflowId} · ${run.runId}`,
  });

  /**
   * Delivers undelivered messages, oldest first: each (run_id, payload) group is one message. Without a webhook
   * the message is logged once and stays recorded as undelivered. Stops at the first message Slack refuses after
   * its retries, so one run spends at most about one retry budget on an outage.
   */
  async function deliverPending(): Promise<{ delivered: number; undelivered: number }> {
    const client = await pool.connect();
    try {
      // one deliverer at a time, or two activities could post the same pending message
      await lockAlertDelivery(client);
      try {
        const { rows: groups } = await client.query<{
          ids: string[];
          payload: SlackMessage;
          run_id: string;
          attempts: number;
        }>(
          `select array_agg(a.alert_id order by a.alert_id) as ids, a.run_id, min(a.attempts) as attempts,
                  (array_agg(a.payload order by a.alert_id))[1] as payload
           from ops.alerts as a
           where not a.delivered and not a.suppressed and a.created_at > now() - make_interval(hours => $1::int)
           group by a.run_id, md5(a.payload::text)
           order by min(a.alert_id)`,
          [Math.ceil(alertConfig.redeliverMaxAgeHours)],
        );
        let delivered = 0;
        let slackDown = false;
        for (const group of groups) {
          if (!webhookUrl) {
            if (group.attempts === 0) {
              log('Slack alert (no SLACK_WEBHOOK_URL configured, recorded in ops.alerts as undelivered)', {
                run_id: group.run_id,
                text: group.payload.text,
              });
              await client.query(
                `update ops.alerts set attempts = 1, last_error = $2 where alert_id = any ($1::bigint[])`,
                [group.ids, NO_WEBHOOK],
              );
            }
            continue;
          }
          if (slackDown) continue;
          const outcome = await postToSlack(webhookUrl, group.payload, alertConfig, options.sleep);
          await client.query(
            `update ops.alerts
             set attempts = attempts + $2, delivered = $3, delivered_at = case when $3 then now() end, last_error = $4
             where alert_id = any ($1::bigint[])`,
            [group.ids, outcome.attempts, outcome.delivered, outcome.error],
          );
          if (outcome.delivered) delivered += 1;
          else {
            slackDown = true;
            log('Slack alert not delivered; recorded in ops.alerts, retried by the next alert run', {
              run_id: group.run_id,
              error: outcome.error,
              attempts: outcome.attempts,
            });
          }
        }
        return { delivered, undelivered: groups.length - delivered };
      } finally {
        await unlockAlertDelivery(client).catch(() => undefined);
      }
    } finally {
      client.release();
    }
  }

  return {
    /** Delivers every pending alert message, oldest first (what the other alert activities end with). Idempotent. */
    async deliverPendingAlerts(): Promise<{ delivered: number; undelivered: number }> {
      return deliverPending();
    },

    /**
     * Alerts on one date's check results of this run: records new alerts and recoveries in ops.alerts (one Slack
     * message per kind per run), then delivers every pending message. Grain: one run and date. Idempotent under
     * retry and re-run: a fingerprint already alerted with a similar observed value is not recorded again, and only
     * undelivered rows are posted. Never fails because Slack is down or not configured.
     */
    async sendAlerts(input: SendAlertsInput): Promise<SendAlertsOutput> {
      const problem = dateProblem(input?.date);
      if (problem)
        throw ApplicationFailure.nonRetryable(
          `sendAlerts: bad date: ${problem}; pass the date as YYYY-MM-DD`,
          'InvalidInput',
        );
      if (!input.run?.runId || !input.run?.workflowId) {
        throw ApplicationFailure.nonRetryable(
          'sendAlerts: run {workflowId, runId} is required (the message links to it)',
          'InvalidInput',
        );
      }
      const empty = { date: input.date, alerted: [], recovered: [], messagesDelivered: 0, messagesUndelivered: 0 };
      if (input.suppressAlerts) return { ...empty, suppressed: true };
      const key = { ...input.run, date: input.date, step: ALERT_STEP };
      return recordStep(
        db,
        key,
        async () => {
          const link = linkFor(input.run);
          const decided = await inDecisionTransaction(pool, async (client) => {
            const { rows: results } = await client.query<ResultRow>(
              `select to_char(r.dt, 'YYYY-MM-DD') as dt, r.check_name, r.table_name, r.status, r.observed, r.threshold, r.details
               from ops.dq_results as r
               where r.run_id = $1 and r.dt = $2::date
               order by r.dq_result_id`,
              [input.run.runId, input.date],
            );
            const d = decide(results, await latestAlerts(client, [input.date]), alertConfig);
            const lastError = webhookUrl ? null : NO_WEBHOOK;
            const alerted = d.alerts.length
              ? await insertAlertRows(
                  client,
                  input.run.runId,
                  'alert',
                  input.date,
                  d.alerts,
                  buildAlertMessage({ date: input.date, checks: d.alerts, stillFailing: d.stillFailing, link }),
                  lastError,
                )
              : [];
            const recovered = d.recovered.length
              ? await insertAlertRows(
                  client,
                  input.run.runId,
                  'recovered',
                  input.date,
                  d.recovered,
                  buildRecoveredMessage({ date: input.date, checks: d.recovered, link }),
                  lastError,
                )
              : [];
            return { alerted, recovered };
          });
          const delivery = await deliverPending();
          const output = {
            ...empty,
            ...decided,
            suppressed: false,
            messagesDelivered: delivery.delivered,
            messagesUndelivered: delivery.undelivered,
          };
          return output;
        },
        (output) => ({ rowsInserted: output.alerted.length + output.recovered.length, details: output }),
      );
    },

    /**
     * Alerts once for a whole backfill range: decides on the latest check results of every date in it (as
     * sendAlerts would) and records them, with one summary row, under one Slack message. Idempotent per backfill
     * run: a retry finds the summary recorded and only retries delivery.
     */
    async sendBackfillSummary(input: SendBackfillSummaryInput): Promise<SendBackfillSummaryOutput> {
      const problem = rangeProblem(input?.from, input?.to);
      if (problem) throw ApplicationFailure.nonRetryable(`sendBackfillSummary: bad range: ${problem}`, 'InvalidInput');
      if (!input.run?.runId || !input.run?.workflowId) {
        throw ApplicationFailure.nonRetryable(
          'sendBackfillSummary: run {workflowId, runId} is required (the message links to it)',
          'InvalidInput',
        );
      }
      const dates = dateRange(input.from, input.to);
      const fingerprint = `backfill:${input.from}:${input.to}:${input.run.runId}`;
      const decided = await inDecisionTransaction(pool, async (client) => {
        const { rows: existing } = await client.query('select 1 from ops.alerts where fingerprint = $1 limit 1', [
          fingerprint,
        ]);
        if (existing.length) return null;
        const { rows: results } = await client.query<ResultRow>(
          `select distinct on (r.dt, r.check_name)
               to_char(r.dt, 'YYYY-MM-DD') as dt, r.check_name, r.table_name, r.status, r.observed, r.threshold, r.details
           from ops.dq_results as r
           where r.dt between $1::date and $2::date
           order by r.dt, r.check_name, r.checked_at desc, r.dq_result_id desc`,
          [input.from, input.to],
        );
        const priors = await latestAlerts(client, dates);
        const outcomes = input.outcomes ?? (await latestRunOutcomes(client, input.from, input.to));
        const summaries: DateDecision[] = dates.map((date) => {
          const outcome = outcomes.find((o) => o.date === date);
          const own = results.filter((r) => r.dt === date);
          const d = decide(
            own,
            priors.filter((p) => p.dt === date),
            alertConfig,
          );
          return {
            date,
            alerts: d.alerts,
            stillFailing: d.stillFailing,
            recovered: d.recovered.map((c) => c.check),
            checked: own.length > 0,
            ...(outcome ? { run: { status: outcome.status, error: outcome.error } } : {}),
            decision: d,
          };
        });
        const message = buildBackfillSummary({
          from: input.from,
          to: input.to,
          dates: summaries,
          link: linkFor(input.run),
        });
        const lastError = webhookUrl ? null : NO_WEBHOOK;
        const alerted: string[] = [];
        const recovered: string[] = [];
        for (const s of summaries) {
          if (s.decision.alerts.length)
            alerted.push(
              ...(await insertAlertRows(
                client,
                input.run.runId,
                'alert',
                s.date,
                s.decision.alerts,
                message,
                lastError,
              )),
            );
          if (s.decision.recovered.length)
            recovered.push(
              ...(await insertAlertRows(
                client,
                input.run.runId,
                'recovered',
                s.date,
                s.decision.recovered,
                message,
                lastError,
              )),
            );
        }
        const bad = summaries.filter((s) => s.checked && (s.alerts.length || s.stillFailing.length)).length;
        const failed = outcomes.filter((o) => o.status === 'failed' && dates.includes(o.date));
        const succeeded = outcomes.filter((o) => o.status === 'succeeded' && dates.includes(o.date)).length;
        // every item alerted before (e.g. a re-run backfill) and no date failed: recorded as suppressed, never posted
        const suppressed = failed.length === 0 && !backfillSummaryHasNews(summaries);
        // a failed date is never a pass, whatever the checks say; observed counts the dates that need a look
        await client.query(
          `insert into ops.alerts (fingerprint, kind, dt, check_name, status, observed, run_id, payload, last_error, suppressed)
           values ($1, 'summary', null, null, $2, $3, $4, $5::jsonb, $6, $7)`,
          [
            fingerprint,
            bad || failed.length ? 'fail' : 'pass',
            bad + failed.length,
            input.run.runId,
            JSON.stringify(message),
            lastError,
            suppressed,
          ],
        );
        return {
          datesChecked: summaries.filter((s) => s.checked).length,
          datesWithProblems: bad,
          datesSucceeded: succeeded,
          datesFailed: failed,
          alerted,
          recovered,
          suppressed,
        };
      });
      const delivery = await deliverPending();
      return {
        from: input.from,
        to: input.to,
        datesChecked: decided?.datesChecked ?? 0,
        datesWithProblems: decided?.datesWithProblems ?? 0,
        datesSucceeded: decided?.datesSucceeded ?? 0,
        datesFailed: decided?.datesFailed ?? [],
        alerted: decided?.alerted ?? [],
        recovered: decided?.recovered ?? [],
        suppressed: decided?.suppressed ?? false,
        messagesDelivered: delivery.delivered,
        messagesUndelivered: delivery.undelivered,
      };
    },
  };
}
