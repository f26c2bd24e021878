import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../../lib/config';
import { createTopic, deleteTopic } from '../../lib/kafka';
import { lakeOf, withPrefix } from '../../lib/lake-store';
import { createDb, createPool, type Db } from '../../warehouse/db';
import { migrateToLatest } from '../../warehouse/migrate';

/** One isolated benchmark environment: a fresh migrated database, a fresh topic, a lake folder of its own. */
export interface BenchEnv {
  name: string;
  config: Config;
  pool: pg.Pool;
  db: Db;
  /** Drops the database and the topic and removes the lake, unless `keep`. */
  cleanup(keep: boolean): Promise<void>;
}

export function benchName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(2).toString('hex')}`;
}

function databaseUrlFor(baseUrl: string, database: string): string {
  const url = new URL(baseUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function adminQuery(baseUrl: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** Creates `nightshift_bench_<ts>` (migrated to latest), a topic of `partitions` partitions and `<dir>/lake`. */
export async function createBenchEnv(
  base: Config,
  dir: string,
  options: { partitions: number; poolSize?: number },
): Promise<BenchEnv> {
  const name = benchName('nightshift_bench');
  await adminQuery(base.databaseUrl, `create database ${name}`);
  const topic = name.replace(/_/g, '-');
  await createTopic(base, topic, options.partitions);
  // the configured lake's kind: a folder under the bench's folder, or the bench's own prefix under LAKE_URL
  const lake =
    base.lakeS3 === null ? { lakeDir: path.resolve(dir, name, 'lake'), lakeS3: null } : withPrefix(base.lakeS3, name);
  if (lake.lakeS3 === null) mkdirSync(lake.lakeDir, { recursive: true });
  const config: Config = {
    ...base,
    databaseUrl: databaseUrlFor(base.databaseUrl, name),
    kafkaTopic: topic,
    ...lake,
    slackWebhookUrl: null,
  };
  const pool = createPool(config.databaseUrl, options.poolSize ?? 8);
  const db = createDb(pool);
  await migrateToLatest(db);
  return {
    name,
    config,
    pool,
    db,
    async cleanup(keep) {
      await db.destroy();
      if (keep) return;
      rmSync(path.resolve(dir, name), { recursive: true, force: true });
      if (lake.lakeS3 !== null) {
        const store = lakeOf(lake);
        await store.remove(await store.list(''));
      }
      await deleteTopic(base, topic).catch((err: unknown) =>
        console.error(`bench: could not delete topic ${topic}: ${String(err)}`),
      );
      // plain DROP (as scripts/measure-load.ts): WITH (FORCE) may not stop autovacuum workers for a non-superuser
      for (let attempt = 1; ; attempt++) {
        try {
          await adminQuery(base.databaseUrl, `drop database if exists ${name}`);
          return;
        } catch (err) {
          if (attempt >= 10) throw new Error(`could not drop database ${name}: drop it by hand`, { cause: err });
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    },
  };
}
