/**
 * What the Temporal UI shows of a run without opening payloads: a one-line static summary and static details set
 * when the run starts, and current details while it runs. Deterministic and free of Node built-ins (workflow code
 * imports it).
 */

export const DAILY_STEP_COUNT = 7;

export function dailyStaticSummary(date: string, trigger: string): string {
  return `Daily pipeline ${date} · ${trigger}`;
}

export function dailyStaticDetails(date: string, trigger: string): string {
  return `**Date:** ${date} (UTC)\n**Trigger:** ${trigger}\n**Steps:** land → stage → dimensions → facts → marts → checks → alert`;
}

export function backfillStaticSummary(from: string, to: string, mode: string, concurrency: number): string {
  return `Backfill ${from}..${to} · mode ${mode} · ${concurrency} at a time`;
}

export function backfillStaticDetails(from: string, to: string, mode: string, concurrency: number): string {
  return `**Range:** ${from} to ${to} (UTC)\n**Mode:** ${mode}\n**Concurrency:** ${concurrency}\n**Children:** one daily-<date> run per date`;
}

export function dailyStepDetails(date: string, step: string, done: number): string {
  return `**${date}** · step **${step}** (${Math.min(done + 1, DAILY_STEP_COUNT)} of ${DAILY_STEP_COUNT})`;
}

export function dailyOutcomeDetails(
  date: string,
  summary: { recordsLanded: number; factRows: number; checks: Record<string, number> },
): string {
  const checks = Object.entries(summary.checks)
    .map(([status, n]) => `${n} ${status}`)
    .join(', ');
  return `**${date}** succeeded · ${summary.recordsLanded} records landed · ${summary.factRows} fact rows · checks: ${checks || 'none'}`;
}

export function backfillProgressDetails(p: { done: number; total: number; failed: number; running: string[] }): string {
  return (
    `${p.done} of ${p.total} dates done` +
    (p.failed ? ` · ${p.failed} failed` : '') +
    (p.running.length ? ` · running ${p.running.join(', ')}` : '')
  );
}
