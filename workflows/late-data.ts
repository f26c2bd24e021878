import { ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { SCHEDULED_START_TIME, dateProblem, previousUtcDay } from '../lib/temporal';

/** Reading ops and posting at most one Slack message: short, retried with backoff. */
const { checkLateData } = proxyActivities<Activities>({
  startToCloseTimeout: '3 minutes',
  retry: {
    initialInterval: '10 seconds',
    backoffCoefficient: 2,
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['InvalidInput'],
  },
});

export interface LateDataInput {
  /** UTC time of day HH:MM by which the previous UTC day must be loaded. */
  deadline: string;
  /** The date to check; default the previous UTC day of the scheduled time. */
  date?: string;
}

/**
 * Run by its own schedule at the deadline: if the previous UTC day is not loaded, one "late" Slack message says so
 * and what its state is (running on a step, failed, never started). Grain: one date; idempotent (one message per
 * date, ever), so re-runs and catch-ups stay quiet.
 */
export async function lateDataWorkflow(
  input: LateDataInput,
): Promise<Awaited<ReturnType<Activities['checkLateData']>>> {
  const info = workflowInfo();
  if (!/^\d{2}:\d{2}$/.test(input?.deadline ?? '')) {
    throw ApplicationFailure.nonRetryable(
      `lateDataWorkflow: bad deadline ${JSON.stringify(input?.deadline)}: pass a UTC time of day HH:MM, e.g. {"deadline": "06:00"}`,
      'InvalidInput',
    );
  }
  let date = input.date;
  if (date === undefined) {
    const scheduled = info.typedSearchAttributes.get(SCHEDULED_START_TIME) as Date | string | undefined;
    date = previousUtcDay(scheduled !== undefined ? new Date(scheduled) : info.startTime);
  }
  const problem = dateProblem(date);
  if (problem) throw ApplicationFailure.nonRetryable(`lateDataWorkflow: bad date: ${problem}`, 'InvalidInput');
  return checkLateData({ date, deadline: input.deadline, run: { workflowId: info.workflowId, runId: info.runId } });
}
