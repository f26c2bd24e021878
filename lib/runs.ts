import type { Db } from '../warehouse/db';
import { sql } from 'kysely';
import { redact } from './redact';

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
    // analysts read this column: no secret a message may carry lands in it
    .set({
      status: 'failed',
      error: redact(error instanceof Error ? error.message : String(error)),
      finished_at: sql`now()`,
    })
    .where('run_id', '=', key.runId)
    .where('dt', '=', key.date)
    .where('step', '=', key.step)
    .execute();
}

/**
 * Runs `fn` as a recorded step, the one wrapper every activity uses: each key is marked running, then succeeded
 * with the counts of the result, or failed with the error (which is rethrown). `counts` turns the result into the
 * recorded figures (default: the result is the counts). No keys (a step run outside a pipeline): `fn` only.
 */
export async function recordStep<T>(
  db: Db,
  key: StepKey | StepKey[] | null,
  fn: () => Promise<T>,
  counts: (result: T) => StepCounts = (result) => result as StepCounts,
): Promise<T> {
  const keys = key === null ? [] : Array.isArray(key) ? key : [key];
  for (const k of keys) await startStep(db, k);
  try {
    const result = await fn();
    const figures = keys.length ? counts(result) : {};
    for (const k of keys) await finishStep(db, k, figures);
    return result;
  } catch (err) {
    for (const k of keys) await failStep(db, k, err).catch(() => undefined);
    throw err;
  }
}
