import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Names, ids and date helpers shared by workflows, activities and scripts.
 * Deterministic and free of Node built-ins: workflow code imports this file.
 * The client connection helper lives in lib/temporal-client.ts (it needs Node).
 */

/** Custom search attributes, registered by `make up` (scripts/stack/env.sh). */
export const PIPELINE_DATE = defineSearchAttributeKey('PipelineDate', 'KEYWORD');
export const PIPELINE_STEP = defineSearchAttributeKey('PipelineStep', 'KEYWORD');
/** Set by the Temporal scheduler on every run it starts: the nominal (not actual) start time. */
export const SCHEDULED_START_TIME = defineSearchAttributeKey('TemporalScheduledStartTime', 'DATETIME');

export const DAILY_SCHEDULE_ID = 'nightshift-daily';
export const DEFAULT_CRON = '0 2 * * *';

export const BACKFILL_MODES = ['all', 'missing', 'failed'] as const;
export type BackfillMode = (typeof BACKFILL_MODES)[number];

export const MAX_BACKFILL_CONCURRENCY = 16;
/** A longer range than this is refused: about 10 years of days. */
export const MAX_BACKFILL_DAYS = 3660;

/**
 * The steps of a daily run, in order. `PipelineStep` shows one of them while it runs, then `done` or `failed`;
 * also `starting`, `reload <date>: <step>` and `reload: marts` for late records, and `delegated to daily-<date>`
 * on a scheduled run's wrapper.
 */
export const PIPELINE_STEPS = ['land', 'stage', 'dimensions', 'facts', 'marts', 'checks', 'alert'] as const;
export type PipelineStep = (typeof PIPELINE_STEPS)[number];

/** Workflow id of the daily pipeline of one date: one id per date is what keeps two loads of it apart. */
export function dailyWorkflowId(date: string): string {
  return `daily-${date}`;
}

export function backfillWorkflowId(from: string, to: string): string {
  return `backfill-${from}-${to}`;
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Why `value` is not a real calendar date YYYY-MM-DD, or null when it is one. */
export function dateProblem(value: unknown): string | null {
  if (typeof value !== 'string') return `expected a date YYYY-MM-DD, got ${JSON.stringify(value)}`;
  const m = DATE_RE.exec(value);
  if (!m) return `"${value}" is not a date in the form YYYY-MM-DD`;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) {
    return `"${value}" is not a calendar date (no such day)`;
  }
  if (y < 2000 || y > 2100) return `"${value}" is outside the supported years 2000-2100`;
  return null;
}

export function isValidDate(value: unknown): value is string {
  return dateProblem(value) === null;
}

/** The UTC calendar date of an instant, YYYY-MM-DD. */
export function utcDate(instant: Date): string {
  return instant.toISOString().slice(0, 10);
}

export function addDays(date: string, days: number): string {
  const [y, m, d] = date.split('-').map(Number);
  return utcDate(new Date(Date.UTC(y, m - 1, d + days)));
}

/** Whole days from `from` to `to` (negative when `to` is earlier). */
export function daysBetween(from: string, to: string): number {
  const ms = (d: string) => Date.UTC(Number(d.slice(0, 4)), Number(d.slice(5, 7)) - 1, Number(d.slice(8, 10)));
  return Math.round((ms(to) - ms(from)) / 86_400_000);
}

/** The day before the UTC date of `instant`: what a run scheduled at that instant loads. */
export function previousUtcDay(instant: Date): string {
  return addDays(utcDate(instant), -1);
}

/** Every date from `from` to `to`, both included (both valid, from <= to). */
export function dateRange(from: string, to: string): string[] {
  const dates: string[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) dates.push(d);
  return dates;
}

/** Why a backfill range is unacceptable, or null. Used by the CLI and, as a guard, by the workflow. */
export function rangeProblem(from: string, to: string): string | null {
  const problem = dateProblem(from) ?? dateProblem(to);
  if (problem) return problem;
  if (from > to) return `FROM ${from} is after TO ${to}: swap them, or give a single DATE`;
  if (daysBetween(from, to) + 1 > MAX_BACKFILL_DAYS)
    return `the range ${from}..${to} is longer than ${MAX_BACKFILL_DAYS} days: split it`;
  return null;
}

export function isBackfillMode(value: unknown): value is BackfillMode {
  return typeof value === 'string' && (BACKFILL_MODES as readonly string[]).includes(value);
}

/** The Temporal Web UI page of a workflow (the latest run when runId is omitted). */
export function workflowUiUrl(uiUrl: string, namespace: string, workflowId: string, runId?: string): string {
  const base = `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${encodeURIComponent(runId)}/history` : base;
}
