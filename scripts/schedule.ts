import { EXIT, EXIT_CODES_HELP, UsageError, parseCommandLine, runCommand } from '../lib/cli';
import { loadConfig } from '../lib/config';
import { LATE_DATA_SCHEDULE_ID, deleteLateDataSchedule, upsertLateDataSchedule } from '../lib/late-data';
import { CATCHUP_WINDOW, cronProblem, deleteSchedule, upsertSchedule } from '../lib/schedule';
import { closeClient, connectClient } from '../lib/temporal-client';
import { DAILY_SCHEDULE_ID, DEFAULT_CRON } from '../lib/temporal';

/**
 * `nightshift schedule create [--cron '0 2 * * *']` (`make schedule`) creates or updates the Temporal Schedule of the daily pipeline;
 * `nightshift schedule delete` (`make unschedule`) deletes it. Each run loads the previous UTC day of its scheduled time.
 */

export const HELP = `Create, update or delete the Temporal Schedule of the daily pipeline (and the late-data one, at LATE_DATA_DEADLINE).

usage: nightshift schedule create [--cron '0 2 * * *']   (make schedule [CRON='0 2 * * *'])
       nightshift schedule delete                      (make unschedule)

  create        create the schedule, or update it in place (idempotent); each run loads the previous UTC day
  --cron EXPR   five-field cron, UTC (default '${DEFAULT_CRON}')
  delete        delete the schedule; runs it already started are left alone

${EXIT_CODES_HELP}`;

function parseScheduleArgs(argv: string[]): { command: 'create' | 'delete'; cron?: string } | null {
  const parsed = parseCommandLine(argv, { cron: { type: 'string' } }, { positionals: true });
  if (parsed === 'help') return null;
  const [command, ...rest] = parsed.positionals;
  if (command !== 'create' && command !== 'delete') {
    throw new UsageError(`give create or delete, not ${JSON.stringify(command ?? '')}`);
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  const { cron } = parsed.values;
  if (cron !== undefined) {
    if (command !== 'create') throw new UsageError('--cron goes with create');
    const problem = cronProblem(cron);
    if (problem) throw new UsageError(problem);
  }
  return { command, cron };
}

export async function main(argv: string[]): Promise<number> {
  const args = parseScheduleArgs(argv);
  if (args === null) {
    console.log(HELP);
    return EXIT.ok;
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
    return EXIT.ok;
  } finally {
    await closeClient(client);
  }
}

if (require.main === module) runCommand('schedule', main);
