import { loadConfig } from '../lib/config';
import { exitWithError } from '../lib/redact';
import { CATCHUP_WINDOW, cronProblem, deleteSchedule, upsertSchedule } from '../lib/schedule';
import { closeClient, connectClient } from '../lib/temporal-client';
import { DAILY_SCHEDULE_ID, DEFAULT_CRON } from '../lib/temporal';

/**
 * `make schedule [CRON='0 2 * * *']` creates or updates the Temporal Schedule of the daily pipeline (lib/schedule.ts);
 * `make unschedule` deletes it.
 */

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
    } else {
      const deleted = await deleteSchedule(client);
      console.log(deleted ? `deleted schedule ${DAILY_SCHEDULE_ID}` : `no schedule ${DAILY_SCHEDULE_ID} to delete`);
    }
    return 0;
  } finally {
    await closeClient(client);
  }
}

if (require.main === module) {
  main()
    .then((code) => process.exit(code))
    .catch((err) => exitWithError(err));
}
