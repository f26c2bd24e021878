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
  const pool = new pg.Pool({ connectionString: libpqCompatibleUrl(databaseUrl), max, application_name: 'nightshift' });
  // An idle connection closed by the server (restart, dropped database) must not crash the process:
  // the pool discards it and the next query opens a new one.
  pool.on('error', (err) => console.warn(redact(`postgres: idle connection closed: ${err.message}`)));
  return pool;
}

/** A Kysely instance over an existing pool (destroying it ends the pool). */
export function createDb(pool: pg.Pool): Db {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
