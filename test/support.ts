import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { type Config, loadConfig, readEnvironment } from '../lib/config';
import { createTopic, deleteTopic, type KafkaConnection } from '../lib/kafka';
import { lakeOf, type LakeS3, type LakeStore } from '../lib/lake-store';
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

/** The lakes the landing, stage and load suites run against: a local folder and the local stack's S3 server. */
export const LAKE_KINDS = ['file', 's3'] as const;
export type LakeKind = (typeof LAKE_KINDS)[number];

/**
 * The S3 lake of the local stack (scripts/stack/up.sh: versitygw on 127.0.0.1:9000, bucket nightshift-lake, its
 * development credentials), under its own key prefix; AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
 * and NIGHTSHIFT_TEST_S3_BUCKET point the tests at another S3 server.
 */
export function testS3Lake(prefix: string, endpoint?: string): { lakeDir: string; lakeS3: LakeS3 } {
  const env = readEnvironment();
  const bucket = env.NIGHTSHIFT_TEST_S3_BUCKET || 'nightshift-lake';
  const config = loadConfig({
    ...env,
    LAKE_URL: `s3://${bucket}/${prefix}`,
    AWS_ENDPOINT_URL_S3: endpoint ?? (env.AWS_ENDPOINT_URL_S3 || 'http://127.0.0.1:9000'),
    AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID || 'nightshift',
    AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY || 'nightshift-local-secret',
  });
  return { lakeDir: config.lakeDir, lakeS3: config.lakeS3 as LakeS3 };
}

/** A fresh, empty lake of the given kind, and how to remove it. */
export function testLake(
  kind: LakeKind,
  s3Endpoint?: string,
): { lakeDir: string; lakeS3: LakeS3 | null; remove(): Promise<void> } {
  if (kind === 's3') {
    const lake = testS3Lake(uniqueName('test'), s3Endpoint);
    return {
      ...lake,
      async remove() {
        const store = lakeOf(lake);
        await store.remove(await store.list(''));
      },
    };
  }
  const lakeDir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-lake-'));
  return { lakeDir, lakeS3: null, remove: async () => rmSync(lakeDir, { recursive: true, force: true }) };
}

/** The lake's store of a test's configuration. */
export function lakeOfEnv(e: { config: Config }): LakeStore {
  return lakeOf(e.config);
}

/** Every file under the lake's areas, relative to the lake's root (temp files included). */
export async function lakeFiles(e: { config: Config }): Promise<string[]> {
  const store = lakeOf(e.config);
  return [...(await store.list('events/')), ...(await store.list('dead_letter/'))].sort();
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
  options: { partitions?: number; topic?: boolean; kafka?: KafkaConnection; lake?: LakeKind; s3Endpoint?: string } = {},
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
  const lake = testLake(options.lake ?? 'file', options.s3Endpoint);
  const config: Config = {
    ...base,
    databaseUrl: databaseUrlFor(base.databaseUrl, database),
    kafkaTopic: topic,
    lakeDir: lake.lakeDir,
    lakeS3: lake.lakeS3,
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
      await lake.remove();
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

/**
 * The real pool, counting the connections taken from it and not yet released (`held`) and the most held at once
 * (`most`, reset by the caller); while `refuse` is set, a connection asked for while another is held fails.
 */
export function countingPool(real: pg.Pool): { pool: pg.Pool; held: number; most: number; refuse: boolean } {
  const counts = { pool: Object.create(real) as pg.Pool, held: 0, most: 0, refuse: false };
  counts.pool.connect = (async () => {
    if (counts.refuse && counts.held > 0) throw new Error('no connection for you');
    counts.held++;
    counts.most = Math.max(counts.most, counts.held);
    const client = await real.connect();
    const release = client.release.bind(client);
    client.release = (err?: Error | boolean) => {
      counts.held--;
      release(err);
    };
    return client;
  }) as pg.Pool['connect'];
  return counts;
}
