import { type Client, ScheduleNotFoundError, ScheduleOverlapPolicy, type ScheduleOptions } from '@temporalio/client';
import { type Config, loadConfig } from '../lib/config';
import { LATE_DATA_SCHEDULE_ID, deleteLateDataSchedule, upsertLateDataSchedule } from '../lib/late-data';
import { closeClient, connectClient } from '../lib/temporal-client';
import { DAILY_SCHEDULE_ID, DEFAULT_CRON } from '../lib/temporal';
import { dailyPipelineWorkflow } from '../workflows';

/**
 * `make schedule [CRON='0 2 * * *']` creates or updates the Temporal Schedule of the daily pipeline;
 * `make unschedule` deletes it. Each run loads the previous UTC day of its scheduled time.
 */

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
  const handle = client.schedule.getHandle(scheduleId);
  try {
    await handle.describe();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
    await client.schedule.create(options);
    return 'created';
  }
  await handle.update((previous) => ({
    ...previous,
    spec: options.spec,
    action: options.action,
    policies: options.policies,
  }));
  return 'updated';
}

/** Deletes the schedule; false when there was none. Runs it already started are left alone. */
export async function deleteSchedule(client: Client, scheduleId: string = DAILY_SCHEDULE_ID): Promise<boolean> {
  try {
    await client.schedule.getHandle(scheduleId).delete();
    return true;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}

function parseArgs(argv: string[]): { command: 'create' | 'delete'; cron?: string } {
  const [command, ...rest] = argv;
  if (command !== 'create' && command !== 'delete') {
    throw new UsageError(
      `usage: scripts/schedule.ts create [--cron '0 2 * * *'] | delete (got ${JSON.stringify(command ?? '')})`,
    );
  }
  let cron: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const m = /^--cron(?:=(.*))?$/.exec(rest[i]);
    if (!m || command !== 'create') throw new UsageError(`unknown argument ${JSON.stringify(rest[i])}`);
    cron = m[1] ?? rest[++i];
  }
  if (cron !== undefined) {
    const problem = cronProblem(cron);
    if (problem) throw new UsageError(problem);
  }
  return { command, cron };
}

class UsageError extends Error {}

async function main(): Promise<number> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`schedule: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const config = loadConfig();
  const client = await connectClient(config);
  try {
    if (args.command === 'create') {
      const cron = args.cron ?? DEFAULT_CRON;
      const what = await upsertSchedule(client, config, { cron });
      console.log(
        `${what} schedule ${DAILY_SCHEDULE_ID}: cron '${cron}' UTC -> dailyPipelineWorkflow for the previous UTC day, ` +
          `task queue ${config.temporalTaskQueue}, no overlap (BUFFER_ALL), catch-up window ${CATCHUP_WINDOW}`,
      );
      console.log(
        `see it: ${config.temporalUiUrl}/namespaces/${config.temporalNamespace}/schedules/${DAILY_SCHEDULE_ID}`,
      );
      const late = await upsertLateDataSchedule(client, config);
      console.log(
        `${late} schedule ${LATE_DATA_SCHEDULE_ID}: at ${config.lateDataDeadline} UTC (LATE_DATA_DEADLINE), one Slack message when the previous UTC day is not loaded`,
      );
    } else {
      const deleted = await deleteSchedule(client);
      console.log(deleted ? `deleted schedule ${DAILY_SCHEDULE_ID}` : `no schedule ${DAILY_SCHEDULE_ID} to delete`);
      const lateDeleted = await deleteLateDataSchedule(client);
      console.log(
        lateDeleted ? `deleted schedule ${LATE_DATA_SCHEDULE_ID}` : `no schedule ${LATE_DATA_SCHEDULE_ID} to delete`,
      );
    }
    return 0;
  } finally {
    await closeClient(client);
  }
}

if (require.main === module) {
  main()
    .then((code) => process.exit(code))
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
