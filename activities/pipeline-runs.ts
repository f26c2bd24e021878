import { sql } from 'kysely';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityDeps, RunRef } from './deps';
import { failStep, finishStep, startStep } from '../lib/runs';
import { type BackfillMode, dateProblem, dateRange, isBackfillMode, rangeProblem } from '../lib/temporal';

/** The orchestration's own bookkeeping in ops: the whole-run row of ops.pipeline_runs and the date lists of backfills. */

export const PIPELINE_STEP_NAME = 'pipeline';

export interface RecordPipelineRunInput {
  run: RunRef;
  date: string;
  status: 'running' | 'succeeded' | 'failed';
  /** Total rows loaded into fact_events by the run, and the per-step figures, when it finished. */
  rowsInserted?: number;
  rowsRead?: number;
  details?: Record<string, unknown>;
  error?: string;
}

export interface ListBackfillDatesInput {
  from: string;
  to: string;
  mode: BackfillMode;
}

export interface ListBackfillDatesOutput {
  /** The dates to run, ascending. */
  dates: string[];
  /** How many dates of the range the mode left out. */
  skipped: number;
}

export interface ListDatesLoadedAfterInput {
  date: string;
}

export interface ListDatesLoadedAfterOutput {
  /** Dates after `date` already loaded into the warehouse, ascending. */
  dates: string[];
}

export interface ListDatesToReloadOutput {
  /** Loaded dates marked needs_reload in ops.date_loads (late records, or a load that left records out), ascending. */
  dates: string[];
}

export function createPipelineRunActivities({ db }: ActivityDeps) {
  return {
    /** Records the whole run (step 'pipeline') in ops.pipeline_runs. Idempotent per run, date and status. */
    async recordPipelineRun(input: RecordPipelineRunInput): Promise<void> {
      const key = {
        workflowId: input.run.workflowId,
        runId: input.run.runId,
        date: input.date,
        step: PIPELINE_STEP_NAME,
      };
      if (input.status === 'running') {
        await startStep(db, key);
      } else if (input.status === 'succeeded') {
        await finishStep(db, key, {
          rowsRead: input.rowsRead,
          rowsInserted: input.rowsInserted,
          details: input.details,
        });
      } else {
        // a run stopped before it recorded itself (terminated early) still gets its row
        await db
          .insertInto('ops.pipeline_runs')
          .values({ workflow_id: key.workflowId, run_id: key.runId, dt: key.date, step: key.step, status: 'failed' })
          .onConflict((oc) => oc.columns(['run_id', 'dt', 'step']).doNothing())
          .execute();
        await failStep(db, key, input.error ?? 'failed');
        if (input.details) {
          await db
            .updateTable('ops.pipeline_runs')
            .set({ details: JSON.stringify(input.details) })
            .where('run_id', '=', key.runId)
            .where('dt', '=', key.date)
            .where('step', '=', key.step)
            .execute();
        }
      }
    },

    /**
     * Dates loaded after `date`: when loading `date` moved dim_user version boundaries, facts of these dates may
     * have been re-pointed, and their marts are refreshed with the date's. Read-only.
     */
    async listDatesLoadedAfter(input: ListDatesLoadedAfterInput): Promise<ListDatesLoadedAfterOutput> {
      const problem = dateProblem(input.date);
      if (problem) throw ApplicationFailure.nonRetryable(`listDatesLoadedAfter: bad date: ${problem}`, 'InvalidInput');
      const rows = await db
        .selectFrom('ops.date_loads')
        .select('dt')
        .where('dt', '>', input.date)
        .where('last_loaded_at', 'is not', null)
        .orderBy('dt')
        .execute();
      return { dates: rows.map((r) => r.dt) };
    },

    /**
     * Dates marked for re-load in ops.date_loads that no run has re-loaded yet: a daily run re-loads them after its
     * own date, so a mark left by a failed or interrupted run is acted upon by the next one. Read-only.
     */
    async listDatesToReload(): Promise<ListDatesToReloadOutput> {
      const rows = await db
        .selectFrom('ops.date_loads')
        .select('dt')
        .where('needs_reload', '=', true)
        .orderBy('dt')
        .execute();
      return { dates: rows.map((r) => r.dt) };
    },

    /**
     * The dates of a range a backfill runs: all of them, the ones never loaded (`missing`), or the ones whose
     * latest whole run failed (`failed`). `missing` and `failed` also pick the dates whose load is incomplete
     * (ops.date_loads.needs_reload: records landed after the load, or it left records out). Read-only.
     */
    async listBackfillDates(input: ListBackfillDatesInput): Promise<ListBackfillDatesOutput> {
      const problem = rangeProblem(input.from, input.to);
      if (problem) throw ApplicationFailure.nonRetryable(`Bad backfill range: ${problem}`, 'InvalidInput');
      if (!isBackfillMode(input.mode)) {
        throw ApplicationFailure.nonRetryable(
          `Bad backfill mode ${JSON.stringify(input.mode)}: use all, missing or failed`,
          'InvalidInput',
        );
      }
      const all = dateRange(input.from, input.to);
      if (input.mode === 'all') return { dates: all, skipped: 0 };

      const marked = await db
        .selectFrom('ops.date_loads')
        .select('dt')
        .where('dt', '>=', input.from)
        .where('dt', '<=', input.to)
        .where('needs_reload', '=', true)
        .execute();
      const incomplete = new Set(marked.map((r) => r.dt));
      let picked: string[];
      if (input.mode === 'missing') {
        // loaded = the loads recorded it in ops.date_loads, or a whole run succeeded for it
        const loaded = await sql<{ dt: string }>`
          select dt from ops.date_loads
          where dt between ${input.from}::date and ${input.to}::date and last_loaded_at is not null
          union
          select dt from ops.pipeline_runs
          where dt between ${input.from}::date and ${input.to}::date and step = ${PIPELINE_STEP_NAME} and status = 'succeeded'
        `.execute(db);
        const done = new Set(loaded.rows.map((r) => r.dt));
        picked = all.filter((d) => !done.has(d) || incomplete.has(d));
      } else {
        // the latest whole run of each date, whoever started it (schedule, backfill, by hand)
        const latest = await sql<{ dt: string; status: string }>`
          select distinct on (dt) dt, status from ops.pipeline_runs
          where dt between ${input.from}::date and ${input.to}::date and step = ${PIPELINE_STEP_NAME}
          order by dt, started_at desc, run_step_id desc
        `.execute(db);
        const failed = new Set(latest.rows.filter((r) => r.status === 'failed').map((r) => r.dt));
        picked = all.filter((d) => failed.has(d) || incomplete.has(d));
      }
      return { dates: picked, skipped: all.length - picked.length };
    },
  };
}
