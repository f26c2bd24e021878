import pg from 'pg';
import { loadConfig } from '../lib/config';
import { createDb, createPool } from '../warehouse/db';
import { migrateToLatest } from '../warehouse/migrate';
import { databaseUrlFor, dropDatabase, TEMPLATE_DATABASE_ENV, uniqueName } from './support';

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: loadConfig().databaseUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Builds a migrated template database once per test run (named per run, so two runs at once
 * never drop each other's template); each test clones it. Dropped again at the end of the run.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const template = uniqueName('ns_template');
  await admin((client) => client.query(`create database ${template}`));
  const db = createDb(createPool(databaseUrlFor(loadConfig().databaseUrl, template), 1));
  try {
    // roles are shared by every database of the server: another run migrating at the same moment (a second
    // checkout's suite) can make 0001's role statements fail with "tuple concurrently updated"; the migration
    // is one transaction, so it is simply run again
    for (let attempt = 1; ; attempt++) {
      try {
        await migrateToLatest(db);
        break;
      } catch (err) {
        if (!/tuple concurrently updated/.test(String((err as { cause?: unknown }).cause ?? err)) || attempt >= 5)
          throw err;
      }
    }
  } finally {
    await db.destroy();
  }
  process.env[TEMPLATE_DATABASE_ENV] = template;
  return async () => {
    await dropDatabase(loadConfig().databaseUrl, template);
  };
}
