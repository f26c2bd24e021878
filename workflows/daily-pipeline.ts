import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  defineQuery,
  executeChild,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../activities';
import type { RunRef } from '../activities/deps';
import {
  PIPELINE_DATE,
  PIPELINE_STEP,
  SCHEDULED_START_TIME,
  dailyWorkflowId,
  dateProblem,
  previousUtcDay,
} from '../lib/temporal';
import { dailyOutcomeDetails, dailyStaticDetails, dailyStaticSummary, dailyStepDetails } from '../lib/run-summary';

// --- timeout and retry profiles ---------------------------------------------------------------------------------

/** Error types retrying cannot fix: bad input or configuration, a schema that does not match. */
const NON_RETRYABLE = ['InvalidInput', 'ConfigError', 'SchemaMismatch'];

/** Transient database/broker errors: back off from 5 s to 2 min, give up after 10 attempts (about 15 min). */
const RETRY_TRANSIENT = {
  initialInterval: '5 seconds',
  backoffCoefficient: 2,
  maximumInterval: '2 minutes',
  maximumAttempts: 10,
  nonRetryableErrorTypes: NON_RETRYABLE,
};

/**
 * A killed worker is noticed by a missed heartbeat: the worker heartbeats every 5 s for each running activity
 * (lib/liveness-heartbeat.ts), carrying the progress details land and stage report and resume from.
 */
const DEAD_WORKER = '30 seconds';

/** Landing reads Kafka and writes the lake: long; heartbeats its committed offsets, also while it waits for the landing lock. */
const LAND: ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: DEAD_WORKER,
  retry: RETRY_TRANSIENT,
};
/** Staging a date: COPY of each lake file; heartbeats the files done. */
const STAGE: ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: DEAD_WORKER,
  retry: RETRY_TRANSIENT,
};
/** Dimension and fact loads of a date: set-based statements, one transaction each under the date lock. */
const LOAD: ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: DEAD_WORKER,
  retry: RETRY_TRANSIENT,
};
/** Mart rebuild for the dates a run touched, one transaction. */
const MARTS: ActivityOptions = {
  startToCloseTimeout: '20 minutes',
  heartbeatTimeout: DEAD_WORKER,
  retry: RETRY_TRANSIENT,
};
/** Data-quality checks: read-only queries plus one insert per check. */
const CHECKS: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: DEAD_WORKER,
  retry: { ...RETRY_TRANSIENT, maximumAttempts: 5 },
};
/** Slack: the activity retries delivery itself and records what it could not deliver; never stalls the load. */
const ALERT: ActivityOptions = {
  startToCloseTimeout: '3 minutes',
  heartbeatTimeout: DEAD_WORKER,
  retry: {
    initialInterval: '10 seconds',
    backoffCoefficient: 2,
    maximumAttempts: 3,
    nonRetryableErrorTypes: NON_RETRYABLE,
  },
};
/** Bookkeeping rows in ops: one quick statement. */
const BOOKKEEPING: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20 },
};

type AllActivities = Activities;
const { landEvents } = proxyActivities<AllActivities>(LAND);
const { stageEvents } = proxyActivities<AllActivities>(STAGE);
const { loadDimensions, loadFacts } = proxyActivities<AllActivities>(LOAD);
const { refreshMarts } = proxyActivities<AllActivities>(MARTS);
const { runChecks } = proxyActivities<AllActivities>(CHECKS);
const { sendAlerts, alertRunOutcome } = proxyActivities<AllActivities>(ALERT);
const { recordPipelineRun, listDatesLoadedAfter, listDatesToReload } = proxyActivities<AllActivities>(BOOKKEEPING);

/** Patch: re-load a date whose load left lake files out, and the dates earlier runs marked but did not re-load. */
const RELOAD_MARKED_DATES = 'reload-marked-dates';
/** Patch: a run that fails posts one Slack message, a later success of the date one "recovered" (activities/run-alerts.ts). */
export const RUN_OUTCOME_ALERTS_PATCH = 'run-outcome-alerts';
/** Patch: the alert step runs after the re-loads of late dates, so a hanging Slack never delays them. */
export const ALERT_AFTER_RELOADS_PATCH = 'alert-after-reloads';
/** Patch: a dimension load that changed dim_user versions in place refreshes the marts of the later dates too. */
const MARTS_AFTER_VERSION_CHANGES = 'marts-after-version-changes';

// --- contract ---------------------------------------------------------------------------------------------------

export interface DailyPipelineInput {
  /** The date to load, YYYY-MM-DD (UTC). Omitted on scheduled runs: the previous UTC day of the scheduled time. */
  date?: string;
  /** Started by the Temporal Schedule: freshness is checked against now. */
  scheduled?: boolean;
  /** A child of a backfill: the backfill posts one summary, so this run posts no Slack message of its own. */
  partOfBackfill?: boolean;
}

/** What each step reported; the activities' own outputs, small objects of counts. */
export interface DateLoadResult {
  date: string;
  /**
   * Later dates whose facts the dimension load may have re-pointed to other dim_user versions, or whose versions it
   * changed in place: their marts are refreshed too.
   */
  repointedDates: string[];
  stage: Awaited<ReturnType<AllActivities['stageEvents']>>;
  dimensions: Awaited<ReturnType<AllActivities['loadDimensions']>>;
  facts: Awaited<ReturnType<AllActivities['loadFacts']>>;
}

export interface DailyPipelineOutput {
  date: string;
  workflowId: string;
  runId: string;
  /** `delegated`: a scheduled run handed the date to `daily-<date>`; `skipped`: that one was already running. */
  status: 'succeeded' | 'delegated' | 'skipped';
  /** The run that did the work, when this one delegated. */
  delegatedTo?: string;
  land?: Awaited<ReturnType<AllActivities['landEvents']>>;
  load?: DateLoadResult;
  marts?: Awaited<ReturnType<AllActivities['refreshMarts']>>;
  checks?: Awaited<ReturnType<AllActivities['runChecks']>>;
  alert?: Awaited<ReturnType<AllActivities['sendAlerts']>> | { skipped: string };
  /** Earlier dates re-loaded because late records landed for them. */
  reloads: DateLoadResult[];
  reloadMarts?: Awaited<ReturnType<AllActivities['refreshMarts']>>;
  /** The checks of each re-loaded date, run again after its re-load. */
  reloadChecks?: Awaited<ReturnType<AllActivities['runChecks']>>[];
  /** Headline figures for summaries. */
  summary: { recordsLanded: number; factRows: number; checks: Record<string, number> };
  /** The child's output when this run delegated. */
  delegated?: DailyPipelineOutput;
}

export interface CurrentStep {
  date: string;
  step: string;
  /** Steps finished so far, in order. */
  done: string[];
}

export const currentStepQuery = defineQuery<CurrentStep>('currentStep');

// --- the workflow -----------------------------------------------------------------------------------------------

/**
 * The daily pipeline of one date: land → stage → dimensions → facts → marts → checks → alert, then re-loads of
 * earlier dates that late records landed in. Grain: one UTC date per run, workflow id `daily-YYYY-MM-DD` (a
 * scheduled run delegates to that id, so one date never has two loads at once). Idempotent: every step is, so
 * re-running a date yields the same rows.
 */
export async function dailyPipelineWorkflow(input: DailyPipelineInput = {}): Promise<DailyPipelineOutput> {
  const info = workflowInfo();
  const date = resolveDate(input);
  const run: RunRef = { workflowId: info.workflowId, runId: info.runId };
  const state: CurrentStep = { date, step: 'starting', done: [] };
  setHandler(currentStepQuery, () => state);

  if (info.workflowId !== dailyWorkflowId(date)) return delegate(date, input, run);

  const setStep = (step: string) => {
    if (state.step !== 'starting' && !state.done.includes(state.step)) state.done.push(state.step);
    state.step = step;
    // the UI's current details: no command, nothing for replay to compare
    setCurrentDetails(dailyStepDetails(date, step, state.done.length));
    upsertSearchAttributes([
      { key: PIPELINE_DATE, value: date },
      { key: PIPELINE_STEP, value: step },
    ]);
  };

  setStep('starting');
  await recordPipelineRun({ run, date, status: 'running' });
  try {
    const output = await runSteps(date, input, run, setStep);
    setStep('done');
    setCurrentDetails(dailyOutcomeDetails(date, output.summary));
    await recordPipelineRun({
      run,
      date,
      status: 'succeeded',
      rowsRead: output.summary.recordsLanded,
      rowsInserted: output.summary.factRows,
      // `scheduled` marks the days the schedule ran: the schedule_gaps check counts from the first of them
      details: { ...output.summary, reloadDates: output.reloads.map((r) => r.date), ...scheduledMark(input) },
    });
    // a backfill's children stay quiet: the backfill's summary speaks for the range
    if (!input.partOfBackfill && patched(RUN_OUTCOME_ALERTS_PATCH)) {
      await alertRunOutcomeSafely({ date, run, status: 'succeeded' });
    }
    return output;
  } catch (err) {
    const failedStep = state.step;
    setStep('failed');
    setCurrentDetails(`**${date}** failed at step **${failedStep}**: ${errorMessage(err)}`);
    // runs even when the workflow is being cancelled, so ops.pipeline_runs never keeps a stale 'running' row
    await CancellationScope.nonCancellable(() =>
      recordPipelineRun({
        run,
        date,
        status: 'failed',
        error: `${failedStep}: ${errorMessage(err)}`,
        details: { failedStep, ...scheduledMark(input) },
      }),
    );
    if (!input.partOfBackfill && patched(RUN_OUTCOME_ALERTS_PATCH)) {
      await CancellationScope.nonCancellable(() =>
        alertRunOutcomeSafely({ date, run, status: 'failed', step: failedStep, error: errorMessage(err) }),
      );
    }
    throw err;
  }
}

async function runSteps(
  date: string,
  input: DailyPipelineInput,
  run: RunRef,
  setStep: (step: string) => void,
): Promise<DailyPipelineOutput> {
  const info = workflowInfo();
  setStep('land');
  const land = await landEvents({ date, run });

  let load = await loadDate(date, run, setStep);
  if (patched(RELOAD_MARKED_DATES) && load.facts.needsReload) {
    // lake files of the date were committed while it loaded: load it again, so the run ends with all of them
    load = await loadDate(date, run, (step) => setStep(`reload ${date}: ${step}`));
  }

  setStep('marts');
  const marts = await refreshMarts({ dates: [date, ...load.repointedDates], run });

  setStep('checks');
  const checks = await runChecks({ date, run, scheduled: input.scheduled ?? false });

  let alert: DailyPipelineOutput['alert'];
  const alertStep = async () => {
    if (input.partOfBackfill) {
      alert = { skipped: 'part of a backfill: the backfill posts one summary' };
    } else {
      setStep('alert');
      alert = await sendAlertsSafely({ date, run });
    }
  };
  // a Slack that hangs must not delay the re-load of late dates: alert after them
  const alertAfterReloads = patched(ALERT_AFTER_RELOADS_PATCH);
  if (!alertAfterReloads) await alertStep();

  // late records landed for dates loaded before: re-load each, then refresh the marts of all of them together;
  // so are dates an earlier run marked for re-load (ops.date_loads.needs_reload) but did not get to
  const marked = patched(RELOAD_MARKED_DATES) ? (await listDatesToReload()).dates : [];
  const reloadDates = [...new Set([...(land.reloadDates ?? []), ...marked])].filter((d) => d !== date).sort();
  const reloads: DateLoadResult[] = [];
  for (const reloadDate of reloadDates) {
    reloads.push(await loadDate(reloadDate, run, (step) => setStep(`reload ${reloadDate}: ${step}`)));
  }
  let reloadMarts: DailyPipelineOutput['reloadMarts'];
  if (reloadDates.length > 0) {
    setStep(`reload: marts`);
    const martDates = [...new Set([...reloadDates, ...reloads.flatMap((r) => r.repointedDates)])].sort();
    reloadMarts = await refreshMarts({ dates: martDates, run });
  }
  // a re-loaded date's checks (reconciliation, set-aside rows, …) are run again on what it now holds
  const reloadChecks: NonNullable<DailyPipelineOutput['reloadChecks']> = [];
  if (reloadDates.length > 0 && patched('checks-after-reloads')) {
    for (const reloadDate of reloadDates) {
      setStep(`reload ${reloadDate}: checks`);
      reloadChecks.push(await runChecks({ date: reloadDate, run, scheduled: false }));
      if (!input.partOfBackfill) {
        setStep(`reload ${reloadDate}: alert`);
        await sendAlertsSafely({ date: reloadDate, run });
      }
    }
  }
  if (alertAfterReloads) await alertStep();

  return {
    date,
    workflowId: info.workflowId,
    runId: info.runId,
    status: 'succeeded',
    land,
    load,
    marts,
    checks,
    alert,
    reloads,
    reloadMarts,
    ...(reloadChecks.length > 0 ? { reloadChecks } : {}),
    summary: summarize(land, load, checks),
  };
}

async function loadDate(date: string, run: RunRef, setStep: (step: string) => void): Promise<DateLoadResult> {
  setStep('stage');
  const stage = await stageEvents({ date, run });
  setStep('dimensions');
  const dimensions = await loadDimensions({ date, run });
  setStep('facts');
  const facts = await loadFacts({ date, run });
  // a change slotted into a user's history moves facts of later dates to another version (plan at purchase, …); a
  // version changed in place (an inferred member completed by its signup on this earlier date, keeping its key)
  // changes the plan and country the later dates' facts already point at. Either way the marts those dates got
  // from their own runs lag, and a later date whose run refreshed them before this load is refreshed here again.
  // A retried dimension load may follow an attempt that committed such changes and died before reporting them (a
  // killed worker): it counts as a change, and the refresh skips the later dates whose marts are current.
  const { user } = dimensions;
  const versionsChanged =
    user.factsRepointed > 0 ||
    (user.versionsUpdated + user.versionsDeleted > 0 && patched(MARTS_AFTER_VERSION_CHANGES)) ||
    (dimensions.attempt ?? 1) > 1;
  const repointedDates = versionsChanged ? (await listDatesLoadedAfter({ date })).dates : [];
  return { date, repointedDates, stage, dimensions, facts };
}

/** Slack being down must not fail a load that succeeded: the alert activity records what it could not deliver. */
async function sendAlertsSafely(
  input: Parameters<AllActivities['sendAlerts']>[0],
): Promise<DailyPipelineOutput['alert']> {
  try {
    return await sendAlerts(input);
  } catch (err) {
    if (err instanceof ActivityFailure) return { skipped: `alerting failed: ${errorMessage(err)}` };
    throw err;
  }
}

/** Alerting on the run's outcome never changes it: an alert activity that gave up is ignored (ops.alerts keeps the row). */
async function alertRunOutcomeSafely(input: Parameters<AllActivities['alertRunOutcome']>[0]): Promise<void> {
  try {
    await alertRunOutcome(input);
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
  }
}

/**
 * A run whose id is not `daily-<date>` (the schedule names its runs `<schedule id>-<time>`) starts `daily-<date>`
 * as a child and waits for it, so every load of a date goes through the one id that Temporal keeps unique.
 * When `daily-<date>` is already running (a backfill or a manual run), that run loads the date: this one skips.
 */
async function delegate(date: string, input: DailyPipelineInput, run: RunRef): Promise<DailyPipelineOutput> {
  const childId = dailyWorkflowId(date);
  const base = { date, workflowId: run.workflowId, runId: run.runId, reloads: [], summary: emptySummary() };
  upsertSearchAttributes([
    { key: PIPELINE_DATE, value: date },
    { key: PIPELINE_STEP, value: `delegated to ${childId}` },
  ]);
  try {
    const trigger = input.scheduled ? `scheduled (${run.workflowId})` : `started by ${run.workflowId}`;
    const delegated = await executeChild(dailyPipelineWorkflow, {
      workflowId: childId,
      args: [{ ...input, date }],
      staticSummary: dailyStaticSummary(date, trigger),
      staticDetails: dailyStaticDetails(date, trigger),
      typedSearchAttributes: [{ key: PIPELINE_DATE, value: date }],
    });
    return { ...base, status: 'delegated', delegatedTo: childId, delegated, summary: delegated.summary };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      upsertSearchAttributes([{ key: PIPELINE_STEP, value: `skipped: ${childId} already running` }]);
      return { ...base, status: 'skipped', delegatedTo: childId };
    }
    throw err;
  }
}

/** The date to load: the input's, or the previous UTC day of the (nominal) scheduled start time. */
function resolveDate(input: DailyPipelineInput): string {
  if (input.date !== undefined) {
    const problem = dateProblem(input.date);
    if (problem) {
      throw ApplicationFailure.nonRetryable(
        `dailyPipelineWorkflow: bad date: ${problem}. Start it with a real date, e.g. {"date": "2024-12-17"}`,
        'InvalidInput',
      );
    }
    return input.date;
  }
  const info = workflowInfo();
  // catch-up runs start late: the scheduler's nominal time, not the actual start, says which day is due
  const scheduled = info.typedSearchAttributes.get(SCHEDULED_START_TIME) as Date | string | undefined;
  const at = scheduled !== undefined ? new Date(scheduled) : info.startTime;
  return previousUtcDay(at);
}

function summarize(
  land: DailyPipelineOutput['land'],
  load: DateLoadResult,
  checks: DailyPipelineOutput['checks'],
): DailyPipelineOutput['summary'] {
  return {
    recordsLanded: land?.recordsLanded ?? 0,
    factRows: load.facts.rowsDistinct,
    checks: checkCounts(checks),
  };
}

function scheduledMark(input: DailyPipelineInput): { scheduled?: true } {
  return input.scheduled ? { scheduled: true } : {};
}

function emptySummary(): DailyPipelineOutput['summary'] {
  return { recordsLanded: 0, factRows: 0, checks: {} };
}

function checkCounts(checks: DailyPipelineOutput['checks']): Record<string, number> {
  return Object.fromEntries(Object.entries(checks?.counts ?? {}).filter(([, n]) => n > 0));
}

export function errorMessage(err: unknown): string {
  let e: unknown = err;
  // ActivityFailure / ChildWorkflowFailure wrap the real error as their cause
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}
