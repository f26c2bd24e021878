import { IncomingWebhook, IncomingWebhookHTTPError } from '@slack/webhook';
import type { KnownBlock } from '@slack/types';
import { redact } from './redact';

/**
 * Slack messages of the alert lifecycle (Block Kit through an incoming webhook) and their bounded delivery.
 * Building is pure; delivery retries with exponential backoff inside a total time budget and then gives up,
 * so a Slack outage never stalls the pipeline.
 */

export interface AlertConfig {
  /** Re-alert the same (date, check, status) only when observed moves by more than this share. ALERT_MATERIAL_CHANGE, default 0.1. */
  materialChange: number;
  /** Posts per message before giving up for this run. SLACK_MAX_ATTEMPTS, default 4. */
  maxAttempts: number;
  /** First backoff, doubled each retry. SLACK_RETRY_BASE_MS, default 1000. */
  retryBaseMs: number;
  /** No retry starts after this much time on one message. SLACK_RETRY_BUDGET_MS, default 30000. */
  retryBudgetMs: number;
  /** Per-request timeout. SLACK_TIMEOUT_MS, default 5000. */
  timeoutMs: number;
  /** Undelivered alerts older than this are left alone (recorded, not posted late). ALERT_REDELIVER_MAX_AGE_HOURS, default 72. */
  redeliverMaxAgeHours: number;
}

export const ALERT_DEFAULTS: AlertConfig = {
  materialChange: 0.1,
  maxAttempts: 4,
  retryBaseMs: 1000,
  retryBudgetMs: 30_000,
  timeoutMs: 5000,
  redeliverMaxAgeHours: 72,
};

/** True when `next` differs from `previous` by more than `threshold` relative to `previous` (or one is missing). */
export function isMaterialChange(previous: number | null, next: number | null, threshold: number): boolean {
  if (previous === null || next === null) return previous !== next;
  if (previous === next) return false;
  if (previous === 0) return true;
  return Math.abs(next - previous) / Math.abs(previous) > threshold;
}

export interface SlackMessage {
  text: string;
  blocks: KnownBlock[];
}

export interface AlertedCheck {
  check: string;
  table: string;
  status: string;
  observed: number | null;
  threshold: string | null;
  details: string | null;
}

export interface RunLink {
  url: string;
  label: string;
}

const ICON: Record<string, string> = {
  fail: ':red_circle:',
  warn: ':large_yellow_circle:',
  pass: ':large_green_circle:',
};
const MAX_CHECK_BLOCKS = 20;

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Slack mrkdwn escaping of the three control characters. */
export function esc(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function fmt(value: number | null): string {
  return value === null ? 'none' : String(value);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The one message of a run with warnings or failures: date, each check with observed vs expected, the run link. */
export function buildAlertMessage(input: {
  date: string;
  checks: AlertedCheck[];
  stillFailing: string[];
  link: RunLink;
}): SlackMessage {
  const fails = input.checks.filter((c) => c.status === 'fail').length;
  const warns = input.checks.length - fails;
  const counts = [fails && plural(fails, 'failure'), warns && plural(warns, 'warning')].filter(Boolean).join(', ');
  const title = `Data quality ${input.date}: ${counts}`;
  const blocks: KnownBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`:rotating_light: ${title}`, 150), emoji: true } },
    {
      type: 'section',
      text: { type: 'mrkdwn', text: `*Date:* ${input.date}\n*Run:* <${input.link.url}|${esc(input.link.label)}>` },
    },
    { type: 'divider' },
  ];
  for (const c of input.checks.slice(0, MAX_CHECK_BLOCKS)) {
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: clip(
          `${ICON[c.status] ?? ''} *${esc(c.check)}* — ${c.status.toUpperCase()} · \`${esc(c.table)}\`\n` +
            `*Observed:* ${fmt(c.observed)}   *Expected:* ${esc(c.threshold ?? '—')}\n` +
            (c.details ? `_${esc(c.details)}_` : ''),
          3000,
        ),
      },
    });
  }
  const notes: string[] = [];
  if (input.checks.length > MAX_CHECK_BLOCKS)
    notes.push(`${input.checks.length - MAX_CHECK_BLOCKS} more checks not shown`);
  if (input.stillFailing.length) notes.push(`Still failing, alerted before: ${input.stillFailing.map(esc).join(', ')}`);
  if (notes.length)
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: clip(notes.join(' · '), 3000) }] });
  const text = `${title} — ${input.checks.map((c) => `${c.check} ${c.status} (observed ${fmt(c.observed)}, expected ${c.threshold ?? '—'})`).join('; ')} — ${input.link.url}`;
  return { text: clip(text, 3000), blocks };
}

/** The short message when checks that were alerted pass again. */
export function buildRecoveredMessage(input: { date: string; checks: AlertedCheck[]; link: RunLink }): SlackMessage {
  const names = input.checks.map((c) => c.check).join(', ');
  return {
    text: `Recovered ${input.date}: ${names} pass again — ${input.link.url}`,
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: clip(
            `:white_check_mark: *Recovered ${input.date}:* ${input.checks.map((c) => `*${esc(c.check)}* passes again (observed ${fmt(c.observed)})`).join(', ')}\n` +
              `<${input.link.url}|${esc(input.link.label)}>`,
            3000,
          ),
        },
      },
    ],
  };
}

export interface BackfillDateSummary {
  date: string;
  /** New or materially changed alerts of the date. */
  alerts: AlertedCheck[];
  /** Checks alerted before that still fail or warn. */
  stillFailing: string[];
  recovered: string[];
  checked: boolean;
  /** How the backfill's run of the date ended; absent when the backfill did not run it (mode missing/failed). */
  run?: { status: 'succeeded' | 'failed'; error?: string };
}

/** The one message of a whole backfill range. */
/** Whether a backfill summary says anything not alerted before: a new alert, a recovery, a date without results. */
export function backfillSummaryHasNews(dates: BackfillDateSummary[]): boolean {
  return dates.some((d) => d.alerts.length > 0 || d.recovered.length > 0 || !d.checked);
}

export function buildBackfillSummary(input: {
  from: string;
  to: string;
  dates: BackfillDateSummary[];
  link: RunLink;
}): SlackMessage {
  const checked = input.dates.filter((d) => d.checked);
  const bad = checked.filter((d) => d.alerts.length || d.stillFailing.length);
  const recovered = checked.reduce((n, d) => n + d.recovered.length, 0);
  const unchecked = input.dates.length - checked.length;
  const ran = input.dates.filter((d) => d.run);
  const failed = ran.filter((d) => d.run!.status === 'failed');
  // runs first: a failed date's checks may be those of an earlier run, so "clean" alone would not mean loaded
  const runs = ran.length ? `${ran.length - failed.length} succeeded, ${failed.length} failed; ` : '';
  const head = `Backfill ${input.from} → ${input.to}: ${runs}${plural(checked.length, 'date')} checked, ${checked.length - bad.length} clean, ${bad.length} with warnings or failures`;
  const failedLines = failed
    .slice(0, 30)
    .map((d) => `:x: *${d.date}* failed: ${esc(clip(d.run!.error ?? 'no error recorded', 300))}`);
  if (failed.length > 30) failedLines.push(`… and ${failed.length - 30} more failed dates`);
  const lines = bad.slice(0, 30).map((d) => {
    const items = [
      ...d.alerts.map(
        (c) =>
          `${ICON[c.status] ?? ''} ${esc(c.check)} ${c.status} (observed ${fmt(c.observed)}, expected ${esc(c.threshold ?? '—')})`,
      ),
      ...d.stillFailing.map((name) => `${esc(name)} (alerted before)`),
    ];
    return `• *${d.date}*: ${items.join('; ')}`;
  });
  if (bad.length > 30) lines.push(`… and ${bad.length - 30} more dates`);
  const extra = [
    recovered && `${plural(recovered, 'check')} recovered`,
    unchecked && `${plural(unchecked, 'date')} without check results`,
  ]
    .filter(Boolean)
    .join(' · ');
  const blocks: KnownBlock[] = [
    {
      type: 'header',
      text: {
        type: 'plain_text',
        text: clip(`${failed.length ? ':x:' : bad.length ? ':warning:' : ':white_check_mark:'} ${head}`, 150),
        emoji: true,
      },
    },
    { type: 'section', text: { type: 'mrkdwn', text: `*Run:* <${input.link.url}|${esc(input.link.label)}>` } },
  ];
  if (failedLines.length) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: clip(failedLines.join('\n'), 3000) } });
  }
  if (lines.length) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: clip(lines.join('\n'), 3000) } });
  if (extra) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: extra }] });
  const failedDates = failed.length ? ` (failed: ${failed.map((d) => d.date).join(', ')})` : '';
  return { text: clip(`${head}${failedDates} — ${input.link.url}`, 3000), blocks };
}

export interface DeliveryResult {
  delivered: boolean;
  attempts: number;
  error: string | null;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Posts one message with the official client, retrying with exponential backoff (base, 2×base, …) while attempts
 * remain and the next retry would start within the budget. Never throws: the outcome is returned.
 */
export async function postToSlack(
  webhookUrl: string,
  message: SlackMessage,
  config: AlertConfig,
  sleep: (ms: number) => Promise<void> = defaultSleep,
): Promise<DeliveryResult> {
  // the client's own retries stay off (its default): the budget below bounds the time spent on one message
  const webhook = new IncomingWebhook(webhookUrl, { timeout: config.timeoutMs });
  const started = Date.now();
  let attempts = 0;
  let error: string | null = null;
  for (;;) {
    attempts += 1;
    try {
      await webhook.send({ text: message.text, blocks: message.blocks });
      return { delivered: true, attempts, error: null };
    } catch (err) {
      const status = err instanceof IncomingWebhookHTTPError ? err.statusCode : undefined;
      const message = err instanceof Error ? err.message : String(err);
      error = redact(status ? `HTTP ${status} from Slack: ${message}` : message);
      // the client's messages can carry the webhook URL, whose path is the credential
      // 4xx other than 429 will not get better by retrying (bad URL, revoked webhook, bad payload)
      if (status && status >= 400 && status < 500 && status !== 429) break;
    }
    const delay = config.retryBaseMs * 2 ** (attempts - 1);
    if (attempts >= config.maxAttempts || Date.now() - started + delay > config.retryBudgetMs) break;
    await sleep(delay);
  }
  return { delivered: false, attempts, error };
}
