import { ApplicationFailure } from '@temporalio/common';
import type { ActivityDeps, RunRef } from './deps';
import {
  CHECKS,
  type CheckDefinition,
  type CheckResult,
  type DqConfig,
  dateKeyOf,
  evaluateChecks,
} from '../lib/checks';
import { recordStep } from '../lib/runs';
import { dateProblem } from '../lib/temporal';

/** Runs the data-quality checks of SPEC section 6 for a date and records them in ops.dq_results. */

export const CHECKS_STEP = 'checks';

export interface RunChecksInput {
  /** The date checked, YYYY-MM-DD. */
  date: string;
  run: RunRef;
  /** The scheduled daily run: freshness compares the newest event with the clock, not with the date's end. */
  scheduled?: boolean;
  /** Clock for the freshness rule (tests); ISO-8601, default now. */
  now?: string;
}

export interface RunChecksOutput {
  date: string;
  runId: string;
  counts: Record<CheckResult['status'], number>;
  results: CheckResult[];
}

export interface CheckActivityOptions {
  config?: DqConfig;
  checks?: CheckDefinition[];
  /** Record the run's 'checks' step in ops.pipeline_runs (default true; the manual CLI turns it off). */
  recordStep?: boolean;
}

const MAX_DETAILS = 300;

export function createCheckActivities(
  { config: appConfig, pool, db }: ActivityDeps,
  options: CheckActivityOptions = {},
) {
  const config = options.config ?? appConfig.dq;
  const checks = options.checks ?? CHECKS;
  const record = options.recordStep ?? true;

  return {
    /**
     * Evaluates every registered check for one date and writes one ops.dq_results row per check for the run
     * (pass, warn, fail or skip). Idempotent per run and date: a retry replaces the run's rows for the date.
     * Never throws because a check fails; the alert step acts on the results.
     */
    async runChecks(input: RunChecksInput): Promise<RunChecksOutput> {
      const problem = dateProblem(input?.date);
      if (problem)
        throw ApplicationFailure.nonRetryable(
          `runChecks: bad date: ${problem}; pass the date as YYYY-MM-DD`,
          'InvalidInput',
        );
      if (!input.run?.runId || !input.run?.workflowId) {
        throw ApplicationFailure.nonRetryable(
          'runChecks: run {workflowId, runId} is required to record the results',
          'InvalidInput',
        );
      }
      const now = input.now ? new Date(input.now) : new Date();
      if (Number.isNaN(now.getTime()))
        throw ApplicationFailure.nonRetryable(
          `runChecks: bad now ${JSON.stringify(input.now)}: use ISO-8601`,
          'InvalidInput',
        );
      const key = { ...input.run, date: input.date, step: CHECKS_STEP };
      return recordStep(
        db,
        record ? key : null,
        async () => {
          // the checks take connections of their own from the pool; the results are written afterwards, in one
          // transaction
          const results: CheckResult[] = await evaluateChecks(
            pool,
            { date: input.date, dateKey: dateKeyOf(input.date), scheduled: input.scheduled ?? false, now, config },
            checks,
          );
          const client = await pool.connect();
          try {
            await client.query('begin');
            await client.query('delete from ops.dq_results where run_id = $1 and dt = $2::date', [
              input.run.runId,
              input.date,
            ]);
            await client.query(
              `insert into ops.dq_results (run_id, dt, check_name, table_name, observed, threshold, status, details)
               select $1, $2::date, r.check_name, r.table_name, r.observed, r.threshold, r.status, r.details
               from jsonb_to_recordset($3::jsonb)
                   as r (check_name text, table_name text, observed numeric, threshold text, status text, details text)`,
              [
                input.run.runId,
                input.date,
                JSON.stringify(
                  results.map((r) => ({
                    check_name: r.check,
                    table_name: r.table,
                    observed: r.observed,
                    threshold: r.threshold,
                    status: r.status,
                    details: r.details,
                  })),
                ),
              ],
            );
            await client.query('commit');
          } catch (err) {
            await client.query('rollback').catch(() => undefined);
            throw err;
          } finally {
            client.release();
          }
          const counts = { pass: 0, warn: 0, fail: 0, skip: 0 };
          for (const r of results) counts[r.status] += 1;
          return {
            date: input.date,
            runId: input.run.runId,
            counts,
            results: results.map((r) => ({
              ...r,
              details: r.details.length > MAX_DETAILS ? `${r.details.slice(0, MAX_DETAILS)}…` : r.details,
            })),
          };
        },
        (output) => ({ rowsInserted: output.results.length, details: output.counts }),
      );
    },
  };
}
