import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { type Config, loadConfig } from '../lib/config';
import { createDb, createPool, type Db } from '../warehouse/db';

/** Test isolation: every test gets its own database, Kafka topic, lake folder and task queue. */

/** Set by test/global-setup.ts: the migrated template database of this test run. */
export const TEMPLATE_DATABASE_ENV = 'NIGHTSHIFT_TEST_TEMPLATE';

function templateDatabase(): string {
  const name = process.env[TEMPLATE_DATABASE_ENV];
  if (!name) throw new Error(`${TEMPLATE_DATABASE_ENV} is not set: run tests through vitest (test/global-setup.ts builds it)`);
  return name;
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
export async function createTestEnv(options: { partitions?: number; topic?: boolean } = {}): Promise<TestEnv> {
  const base = loadConfig();
  const database = uniqueName('ns_test');
  const admin = new pg.Client({ connectionString: base.databaseUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${database} template ${templateDatabase()}`);
  } finally {
    await admin.end();
  }
  const topic = uniqueName('events_test');
  if (options.topic !== false) await createTopic(base.kafkaBrokers, topic, options.partitions ?? 4);
  const lakeDir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-lake-'));
  const config: Config = {
    ...base,
    databaseUrl: databaseUrlFor(base.databaseUrl, database),
    kafkaTopic: topic,
    lakeDir,
    temporalTaskQueue: uniqueName('nightshift_test'),
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
      if (options.topic !== false) await deleteTopic(base.kafkaBrokers, topic).catch(() => undefined);
      const c = new pg.Client({ connectionString: base.databaseUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists ${database} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

export async function createTopic(brokers: string[], topic: string, partitions: number): Promise<void> {
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

export async function deleteTopic(brokers: string[], topic: string): Promise<void> {
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [topic] });
  } finally {
    await admin.disconnect();
  }
}
