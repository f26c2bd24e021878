import {
  ApplicationFailure,
  ChildWorkflowFailure,
  TerminatedFailure,
  TimeoutFailure,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  executeChild,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../activities';
import {
  type BackfillMode,
  MAX_BACKFILL_CONCURRENCY,
  PIPELINE_DATE,
  PIPELINE_STEP,
  dailyWorkflowId,
  isBackfillMode,
  rangeProblem,
} from '../lib/temporal';
import { dailyPipelineWorkflow, errorMessage } from './daily-pipeline';
import { backfillProgressDetails, dailyStaticDetails, dailyStaticSummary } from '../lib/run-summary';

// --- timeout and retry profiles ---------------------------------------------------------------------------------

/** Reading ops to pick the dates, or recording a child's failure: one statement. */
const PLAN: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumAttempts: 10,
    nonRetryableErrorTypes: ['InvalidInput'],
  },
};
/** The one Slack summary of the range: delivery is retried inside the activity; never fails the backfill. */
const SUMMARY: ActivityOptions = {
  startToCloseTimeout: '3 minutes',
  retry: {
    initialInterval: '10 seconds',
    backoffCoefficient: 2,
    maximumAttempts: 3,
    nonRetryableErrorTypes: ['InvalidInput'],
  },
};

/** Dates started per run before continuing as new: keeps each run's history to a few thousand events. */
export const DATES_PER_RUN = 50;
/** While `daily-<date>` runs elsewhere (schedule, manual run), wait this long between attempts to start it ... */
const ALREADY_RUNNING_WAIT = '30 seconds';
/** ... at most this many times (an hour), then report the date failed. */
const ALREADY_RUNNING_MAX_WAITS = 120;

type AllActivities = Activities;
const { listBackfillDates, recordPipelineRun } = proxyActivities<AllActivities>(PLAN);
const { sendBackfillSummary } = proxyActivities<AllActivities>(SUMMARY);

// --- contract ---------------------------------------------------------------------------------------------------

export interface BackfillInput {
  from: string;
  to: string;
  /** Daily runs at once, 1..16; default 3. */
  concurrency?: number;
  /** all (default), missing (dates never loaded) or failed (dates whose latest run failed). */
  mode?: BackfillMode;
  /** Dates started per run before continuing as new; default DATES_PER_RUN (tests lower it). */
  datesPerRun?: number;
  /** Carried over continue-as-new: what is left and what is done. Not for callers. */
  carried?: BackfillCarried;
}

export interface BackfillCarried {
  /** Dates still to run, ascending. */
  pending: string[];
  /** How many dates the mode selected in total. */
  total: number;
  skipped: number;
  results: DateOutcome[];
  /** Runs of this backfill so far (continue-as-new count + 1). */
  generation: number;
}

export interface DateOutcome {
  date: string;
  status: 'succeeded' | 'failed';
  workflowId: string;
  runId?: string;
  recordsLanded?: number;
  factRows?: number;
  /** Check results by status, e.g. { pass: 7, warn: 1 }. */
  checks?: Record<string, number>;
  reloadDates?: string[];
  error?: string;
}

export interface BackfillProgress {
  from: string;
  to: string;
  mode: BackfillMode;
  concurrency: number;
  /** Dates the mode selected. */
  total: number;
  /** Dates of the range the mode left out. */
  skipped: number;
  done: number;
  succeeded: number;
  failed: string[];
  /** Dates whose daily run is in flight; query `currentStep` on `daily-<date>` for its step. */
  running: string[];
  pending: number;
  /** 'planning', 'running', 'summarizing', 'done'. */
  phase: string;
  results: DateOutcome[];
  generation: number;
}

export interface BackfillOutput {
  from: string;
  to: string;
  mode: BackfillMode;
  total: number;
  skipped: number;
  succeeded: string[];
  failed: string[];
  results: DateOutcome[];
  summary?: Awaited<ReturnType<AllActivities['sendBackfillSummary']>> | { skipped: string };
}

export const progressQuery = defineQuery<BackfillProgress>('progress');

// --- the workflow -----------------------------------------------------------------------------------------------

/**
 * Re-runs a range of dates: one child `daily-<date>` per date, at most `concurrency` at once, continuing as new
 * every DATES_PER_RUN dates. Grain: one run per range (`backfill-FROM-TO`). Idempotent: each child is, and a
 * re-started backfill with mode `missing`/`failed` picks up only what is still to do. One Slack summary at the end.
 */
export async function backfillWorkflow(input: BackfillInput): Promise<BackfillOutput> {
  const { from, to } = input;
  const mode = input.mode ?? 'all';
  const concurrency = input.concurrency ?? 3;
  const datesPerRun = input.datesPerRun ?? DATES_PER_RUN;
  validate(from, to, mode, concurrency);
  if (!Number.isInteger(datesPerRun) || datesPerRun < 1) {
    throw ApplicationFailure.nonRetryable(
      `backfillWorkflow: bad datesPerRun ${JSON.stringify(datesPerRun)}: use a whole number above 0`,
      'InvalidInput',
    );
  }

  const running = new Set<string>();
  let phase = input.carried ? 'running' : 'planning';
  let carried: BackfillCarried = input.carried ?? { pending: [], total: 0, skipped: 0, results: [], generation: 1 };
  const progress = (): BackfillProgress => {
    const failed = carried.results.filter((r) => r.status === 'failed').map((r) => r.date);
    return {
      from,
      to,
      mode,
      concurrency,
      total: carried.total,
      skipped: carried.skipped,
      done: carried.results.length,
      succeeded: carried.results.length - failed.length,
      failed,
      running: [...running].sort(),
      pending: carried.pending.length,
      phase,
      results: carried.results,
      generation: carried.generation,
    };
  };
  setHandler(progressQuery, progress);
  // the UI's current details: no command, nothing for replay to compare
  const showProgress = () => {
    const p = progress();
    setCurrentDetails(backfillProgressDetails({ ...p, failed: p.failed.length }));
  };
  upsertSearchAttributes([
    { key: PIPELINE_DATE, value: `${from}..${to}` },
    { key: PIPELINE_STEP, value: phase },
  ]);

  if (!input.carried) {
    const plan = await listBackfillDates({ from, to, mode });
    carried = { pending: plan.dates, total: plan.dates.length, skipped: plan.skipped, results: [], generation: 1 };
    phase = 'running';
  }

  // lanes pull dates from the queue until it is empty or this run has started its share
  const queue = carried.pending;
  let startedThisRun = 0;
  const lane = async () => {
    while (queue.length > 0 && startedThisRun < datesPerRun && !workflowInfo().continueAsNewSuggested) {
      const date = queue.shift()!;
      startedThisRun++;
      running.add(date);
      upsertSearchAttributes([{ key: PIPELINE_STEP, value: `running ${[...running].sort().join(', ')}` }]);
      showProgress();
      const outcome = await runDate(date, `backfill ${from}..${to} (${workflowInfo().workflowId})`);
      running.delete(date);
      carried.results.push(outcome);
      showProgress();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(queue.length, 1)) }, lane));

  if (queue.length > 0) {
    // the history of this run is long enough: the next run carries on with what is left
    await condition(allHandlersFinished);
    await continueAsNew<typeof backfillWorkflow>({
      from,
      to,
      concurrency,
      mode,
      datesPerRun,
      carried: { ...carried, pending: queue, generation: carried.generation + 1 },
    });
  }

  phase = 'summarizing';
  upsertSearchAttributes([{ key: PIPELINE_STEP, value: phase }]);
  const failed = carried.results
    .filter((r) => r.status === 'failed')
    .map((r) => r.date)
    .sort();
  const succeeded = carried.results
    .filter((r) => r.status === 'succeeded')
    .map((r) => r.date)
    .sort();
  const results = [...carried.results].sort((a, b) => a.date.localeCompare(b.date));
  let summary: BackfillOutput['summary'];
  try {
    summary = await sendBackfillSummary({
      from,
      to,
      run: { workflowId: workflowInfo().workflowId, runId: workflowInfo().runId },
      // the summary counts and names the failed dates from what this backfill saw, not only their checks
      outcomes: results.map((r) => ({ date: r.date, status: r.status, ...(r.error ? { error: r.error } : {}) })),
    });
  } catch (err) {
    summary = { skipped: `summary not sent: ${errorMessage(err)}` };
  }
  phase = 'done';
  upsertSearchAttributes([{ key: PIPELINE_STEP, value: failed.length ? `done, ${failed.length} failed` : 'done' }]);
  return { from, to, mode, total: carried.total, skipped: carried.skipped, succeeded, failed, results, summary };
}

/** Runs `daily-<date>` as a child and reduces its output to an outcome; a failure is an outcome, not a throw. */
async function runDate(date: string, trigger: string): Promise<DateOutcome> {
  const workflowId = dailyWorkflowId(date);
  for (let waits = 0; ; waits++) {
    try {
      const result = await executeChild(dailyPipelineWorkflow, {
        workflowId,
        args: [{ date, partOfBackfill: true }],
        staticSummary: dailyStaticSummary(date, trigger),
        staticDetails: dailyStaticDetails(date, trigger),
        typedSearchAttributes: [
          { key: PIPELINE_DATE, value: date },
          { key: PIPELINE_STEP, value: 'starting' },
        ],
        // a re-run of a date is a new run of the same id; a running one is never joined twice
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        // cancelling the backfill cancels its children; terminating it terminates them
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      });
      return {
        date,
        status: 'succeeded',
        workflowId,
        runId: result.runId,
        recordsLanded: result.summary.recordsLanded,
        factRows: result.summary.factRows,
        checks: result.summary.checks,
        reloadDates: result.reloads.map((r) => r.date),
      };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError && waits < ALREADY_RUNNING_MAX_WAITS) {
        // another run of this date (the schedule, a manual start) is loading it: wait, then re-run it ourselves
        await sleep(ALREADY_RUNNING_WAIT);
        continue;
      }
      const error = errorMessage(err);
      // a terminated or timed-out child never ran its own bookkeeping: record its failure for it (mode=failed reads it)
      if (
        err instanceof ChildWorkflowFailure &&
        (err.cause instanceof TerminatedFailure || err.cause instanceof TimeoutFailure)
      ) {
        await recordPipelineRun({
          run: { workflowId, runId: err.execution.runId ?? '' },
          date,
          status: 'failed',
          error: `${err.cause instanceof TerminatedFailure ? 'terminated' : 'timed out'}: ${error}`,
        });
        return { date, status: 'failed', workflowId, runId: err.execution.runId ?? undefined, error };
      }
      return { date, status: 'failed', workflowId, runId: childRunId(err), error };
    }
  }
}

function childRunId(err: unknown): string | undefined {
  return err instanceof ChildWorkflowFailure ? (err.execution.runId ?? undefined) : undefined;
}

function validate(from: string, to: string, mode: unknown, concurrency: unknown): void {
  const problem = rangeProblem(from, to);
  if (problem) throw ApplicationFailure.nonRetryable(`backfillWorkflow: bad range: ${problem}`, 'InvalidInput');
  if (!isBackfillMode(mode)) {
    throw ApplicationFailure.nonRetryable(
      `backfillWorkflow: bad mode ${JSON.stringify(mode)}: use "all", "missing" or "failed"`,
      'InvalidInput',
    );
  }
  if (
    !Number.isInteger(concurrency) ||
    (concurrency as number) < 1 ||
    (concurrency as number) > MAX_BACKFILL_CONCURRENCY
  ) {
    throw ApplicationFailure.nonRetryable(
      `backfillWorkflow: bad concurrency ${JSON.stringify(concurrency)}: use a whole number from 1 to ${MAX_BACKFILL_CONCURRENCY}`,
      'InvalidInput',
    );
  }
}
