import type pg from 'pg';
import { addDays } from './temporal';

/**
 * Every PostgreSQL advisory lock of Nightshift, in one place. Keys are (class, object) int pairs: the class is a
 * hash of a fixed name, the object the date as YYYYMMDD (0 for a lock without an object), so two dates can never
 * collide on one lock. The landing lock alone uses the one-key form, hashtext of its name and the topic.
 *
 * - The date lock keeps two loads of the same date from interleaving: every load step takes it, in its own
 *   transaction, and holds it until that transaction ends.
 * - The dim_user lock serializes dim_user rebuilds (exclusive) against each other and against fact loads (shared):
 *   two dates can touch the same user, and a fact load must not assign user_keys from a dim_user a concurrent
 *   rebuild is about to change.
 * - The midnight locks keep the fact loads of two neighbouring dates from deciding at once which of them keeps an
 *   event_id sent again across their midnight (warehouse/sql/fact_events_cross_date.sql): one per midnight, its
 *   object the later date. A fact load takes the two around its date, in date order, and holds them until it
 *   commits, so the second load of a pair looks for the event_ids after the first one's facts are committed.
 *   Without them both loads could look while neither had committed, and both keep the event.
 * - The marts lock (session) serializes mart refreshes: two runs' refreshes would otherwise rebuild the same rolling
 *   figures from different snapshots.
 * - The alert-decision lock (transaction) keeps two alert steps from deciding on the same fingerprint at once; the
 *   alert-delivery lock (session) lets one deliverer post pending messages, so none is posted twice.
 * - The landing lock of a topic (session) lets one landing at a time touch the lake and the offsets.
 */

const DATE_LOCK_CLASS = 'nightshift:load';
const DIM_USER_LOCK_CLASS = 'nightshift:dim_user';
const MIDNIGHT_LOCK_CLASS = 'nightshift:midnight';
const MARTS_LOCK_CLASS = 'nightshift:marts';
const ALERTS_LOCK_CLASS = 'nightshift:alerts';
const DELIVERY_LOCK_CLASS = 'nightshift:alerts-delivery';
const LANDING_LOCK_PREFIX = 'nightshift:land:';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** The date as the lock's object id, e.g. 20241217; throws on anything but YYYY-MM-DD. */
export function dateLockId(date: string): number {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) {
    throw new Error(`invalid date ${JSON.stringify(date)}: expected YYYY-MM-DD`);
  }
  return Number(date.replaceAll('-', ''));
}

/** Waits for the date lock and holds it until the current transaction ends. Call inside BEGIN … COMMIT. */
export async function lockDate(client: Queryable, date: string): Promise<void> {
  await client.query('select pg_advisory_xact_lock(hashtext($1), $2)', [DATE_LOCK_CLASS, dateLockId(date)]);
}

/** Takes the date lock only if it is free; false when another load of the date holds it. Inside a transaction. */
export async function tryLockDate(client: Queryable, date: string): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>(
    'select pg_try_advisory_xact_lock(hashtext($1), $2) as locked',
    [DATE_LOCK_CLASS, dateLockId(date)],
  );
  return rows[0].locked;
}

/** Exclusive dim_user lock, for a rebuild of user versions; held until the transaction ends. */
export async function lockDimUserExclusive(client: Queryable): Promise<void> {
  await client.query('select pg_advisory_xact_lock(hashtext($1), 0)', [DIM_USER_LOCK_CLASS]);
}

/** Shared dim_user lock, for a step that reads user versions to assign user_keys; held until the transaction ends. */
export async function lockDimUserShared(client: Queryable): Promise<void> {
  await client.query('select pg_advisory_xact_lock_shared(hashtext($1), 0)', [DIM_USER_LOCK_CLASS]);
}

/**
 * The midnight locks before and after the date, earlier first (so that loads of a run of dates cannot deadlock),
 * held until the transaction ends: for a fact load, before it looks for the date's event_ids under its neighbours.
 */
export async function lockMidnights(client: Queryable, date: string): Promise<void> {
  for (const midnight of [date, addDays(date, 1)]) {
    await client.query('select pg_advisory_xact_lock(hashtext($1), $2)', [MIDNIGHT_LOCK_CLASS, dateLockId(midnight)]);
  }
}

/** True when some session holds the date lock right now (for status displays; racy by nature). */
export async function isDateLocked(client: Queryable, date: string): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>(
    `select exists (
       select from pg_locks
       where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database())
         and classid = (hashtext($1)::bigint & 4294967295)::oid and objid = $2::bigint::oid and objsubid = 2
     ) as locked`,
    [DATE_LOCK_CLASS, dateLockId(date)],
  );
  return rows[0].locked;
}

/**
 * Runs `fn` in one transaction on its own connection while holding the date lock: the helper for any step that
 * must not interleave with a load of the same date. Commits when `fn` resolves, rolls back when it throws.
 */
export async function withDateLock<T>(
  pool: pg.Pool,
  date: string,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  dateLockId(date);
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('begin');
    await lockDate(client, date);
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch((e: Error) => (broken = e));
    throw err;
  } finally {
    client.release(broken); // a connection that cannot roll back is discarded, not reused
  }
}

/** Waits for the marts lock and holds it for the session: release with `unlockMarts`. */
export async function lockMarts(client: Queryable): Promise<void> {
  await client.query('select pg_advisory_lock(hashtext($1), 0)', [MARTS_LOCK_CLASS]);
}

export async function unlockMarts(client: Queryable): Promise<void> {
  await client.query('select pg_advisory_unlock(hashtext($1), 0)', [MARTS_LOCK_CLASS]);
}

/** The alert-decision lock, held until the current transaction ends. Call inside BEGIN … COMMIT. */
export async function lockAlertDecisions(client: Queryable): Promise<void> {
  await client.query('select pg_advisory_xact_lock(hashtext($1), 0)', [ALERTS_LOCK_CLASS]);
}

/** Waits for the alert-delivery lock and holds it for the session: release with `unlockAlertDelivery`. */
export async function lockAlertDelivery(client: Queryable): Promise<void> {
  await client.query('select pg_advisory_lock(hashtext($1), 0)', [DELIVERY_LOCK_CLASS]);
}

export async function unlockAlertDelivery(client: Queryable): Promise<void> {
  await client.query('select pg_advisory_unlock(hashtext($1), 0)', [DELIVERY_LOCK_CLASS]);
}

/** Takes the landing lock of `topic` for the session if it is free; false when another landing holds it. */
export async function tryLockLanding(client: Queryable, topic: string): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock(hashtext($1)) as locked', [
    LANDING_LOCK_PREFIX + topic,
  ]);
  return rows[0].locked;
}

export async function unlockLanding(client: Queryable, topic: string): Promise<void> {
  await client.query('select pg_advisory_unlock(hashtext($1))', [LANDING_LOCK_PREFIX + topic]);
}
