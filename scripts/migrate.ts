import { loadConfig } from '../lib/config';
import { exitWithError } from '../lib/redact';
import { createDb, createPool } from '../warehouse/db';
import { configureAnalystRole, migrateToLatest } from '../warehouse/migrate';

async function main(): Promise<void> {
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
  } finally {
    await db.destroy();
  }
}

main().catch((err) => exitWithError(err));
