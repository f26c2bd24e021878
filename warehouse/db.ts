import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { redact } from '../lib/redact';
import type { Database } from './database';

// Dates stay 'YYYY-MM-DD' strings and int8 counts become numbers: a day's row count fits easily.
pg.types.setTypeParser(pg.types.builtins.DATE, (value: string) => value);
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));

export type Db = Kysely<Database>;

/**
 * The URL as node-postgres should read it: `sslmode` (and `sslrootcert`, `sslcert`, `sslkey`) mean what they mean to
 * libpq and psql, so one DATABASE_URL behaves the same in both (`require` encrypts without verifying the server,
 * `verify-ca`/`verify-full` verify it against `sslrootcert`). Without it node-postgres treats `require` as
 * `verify-full`.
 */
export function libpqCompatibleUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  if (!url.searchParams.has('sslmode') || url.searchParams.has('uselibpqcompat')) return databaseUrl;
  url.searchParams.set('uselibpqcompat', 'true');
  return url.toString();
}

/** A connection pool for one database URL; the caller owns it and closes it with `pool.end()`. */
export function createPool(databaseUrl: string, max = 4): pg.Pool {
  const pool = new pg.Pool({
    connectionString: libpqCompatibleUrl(databaseUrl),
    max,
    application_name: 'nightshift',
    keepAlive: true,
  });
  // An idle connection closed by the server (restart, dropped database) must not crash the process:
  // the pool discards it and the next query opens a new one.
  pool.on('error', (err) => console.warn(redact(`postgres: idle connection closed: ${err.message}`)));
  // A checked-out client has no pool listener: while an activity holds it (a transaction, a COPY, a lock), a lost
  // connection is emitted as 'error' on the client, which would end the process unhandled. This listener, on every
  // client for its whole life, logs it; the client's pending and later queries reject (a plain, retryable error,
  // so the activity's attempt fails and its retry runs), and the pool discards the client when it is released.
  pool.on('connect', (client) => {
    client.on('error', (err) => console.warn(redact(`postgres: connection lost while in use: ${err.message}`)));
  });
  return pool;
}

/** A Kysely instance over an existing pool (destroying it ends the pool). */
export function createDb(pool: pg.Pool): Db {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/**
 * The fact partitions (fact_events_YYYYMMDD, attached to warehouse.fact_events) that exist among those of `dateKeys`,
 * in the order of `dateKeys`.
 */
export async function factPartitions(client: Pick<pg.ClientBase, 'query'>, dateKeys: number[]): Promise<string[]> {
  const wanted = dateKeys.map((key) => `fact_events_${key}`);
  const { rows } = await client.query<{ name: string }>(
    `select c.relname as name
     from pg_inherits as i
     inner join pg_class as c on c.oid = i.inhrelid
     where i.inhparent = 'warehouse.fact_events'::regclass and c.relname = any($1::text[])`,
    [wanted],
  );
  const found = new Set(rows.map((r) => r.name));
  return wanted.filter((name) => found.has(name));
}

/** The date's fact partition, or null before its first load. */
export async function factPartition(client: Pick<pg.ClientBase, 'query'>, dateKey: number): Promise<string | null> {
  return (await factPartitions(client, [dateKey]))[0] ?? null;
}
