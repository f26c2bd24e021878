import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { type Config, loadConfig } from '../lib/config';
import { createTopic, deleteTopic, type KafkaConnection } from '../lib/kafka';
import { createDb, createPool, type Db } from '../warehouse/db';

/** Test isolation: every test gets its own database, Kafka topic, lake folder and task queue. */

/** Set by test/global-setup.ts: the migrated template database of this test run. */
export const TEMPLATE_DATABASE_ENV = 'NIGHTSHIFT_TEST_TEMPLATE';

function templateDatabase(): string {
  const name = process.env[TEMPLATE_DATABASE_ENV];
  if (!name)
    throw new Error(`${TEMPLATE_DATABASE_ENV} is not set: run tests through vitest (test/global-setup.ts builds it)`);
  return name;
}

/** The configured analyst password (ANALYST_PASSWORD, which `make migrate` sets on the role). */
export function analystPassword(): string {
  const password = loadConfig().analystPassword;
  if (!password) throw new Error('ANALYST_PASSWORD is not set: set it in .env (see .env.example) and run make migrate');
  return password;
}

export function databaseUrlFor(baseUrl: string, database: string): string {
  const url = new URL(baseUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export interface TestEnv {
  config: Config;
  pool: pg.Pool;
  db: Db;
  /** Drops the database, the topic and the lake folder. */
  cleanup(): Promise<void>;
}

/** A migrated database cloned from the template, a fresh topic with `partitions` partitions, and a temp lake. */
export async function createTestEnv(
  options: { partitions?: number; topic?: boolean; kafka?: KafkaConnection } = {},
): Promise<TestEnv> {
  const base = { ...loadConfig(), ...options.kafka };
  const database = uniqueName('ns_test');
  const admin = new pg.Client({ connectionString: base.databaseUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${database} template ${templateDatabase()}`);
  } finally {
    await admin.end();
  }
  const topic = uniqueName('events_test');
  if (options.topic !== false) await createTopic(base, topic, options.partitions ?? 4);
  const lakeDir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-lake-'));
  const config: Config = {
    ...base,
    databaseUrl: databaseUrlFor(base.databaseUrl, database),
    kafkaTopic: topic,
    lakeDir,
    temporalTaskQueue: uniqueName('nightshift_test'),
    // a test's output shows problems, not every activity
    logLevel: 'warn',
  };
  const pool = createPool(config.databaseUrl, 4);
  const db = createDb(pool);
  return {
    config,
    pool,
    db,
    async cleanup() {
      await db.destroy();
      // Kysely ends the pool only if it ever used it.
      if (!pool.ended) await pool.end();
      rmSync(lakeDir, { recursive: true, force: true });
      if (options.topic !== false) await deleteTopic(base, topic).catch(() => undefined);
      await dropDatabase(base.databaseUrl, database);
    },
  };
}

/**
 * Drops a test database. `WITH (FORCE)` is not used: as a non-superuser it cannot end an
 * autovacuum worker and fails; instead our own sessions are ended and a plain DROP, which waits
 * for autovacuum to let go, is retried briefly.
 */
export async function dropDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      await client.query(
        `select pg_terminate_backend(pid) from pg_stat_activity
         where datname = $1 and pid <> pg_backend_pid() and usename = current_user`,
        [database],
      );
      try {
        await client.query(`drop database if exists ${client.escapeIdentifier(database)}`);
        return;
      } catch (err) {
        // 55006: the database is being accessed by other users (a session still closing, autovacuum).
        if ((err as { code?: string }).code !== '55006' || attempt >= 10) throw err;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  } finally {
    await client.end();
  }
}
