import type { DateStepInput, RunRef } from '../activities/deps';

/**
 * The activities other issues are still building, typed as this orchestration expects them. Each one leaves this
 * file when its factory lands in activities/index.ts (its real type then comes from `Activities`).
 * Types only: nothing here reaches the workflow bundle.
 */
export interface PendingActivities {
  landEvents(input: { date?: string; run?: RunRef; maxRecords?: number }): Promise<{
    recordsRead: number;
    recordsLanded: number;
    recordsDeadLettered: number;
    files: number;
    bytes: number;
    perDate: unknown[];
    reloadDates: string[];
  }>;
  stageEvents(input: DateStepInput): Promise<Record<string, unknown>>;
  loadDimensions(input: DateStepInput): Promise<Record<string, unknown>>;
  loadFacts(input: DateStepInput): Promise<Record<string, unknown>>;
  runChecks(input: { date: string; run: RunRef; scheduled?: boolean }): Promise<{ results: { status: string }[] }>;
  sendAlerts(input: { date: string; run: RunRef; checks: unknown }): Promise<Record<string, unknown>>;
  sendBackfillSummary(input: { from: string; to: string; mode: string; run: RunRef; results: unknown[] }): Promise<Record<string, unknown>>;
}
