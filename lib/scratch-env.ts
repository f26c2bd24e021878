import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTopic, deleteTopic } from './kafka';
import pg from 'pg';
import type { Config } from './config';
import { createDb, createPool, type Db } from '../warehouse/db';
import { migrateToLatest } from '../warehouse/migrate';

/**
 * A throw-away environment on the configured services, for a script that runs real workflows without touching the
 * real warehouse (scripts/record-histories.ts): its own migrated database, Kafka topic, lake folder and task queue.
 */

export interface ScratchEnv {
  config: Config;
  pool: pg.Pool;
  db: Db;
  /** Drops the database and the topic, removes the lake folder. */
  cleanup(): Promise<void>;
}

export function scratchName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export async function createScratchEnv(base: Config, prefix: string, partitions = 4): Promise<ScratchEnv> {
  const database = scratchName(`${prefix}_db`);
  await adminQuery(base.databaseUrl, `create database ${database}`);
  const url = new URL(base.databaseUrl);
  url.pathname = `/${database}`;
  const topic = scratchName(`${prefix}_events`);
  const lakeDir = mkdtempSync(path.join(os.tmpdir(), `${prefix}-lake-`));
  const config: Config = {
    ...base,
    databaseUrl: url.toString(),
    kafkaTopic: topic,
    lakeDir,
    lakeS3: null, // a local scratch lake, whatever LAKE_URL says
    temporalTaskQueue: scratchName(prefix),
  };
  const pool = createPool(config.databaseUrl, 4);
  const db = createDb(pool);
  const cleanup = async () => {
    await db.destroy();
    if (!pool.ended) await pool.end();
    rmSync(lakeDir, { recursive: true, force: true });
    await deleteTopic(base, topic).catch(() => undefined);
    // our own sessions are gone (pool ended); drop waits for nothing else
    await adminQuery(base.databaseUrl, `drop database if exists ${database}`);
  };
  try {
    await migrateToLatest(db);
    await createTopic(base, topic, partitions);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { config, pool, db, cleanup };
}

async function adminQuery(databaseUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
