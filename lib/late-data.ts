import { type Client, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Config } from './config';
import { createOrUpdateSchedule, deleteScheduleIfExists } from './temporal-client';
import { addDays } from './temporal';

/**
 * Late data (SPEC section 6): the previous UTC day must be loaded by LATE_DATA_DEADLINE (default 06:00 UTC). A
 * Temporal Schedule of its own (`nightshift-late-data`, created and deleted with the daily one by `make schedule` /
 * `make unschedule`) runs lateDataWorkflow at the deadline, so lateness is reported even when the daily schedule is
 * paused, deleted or its run never started.
 */

export const LATE_DATA_SCHEDULE_ID = 'nightshift-late-data';

/** What ops.pipeline_runs says about a date. */
export interface DateState {
  status: 'loaded' | 'running' | 'failed' | 'never-started';
  workflowId?: string;
  runId?: string;
  /** The step it runs or failed on. */
  step?: string;
  error?: string;
}

export function describeLateness(state: DateState): string {
  switch (state.status) {
    case 'never-started':
      return 'never started: no run of the date is recorded (is the schedule paused, or the worker down?)';
    case 'running':
      return `still running${state.step ? ` on step ${state.step}` : ''} (${state.workflowId})`;
    case 'failed':
      return `failed${state.step ? ` at step ${state.step}` : ''}${state.error ? `: ${state.error}` : ''} (${state.workflowId})`;
    default:
      return 'loaded';
  }
}

/** True when `now` is at or after the deadline for `date`: HH:MM UTC on the following day. */
export function isPastDeadline(date: string, deadline: string, now: Date): boolean {
  return now.getTime() >= Date.parse(`${addDays(date, 1)}T${deadline}:00Z`);
}

/** The five-field cron of a HH:MM time of day. */
export function deadlineCron(deadline: string): string {
  const [h, m] = deadline.split(':').map(Number);
  return `${m} ${h} * * *`;
}

/** Creates or updates the late-data schedule (idempotent). The deadline travels in the workflow's input. */
export async function upsertLateDataSchedule(
  client: Client,
  config: Pick<Config, 'temporalTaskQueue' | 'lateDataDeadline'>,
  scheduleId: string = LATE_DATA_SCHEDULE_ID,
): Promise<'created' | 'updated'> {
  const options = {
    scheduleId,
    spec: { cronExpressions: [deadlineCron(config.lateDataDeadline)], timezone: 'UTC' },
    action: {
      type: 'startWorkflow' as const,
      workflowType: 'lateDataWorkflow',
      args: [{ deadline: config.lateDataDeadline }],
      taskQueue: config.temporalTaskQueue,
      workflowId: scheduleId,
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day', pauseOnFailure: false },
  };
  return createOrUpdateSchedule(client, options);
}

export async function deleteLateDataSchedule(
  client: Client,
  scheduleId: string = LATE_DATA_SCHEDULE_ID,
): Promise<boolean> {
  return deleteScheduleIfExists(client, scheduleId);
}
