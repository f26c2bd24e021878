import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import type { ActivityDeps, RunRef } from './deps';
import { type AlertActivityOptions, createAlertActivities } from './alert';
import { describeLateness, isPastDeadline, type DateState } from '../lib/late-data';
import { type SlackMessage, esc } from '../lib/slack';
import { dateProblem, workflowUiUrl } from '../lib/temporal';

/**
 * Alerts about runs rather than check results (SPEC section 6): a daily run that failed (date, step, error, link),
 * "recovered" when the date later succeeds, and data that is late at the deadline whatever the cause. Each decision is
 * one ops.alerts row under the alert-decision lock, with a fingerprint, before anything is posted; delivery is the
 * check alerts' (oldest undelivered first, bounded retries, undelivered rows kept).
 *
 * - `date:run:fail` once per failure episode: a retry or a re-run that fails again finds it open and posts nothing;
 * - `date:run:recovered` when a run of the date succeeds while a failure is open;
 * - `date:late` once per date, ever.
 */

const ALERTS_LOCK_CLASS = 'nightshift:alerts';
const NO_WEBHOOK = 'no SLACK_WEBHOOK_URL';
/** The pseudo-check name of run and lateness alerts in ops.alerts.check_name. */
export const RUN_CHECK = 'run';
export const LATE_CHECK = 'late';
const NOTHING_DELIVERED = { delivered: 0, undelivered: 0 };

export interface AlertRunOutcomeInput {
  date: string;
  run: RunRef;
  status: 'failed' | 'succeeded';
  /** The step the run failed on. */
  step?: string;
  error?: string;
}

export interface AlertRunOutcomeOutput {
  /** The fingerprint recorded by this call, if any (none on a retry or a repeated failure). */
  alerted: string | null;
  messagesDelivered: number;
  messagesUndelivered: number;
}

export interface CheckLateDataInput {
  /** The date due, YYYY-MM-DD (the previous UTC day of the deadline). */
  date: string;
  /** UTC time of day HH:MM by which the date must be loaded, on the day after it. */
  deadline: string;
  /** The run that checks (the message links to the date's own run when there is one). */
  run: RunRef;
  /** The clock (tests); ISO-8601, default now. */
  now?: string;
}

export interface CheckLateDataOutput {
  date: string;
  /** loaded: nothing to say; not-due: the deadline has not passed; late: the date is late (alerted once). */
  verdict: 'loaded' | 'not-due' | 'late';
  state: DateState;
  alerted: string | null;
  messagesDelivered: number;
  messagesUndelivered: number;
}

function section(text: string): SlackMessage['blocks'][number] {
  return { type: 'section', text: { type: 'mrkdwn', text: text.slice(0, 3000) } };
}

export function buildRunFailedMessage(input: {
  date: string;
  step: string;
  error: string;
  url: string;
  label: string;
}) {
  const title = `Run failed ${input.date} at step ${input.step}`;
  return {
    text: `${title}: ${input.error} — ${input.url}`.slice(0, 3000),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: `:x: ${title}`.slice(0, 150), emoji: true } },
      section(
        `*Date:* ${input.date}\n*Step:* ${esc(input.step)}\n*Error:* \`${esc(input.error.slice(0, 2000))}\`\n` +
          `*Run:* <${input.url}|${esc(input.label)}>`,
      ),
    ],
  } satisfies SlackMessage;
}

export function buildRunRecoveredMessage(input: { date: string; url: string; label: string }): SlackMessage {
  return {
    text: `Run recovered ${input.date}: the date loaded successfully — ${input.url}`,
    blocks: [
      section(
        `:white_check_mark: *Run recovered ${input.date}:* the date loaded successfully\n<${input.url}|${esc(input.label)}>`,
      ),
    ],
  };
}

export function buildLateMessage(input: { date: string; deadline: string; state: DateState; url: string | null }) {
  const title = `Data late: ${input.date} not loaded by ${input.deadline} UTC`;
  const state = describeLateness(input.state);
  return {
    text: `${title} — ${state}${input.url ? ` — ${input.url}` : ''}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: `:hourglass: ${title}`.slice(0, 150), emoji: true } },
      section(
        `*State:* ${esc(state)}${input.url ? `\n*Run:* <${input.url}|${esc(input.state.workflowId ?? '')}>` : ''}`,
      ),
    ],
  } satisfies SlackMessage;
}

/** The latest alert row of (date, check) kinds alert/recovered: is a failure open? */
async function latest(client: pg.ClientBase, date: string, check: string) {
  const { rows } = await client.query<{ kind: string; status: string | null }>(
    `select a.kind, a.status from ops.alerts as a
     where a.dt = $1::date and a.check_name = $2 and a.kind in ('alert', 'recovered')
     order by a.alert_id desc limit 1`,
    [date, check],
  );
  return rows[0];
}

async function insertAlert(
  client: pg.ClientBase,
  row: {
    fingerprint: string;
    kind: 'alert' | 'recovered';
    date: string;
    check: string;
    status: string;
    runId: string;
    message: SlackMessage;
  },
  webhook: string | null,
): Promise<void> {
  await client.query(
    `insert into ops.alerts (fingerprint, kind, dt, check_name, status, observed, run_id, payload, last_error)
     values ($1, $2, $3::date, $4, $5, null, $6, $7::jsonb, $8)`,
    [
      row.fingerprint,
      row.kind,
      row.date,
      row.check,
      row.status,
      row.runId,
      JSON.stringify(row.message),
      webhook ? null : NO_WEBHOOK,
    ],
  );
}

async function inDecisionTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock(hashtext($1), 0)', [ALERTS_LOCK_CLASS]);
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

/** The date's whole-run history in ops.pipeline_runs: loaded, running (on which step), failed, or never started. */
async function dateState(pool: pg.Pool, date: string): Promise<DateState> {
  const { rows } = await pool.query<{
    workflow_id: string;
    run_id: string;
    status: string;
    error: string | null;
    step: string | null;
    loaded: boolean;
  }>(
    `select pr.workflow_id, pr.run_id, pr.status, pr.error,
            (select s.step from ops.pipeline_runs as s
             where s.run_id = pr.run_id and s.dt = pr.dt and s.step <> 'pipeline'
             order by s.started_at desc, s.run_step_id desc limit 1) as step,
            exists (select from ops.pipeline_runs as ok
                    where ok.dt = pr.dt and ok.step = 'pipeline' and ok.status = 'succeeded') as loaded
     from ops.pipeline_runs as pr
     where pr.dt = $1::date and pr.step = 'pipeline'
     order by pr.started_at desc, pr.run_step_id desc
     limit 1`,
    [date],
  );
  const r = rows[0];
  if (!r) return { status: 'never-started' };
  if (r.loaded) return { status: 'loaded', workflowId: r.workflow_id, runId: r.run_id };
  return {
    status: r.status === 'running' ? 'running' : 'failed',
    workflowId: r.workflow_id,
    runId: r.run_id,
    step: r.step ?? undefined,
    error: r.error ?? undefined,
  };
}

export function createRunAlertActivities(deps: ActivityDeps, options: AlertActivityOptions = {}) {
  const { config, pool } = deps;
  const { deliverPendingAlerts } = createAlertActivities(deps, options);
  const webhook = config.slackWebhookUrl;
  const link = (workflowId: string, runId?: string) => ({
    url: workflowUiUrl(config.temporalUiUrl, config.temporalNamespace, workflowId, runId),
    label: runId ? `${workflowId} · ${runId}` : workflowId,
  });

  return {
    /**
     * Alerts on the end of a daily run (not a backfill's child: the backfill's summary covers it): a failure once per
     * episode, a recovery when the date succeeds after one. Grain: one date. Idempotent under retries and re-runs.
     * Never fails because Slack is down or hangs: undelivered messages stay recorded in ops.alerts.
     */
    async alertRunOutcome(input: AlertRunOutcomeInput): Promise<AlertRunOutcomeOutput> {
      const problem = dateProblem(input?.date);
      if (problem) throw ApplicationFailure.nonRetryable(`alertRunOutcome: bad date: ${problem}`, 'InvalidInput');
      const alerted = await inDecisionTransaction(pool, async (client) => {
        const prior = await latest(client, input.date, RUN_CHECK);
        const open = prior?.kind === 'alert';
        const l = link(input.run.workflowId, input.run.runId);
        if (input.status === 'failed') {
          if (open) return null;
          const fingerprint = `${input.date}:${RUN_CHECK}:fail`;
          const message = buildRunFailedMessage({
            date: input.date,
            step: input.step ?? 'unknown',
            error: input.error ?? 'unknown error',
            ...l,
          });
          await insertAlert(
            client,
            {
              fingerprint,
              kind: 'alert',
              date: input.date,
              check: RUN_CHECK,
              status: 'fail',
              runId: input.run.runId,
              message,
            },
            webhook,
          );
          return fingerprint;
        }
        if (!open) return null;
        const fingerprint = `${input.date}:${RUN_CHECK}:recovered`;
        await insertAlert(
          client,
          {
            fingerprint,
            kind: 'recovered',
            date: input.date,
            check: RUN_CHECK,
            status: 'pass',
            runId: input.run.runId,
            message: buildRunRecoveredMessage({ date: input.date, ...l }),
          },
          webhook,
        );
        return fingerprint;
      });
      // nothing new to say: no delivery attempt, so a Slack outage does not stall every run's end
      const delivery = alerted ? await deliverPendingAlerts() : NOTHING_DELIVERED;
      return { alerted, messagesDelivered: delivery.delivered, messagesUndelivered: delivery.undelivered };
    },

    /**
     * At the deadline: is the date loaded? If not, one "late" message says what its state is (running on step X,
     * failed at step X with the error, never started), once per date ever. Read-only otherwise; idempotent.
     */
    async checkLateData(input: CheckLateDataInput): Promise<CheckLateDataOutput> {
      const problem = dateProblem(input?.date);
      if (problem) throw ApplicationFailure.nonRetryable(`checkLateData: bad date: ${problem}`, 'InvalidInput');
      const now = input.now ? new Date(input.now) : new Date();
      const state = await dateState(pool, input.date);
      const none = { date: input.date, state, alerted: null, messagesDelivered: 0, messagesUndelivered: 0 };
      if (state.status === 'loaded') return { ...none, verdict: 'loaded' };
      if (!isPastDeadline(input.date, input.deadline, now)) return { ...none, verdict: 'not-due' };
      const fingerprint = `${input.date}:${LATE_CHECK}`;
      const alerted = await inDecisionTransaction(pool, async (client) => {
        const { rows } = await client.query('select 1 from ops.alerts where fingerprint = $1 limit 1', [fingerprint]);
        if (rows.length) return null;
        const url = state.workflowId ? link(state.workflowId, state.runId).url : null;
        await insertAlert(
          client,
          {
            fingerprint,
            kind: 'alert',
            date: input.date,
            check: LATE_CHECK,
            status: 'late',
            runId: input.run.runId,
            message: buildLateMessage({ date: input.date, deadline: input.deadline, state, url }),
          },
          webhook,
        );
        return fingerprint;
      });
      const delivery = alerted ? await deliverPendingAlerts() : NOTHING_DELIVERED;
      return {
        ...none,
        verdict: 'late',
        alerted,
        messagesDelivered: delivery.delivered,
        messagesUndelivered: delivery.undelivered,
      };
    },
  };
}
