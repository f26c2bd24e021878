import type { RunRef } from '../activities/deps';

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
}
