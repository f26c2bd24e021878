import type { Db } from '../warehouse/db';
import { sql } from 'kysely';

/** Bookkeeping of ops.pipeline_runs: one row per run, date and step, kept up to date as the step goes. */

export interface StepCounts {
  rowsRead?: number;
  rowsInserted?: number;
  rowsUpdated?: number;
  rowsUnchanged?: number;
  details?: Record<string, unknown>;
}

export interface StepKey {
  workflowId: string;
  runId: string;
  date: string;
  step: string;
}

/** Marks the step running (a retry of the same run and step reuses its row). */
export async function startStep(db: Db, key: StepKey): Promise<void> {
  await db
    .insertInto('ops.pipeline_runs')
    .values({ workflow_id: key.workflowId, run_id: key.runId, dt: key.date, step: key.step, status: 'running' })
    .onConflict((oc) =>
      oc.columns(['run_id', 'dt', 'step']).doUpdateSet({
        status: 'running',
        error: null,
        finished_at: null,
        started_at: sql`now()`,
      }),
    )
    .execute();
}

export async function finishStep(db: Db, key: StepKey, counts: StepCounts): Promise<void> {
  await db
    .updateTable('ops.pipeline_runs')
    .set({
      status: 'succeeded',
      rows_read: counts.rowsRead ?? null,
      rows_inserted: counts.rowsInserted ?? null,
      rows_updated: counts.rowsUpdated ?? null,
      rows_unchanged: counts.rowsUnchanged ?? null,
      details: JSON.stringify(counts.details ?? {}),
      error: null,
      finished_at: sql`now()`,
    })
    .where('run_id', '=', key.runId)
    .where('dt', '=', key.date)
    .where('step', '=', key.step)
    .execute();
}

export async function failStep(db: Db, key: StepKey, error: unknown): Promise<void> {
  await db
    .updateTable('ops.pipeline_runs')
    .set({ status: 'failed', error: error instanceof Error ? error.message : String(error), finished_at: sql`now()` })
    .where('run_id', '=', key.runId)
    .where('dt', '=', key.date)
    .where('step', '=', key.step)
    .execute();
}

/** Runs `fn` as a recorded step: running, then succeeded with its counts, or failed with the error (rethrown). */
export async function recordStep<T extends StepCounts>(db: Db, key: StepKey, fn: () => Promise<T>): Promise<T> {
  await startStep(db, key);
  try {
    const counts = await fn();
    await finishStep(db, key, counts);
    return counts;
  } catch (err) {
    await failStep(db, key, err).catch(() => undefined);
    throw err;
  }
}
