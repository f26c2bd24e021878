import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';

/**
 * Gives every activity a one-line summary in the Temporal UI's event history ("stageEvents · 2024-12-17"), so the
 * on-call engineer reads what each step was about without opening its payload. Registered with the workflow bundle
 * (scripts/worker.ts); the summary is metadata only and changes no command.
 */

function about(input: unknown): string | undefined {
  if (!input || typeof input !== 'object') return undefined;
  const i = input as { date?: unknown; from?: unknown; to?: unknown; dates?: unknown; status?: unknown };
  const parts: string[] = [];
  if (typeof i.date === 'string') parts.push(i.date);
  else if (typeof i.from === 'string' && typeof i.to === 'string') parts.push(`${i.from}..${i.to}`);
  else if (Array.isArray(i.dates)) parts.push(i.dates.length > 3 ? `${i.dates.length} dates` : i.dates.join(', '));
  if (typeof i.status === 'string') parts.push(i.status);
  return parts.length ? parts.join(' · ') : undefined;
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      scheduleActivity(input, next) {
        if (input.options.summary) return next(input);
        const detail = about(input.args[0]);
        const summary = detail ? `${input.activityType} · ${detail}` : input.activityType;
        return next({ ...input, options: { ...input.options, summary } });
      },
    },
  ],
});
