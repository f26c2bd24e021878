import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import type { ActivityDeps, RunRef } from './deps';
import { lockMarts, unlockMarts } from '../lib/locks';
import { recordStep } from '../lib/runs';
import { dateKeyOf } from '../lib/checks';
import { dateProblem } from '../lib/temporal';
import { TABLE_COLUMNS } from '../warehouse/database';

/** Rebuilds the marts of SPEC section 5 from warehouse/marts/*.sql for the dates a run loaded. */

export const MARTS_DIR = path.resolve(__dirname, '..', 'warehouse', 'marts');
export const MARTS_STEP = 'marts';

/** Serializes mart refreshes (a backfill runs several dates at once); a session lock, taken before the snapshot. */

export interface RefreshMartsInput {
  /** The dates the run loaded, YYYY-MM-DD. */
  dates: string[];
  /** When given, each date gets a 'marts' row in ops.pipeline_runs. */
  run?: RunRef;
}

export interface RefreshMartsOutput {
  /** The dates rebuilt. */
  dates: string[];
  /** Dates asked for whose marts were current (nothing they read changed since their last refresh): left as they are. */
  current: string[];
  /** Dates of daily_active_users rebuilt besides `dates`: their new_users changed because an earlier date was loaded. */
  laterDates: string[];
  /** Users whose revenue_per_user rows were rebuilt. */
  usersRefreshed: number;
  /** Rows written per mart. */
  rows: Record<MartName, number>;
  durationMs: number;
}

/** The marts a refresh rebuilds; marts.churn_risk is a view (migration 20261127_0100), always current. */
export type MartName = 'daily_active_users' | 'revenue_daily' | 'funnel_daily' | 'revenue_per_user';

/** The columns each mart's SQL selects, in order: the table's columns but refreshed_at, which defaults to now(). */
const COLUMNS = (mart: MartName): readonly string[] =>
  TABLE_COLUMNS[`marts.${mart}`].filter((column) => column !== 'refreshed_at');

/** The repo's own SQL file, without its trailing semicolon; read once. */
function martSql(name: string): string {
  return readFileSync(path.join(MARTS_DIR, `${name}.sql`), 'utf8')
    .trim()
    .replace(/;\s*$/, '');
}

const SQL = {
  daily_active_users: martSql('daily_active_users'),
  daily_active_users_later_dates: martSql('daily_active_users_later_dates'),
  revenue_daily: martSql('revenue_daily'),
  funnel_daily: martSql('funnel_daily'),
  day_purchases: martSql('day_purchases'),
  touched_users: martSql('touched_users'),
  revenue_per_user: martSql('revenue_per_user'),
};

function insertFrom(mart: MartName): string {
  return `insert into marts.${mart} (${COLUMNS(mart).join(', ')})\n${SQL[mart]}`;
}

/** Validates and de-duplicates the dates, ascending; invalid input is non-retryable. */
export function validDates(dates: unknown): string[] {
  if (!Array.isArray(dates)) {
    throw ApplicationFailure.nonRetryable(
      `refreshMarts: dates must be an array of YYYY-MM-DD, got ${JSON.stringify(dates)}`,
      'InvalidInput',
    );
  }
  for (const d of dates) {
    const problem = dateProblem(d);
    if (problem)
      throw ApplicationFailure.nonRetryable(
        `refreshMarts: bad date: ${problem}; pass dates as YYYY-MM-DD`,
        'InvalidInput',
      );
  }
  return [...new Set(dates as string[])].sort();
}

/** A refresh whose snapshot a load overtook starts again this many times before its activity fails. */
const SERIALIZATION_RETRIES = 5;

/**
 * The whole refresh on one connection, in one repeatable-read transaction (one snapshot for every mart). A load that
 * commits during the refresh and marks one of its dates stale again makes the refresh's clearing of that mark a
 * serialization failure (SQLSTATE 40001): the marts it built predate the load, so it rolls back and starts again
 * from a new snapshot.
 */
export async function refreshMartsOn(
  client: pg.ClientBase,
  dates: string[],
): Promise<Omit<RefreshMartsOutput, 'durationMs'>> {
  await lockMarts(client);
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        return await refreshInOneSnapshot(client, dates);
      } catch (err) {
        if ((err as { code?: string }).code !== '40001' || attempt > SERIALIZATION_RETRIES) throw err;
      }
    }
  } finally {
    await unlockMarts(client).catch(() => undefined);
  }
}

async function refreshInOneSnapshot(
  client: pg.ClientBase,
  dates: string[],
): Promise<Omit<RefreshMartsOutput, 'durationMs'>> {
  await client.query('begin isolation level repeatable read');
  try {
    // no JIT compilation, as in the loads and the checks: at 10M events a day the read of the dates' facts (then
    // day_versions.sql, every page view, cart and purchase by version) passed jit_above_cost, and compiling took
    // longer than it saved (2.96-3.12 s against 3.11-3.52 s with it, day 2, psql, three alternating runs)
    await client.query('set local jit = off');
    // the dates whose marts lag their loads (ops.date_loads.marts_stale, or never refreshed): the others are
    // current, and with none to rebuild nothing the marts read has changed since their last refresh
    const { rows: stale } = await client.query<{ date: string }>(
      `select to_char(wanted.dt, 'YYYY-MM-DD') as date
       from unnest($1::date[]) as wanted(dt)
       left join ops.date_loads as date_loads on date_loads.dt = wanted.dt
       where date_loads.marts_stale is not false
       order by wanted.dt`,
      [dates],
    );
    const current = dates.filter((d) => !stale.some((s) => s.date === d));
    if (stale.length === 0) {
      await client.query('commit');
      return { dates, laterDates: [], usersRefreshed: 0, rows: emptyRows(), current };
    }
    dates = stale.map((s) => s.date);
    const keys = dates.map(dateKeyOf);
    const later = await client.query<{ date: string }>(SQL.daily_active_users_later_dates, [keys]);
    const laterDates = later.rows.map((r) => r.date);
    const dauDates = [...dates, ...laterDates];

    const rows = {} as Record<MartName, number>;
    await client.query('delete from marts.daily_active_users where date = any($1::date[])', [dauDates]);
    rows.daily_active_users =
      (await client.query(insertFrom('daily_active_users'), [dauDates.map(dateKeyOf)])).rowCount ?? 0;

    // the dates' purchases per dim_user version and currency, for revenue_daily (on commit drop)
    await client.query(`create temp table day_purchases on commit drop as ${SQL.day_purchases}`, [keys]);

    await client.query('delete from marts.revenue_daily where date = any($1::date[])', [dates]);
    rows.revenue_daily = (await client.query(insertFrom('revenue_daily'))).rowCount ?? 0;

    await client.query('delete from marts.funnel_daily where date = any($1::date[])', [dates]);
    rows.funnel_daily = (await client.query(insertFrom('funnel_daily'), [keys])).rowCount ?? 0;

    // the users whose revenue_per_user rows may change, kept for the delete and the insert (on commit drop)
    const touched = await client.query(`create temp table touched_users on commit drop as ${SQL.touched_users}`, [
      keys,
    ]);
    // analyzed, so that the delete is planned on its real size: unanalyzed, a temp table is taken for a few hundred
    // rows, and the delete probed revenue_per_user's primary key once per touched user, 0.46-0.83 s for 265k of them
    // on day 2 of 10M events, against 0.16 s for the hash join chosen on the real count. With real counts on both
    // sides the planner weighs probes against a read of the whole mart as it grows
    await client.query('analyze touched_users');
    await client.query('delete from marts.revenue_per_user where user_id in (select user_id from touched_users)');
    rows.revenue_per_user = (await client.query(insertFrom('revenue_per_user'))).rowCount ?? 0;

    // rows locked in date order, as the dimension load marks them, so the two never deadlock
    await client.query(
      `update ops.date_loads set marts_stale = false
       where dt in (select dt from ops.date_loads where dt = any($1::date[]) order by dt for update)`,
      [dates],
    );
    await client.query('commit');
    return { dates, laterDates, usersRefreshed: touched.rowCount ?? 0, rows, current };
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}

export function createMartActivities({ pool, db }: ActivityDeps) {
  return {
    /**
     * Refreshes every mart for the dates a run loaded, in one transaction: date-grained marts (daily_active_users,
     * revenue_daily, funnel_daily) are deleted and rebuilt for those dates (daily_active_users also for later dates
     * whose new users moved); revenue_per_user is rebuilt for the users who bought or changed attributes on those dates; churn_risk is a
     * view, current whenever it is read. Idempotent: the same dates give the same rows.
     */
    async refreshMarts(input: RefreshMartsInput): Promise<RefreshMartsOutput> {
      const dates = validDates(input?.dates);
      const started = Date.now();
      const keys = input.run ? dates.map((date) => ({ ...input.run!, date, step: MARTS_STEP })) : [];
      return recordStep(
        db,
        keys,
        async () => {
          const client = await pool.connect();
          let result: Omit<RefreshMartsOutput, 'durationMs'>;
          try {
            result = dates.length
              ? await refreshMartsOn(client, dates)
              : { dates, laterDates: [], usersRefreshed: 0, rows: emptyRows(), current: [] };
          } finally {
            client.release();
          }
          return { ...result, durationMs: Date.now() - started };
        },
        (output) => ({
          rowsInserted: Object.values(output.rows).reduce((a, b) => a + b, 0),
          details: {
            ...output.rows,
            laterDates: output.laterDates,
            ...(output.current.length ? { current: output.current } : {}),
            usersRefreshed: output.usersRefreshed,
            durationMs: output.durationMs,
          },
        }),
      );
    },
  };
}

function emptyRows(): Record<MartName, number> {
  return { daily_active_users: 0, revenue_daily: 0, funnel_daily: 0, revenue_per_user: 0 };
}
