import { loadConfig } from '../lib/config';
import { createDb, createPool } from '../warehouse/db';
import { migrateToLatest } from '../warehouse/migrate';

async function main(): Promise<void> {
  const config = loadConfig();
  const db = createDb(createPool(config.databaseUrl, 1));
  try {
    const applied = await migrateToLatest(db);
    console.log(applied.length ? `migrated: ${applied.join(', ')}` : 'migrations: up to date');
  } finally {
    await db.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
