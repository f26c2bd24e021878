import { type Client, ScheduleOverlapPolicy, type ScheduleOptions } from '@temporalio/client';
import type { Config } from './config';
import { createOrUpdateSchedule, deleteScheduleIfExists } from './temporal-client';
import { DAILY_SCHEDULE_ID, DEFAULT_CRON } from './temporal';
import { dailyPipelineWorkflow } from '../workflows';

/** The Temporal Schedule of the daily pipeline: each run loads the previous UTC day of its scheduled time. */

export interface ScheduleArgs {
  scheduleId?: string;
  /** Five-field cron, UTC. */
  cron?: string;
}

/** Missed runs (server down, schedule paused) within this window are caught up when the server is back. */
export const CATCHUP_WINDOW = '7 days';

const CRON_FIELD = /^[\d*,\-/]+$/;

/** Why a cron expression is not a plain five-field UTC cron, or null. The server validates the rest. */
export function cronProblem(cron: string): string | null {
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5 || !fields.every((f) => CRON_FIELD.test(f))) {
    return `CRON=${JSON.stringify(cron)} is not a five-field cron expression (minute hour day month weekday, UTC), e.g. '0 2 * * *'`;
  }
  return null;
}

function scheduleOptions(config: Config, scheduleId: string, cron: string): ScheduleOptions {
  return {
    scheduleId,
    spec: { cronExpressions: [cron], timezone: 'UTC' },
    action: {
      type: 'startWorkflow',
      workflowType: dailyPipelineWorkflow,
      // no date: each run derives the previous UTC day from its scheduled time (TemporalScheduledStartTime)
      args: [{ scheduled: true }],
      taskQueue: config.temporalTaskQueue,
      // the scheduler appends the scheduled time; the run then delegates the load to `daily-<date>`
      workflowId: scheduleId,
      staticSummary: 'Daily pipeline · scheduled, for the previous UTC day (hands the date to daily-<date>)',
    },
    policies: {
      // runs never overlap, and runs missed while the server was down are all taken, one after another
      overlap: ScheduleOverlapPolicy.BUFFER_ALL,
      catchupWindow: CATCHUP_WINDOW,
      pauseOnFailure: false,
    },
  };
}

/** Creates the schedule, or updates it in place when it exists (idempotent). Returns what it did. */
export async function upsertSchedule(
  client: Client,
  config: Config,
  args: ScheduleArgs = {},
): Promise<'created' | 'updated'> {
  const scheduleId = args.scheduleId ?? DAILY_SCHEDULE_ID;
  const cron = args.cron ?? DEFAULT_CRON;
  const problem = cronProblem(cron);
  if (problem) throw new Error(problem);
  const options = scheduleOptions(config, scheduleId, cron);
  return createOrUpdateSchedule(client, options);
}

/** Deletes the schedule; false when there was none. Runs it already started are left alone. */
export async function deleteSchedule(client: Client, scheduleId: string = DAILY_SCHEDULE_ID): Promise<boolean> {
  return deleteScheduleIfExists(client, scheduleId);
}
