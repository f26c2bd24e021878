import { EXIT, EXIT_CODES_HELP, parseCommandLine, runCommand } from '../lib/cli';
import { loadConfig } from '../lib/config';
import { createDb, createPool } from '../warehouse/db';
import { configureAnalystRole, migrateToLatest } from '../warehouse/migrate';

/** `nightshift migrate` (`make migrate`, also run by `make up`): applies every pending migration. */

export const HELP = `Apply every pending database migration (idempotent: a second run applies nothing).

usage: nightshift migrate   (make migrate)

${EXIT_CODES_HELP}`;

export async function main(argv: string[]): Promise<number> {
  if (parseCommandLine(argv, {}) === 'help') {
    console.log(HELP);
    return EXIT.ok;
  }
  const config = loadConfig();
  const db = createDb(createPool(config.databaseUrl, 1));
  try {
    const applied = await migrateToLatest(db);
    console.log(applied.length ? `migrated: ${applied.join(', ')}` : 'migrations: up to date');
    if ((await configureAnalystRole(db, config.analystPassword)) === 'unset') {
      console.log(
        'analyst role: ANALYST_PASSWORD is not set, the role cannot log in (set it in .env, then make migrate)',
      );
    } else {
      console.log('analyst role: password set from ANALYST_PASSWORD');
    }
    return EXIT.ok;
  } finally {
    await db.destroy();
  }
}

if (require.main === module) runCommand('migrate', main);
