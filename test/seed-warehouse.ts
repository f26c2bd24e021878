import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { ensureFactPartition, refreshUserActivity } from '../activities/facts';
import { addDays, dateRange } from '../lib/temporal';

/**
 * A generated warehouse for the marts, checks and alerts tests: users with SCD2 versions (plan changes inside the
 * range), daily sessions with funnels (page_view → add_to_cart → purchase, plus a few out-of-order users), users
 * who stop coming back, and the ops rows a healthy load leaves (lake manifest, date loads, successful runs).
 * Rows are inserted set-based from one JSON document per table.
 */

export interface SeedOptions {
  start: string;
  days: number;
  users: number;
  seed?: number;
  /** Share of users who stop being active at a random day of the range (default 0.3). */
  churn?: number;
  /** Every user joined before the range (steady daily volume, for the checks); default false. */
  steady?: boolean;
  /** Dead-lettered records per date as a share of landed ones (default 0.002). */
  deadLetterRatio?: number;
}

export interface SeededVersion {
  user_key: number;
  user_id: string;
  email: string;
  plan: string;
  country: string;
  valid_from: string;
  valid_to: string | null;
  is_current: boolean;
}

export interface SeededFact {
  event_id: string;
  event_time: string;
  date_key: number;
  user_key: number;
  device_key: number;
  event_type: string;
  session_id: string;
  page: string | null;
  country: string;
  order_id: string | null;
  product_id: string | null;
  amount: number | null;
  currency: string | null;
  lake_file_id: number;
  source_offset: number;
}

export interface Seeded {
  dates: string[];
  versions: SeededVersion[];
  facts: SeededFact[];
  /** lake_file_id of each date's events file. */
  lakeFileIds: Record<string, number>;
}

/** mulberry32: a small deterministic PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PLANS = ['free', 'pro', 'enterprise'];
const COUNTRIES = ['US', 'DE', 'FR', 'BR'];
const dayMs = 86_400_000;

export function dateKey(date: string): number {
  return Number(date.replaceAll('-', ''));
}

function at(date: string, seconds: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + seconds * 1000).toISOString();
}

/** Generates the rows (no database). */
export function generate(
  options: SeedOptions,
): Omit<Seeded, 'lakeFileIds'> & { lakeFileIndex: Record<string, number> } {
  const random = rng(options.seed ?? 42);
  const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)];
  const dates = dateRange(options.start, addDays(options.start, options.days - 1));
  const lakeFileIndex = Object.fromEntries(dates.map((d, i) => [d, i + 1]));
  const versions: SeededVersion[] = [];
  const facts: SeededFact[] = [];
  let userKey = 1000;
  let offset = 0;
  const rangeStart = Date.parse(`${options.start}T00:00:00Z`);

  for (let u = 0; u < options.users; u++) {
    const userId = `user-${String(u).padStart(5, '0')}`;
    const country = pick(COUNTRIES);
    const first = { plan: pick(PLANS), country, email: `${userId}@example.com` };
    // joined before the range or on one of its days; some change plan (and country) once inside the range
    const joinedAt =
      rangeStart + Math.floor((options.steady ? -random() * 0.5 - 0.01 : random() * 1.5 - 0.5) * options.days * dayMs);
    const changeAt =
      random() < 0.35
        ? Math.max(joinedAt, rangeStart) + Math.floor(random() * options.days * dayMs * 0.8) + 3_600_000
        : null;
    const own: SeededVersion[] = [];
    const k1 = userKey++;
    own.push({
      user_key: k1,
      user_id: userId,
      ...first,
      valid_from: new Date(joinedAt).toISOString(),
      valid_to: null,
      is_current: true,
    });
    if (changeAt !== null && changeAt < rangeStart + options.days * dayMs) {
      own[0].valid_to = new Date(changeAt).toISOString();
      own[0].is_current = false;
      const plan = PLANS.filter((p) => p !== first.plan)[Math.floor(random() * 2)];
      own.push({
        user_key: userKey++,
        user_id: userId,
        email: first.email,
        plan,
        country: random() < 0.3 ? pick(COUNTRIES) : country,
        valid_from: new Date(changeAt).toISOString(),
        valid_to: null,
        is_current: true,
      });
    }
    versions.push(...own);
    const versionAt = (iso: string) => {
      const t = Date.parse(iso);
      return own.find((v) => Date.parse(v.valid_from) <= t && (v.valid_to === null || t < Date.parse(v.valid_to)));
    };
    const stopDay = random() < (options.churn ?? 0.3) ? Math.floor(random() * options.days) : options.days;
    for (let d = 0; d < Math.min(stopDay + 1, options.days); d++) {
      const date = dates[d];
      if (random() > 0.7) continue;
      const add = (type: string, seconds: number, extra: Partial<SeededFact> = {}) => {
        const eventTime = at(date, seconds);
        const version = versionAt(eventTime);
        if (!version) return; // before the user joined
        facts.push({
          event_id: randomUUID(),
          event_time: eventTime,
          date_key: dateKey(date),
          user_key: version.user_key,
          device_key: 0,
          event_type: type,
          session_id: `${userId}-${date}`,
          page: type === 'page_view' ? `/p/${Math.floor(random() * 20)}` : null,
          country: version.country,
          order_id: null,
          product_id: null,
          amount: null,
          currency: null,
          lake_file_id: lakeFileIndex[date],
          source_offset: offset++,
          ...extra,
        });
      };
      let t = Math.floor(random() * 80_000);
      const next = () => (t = Math.min(86_399, t + 1 + Math.floor(random() * 600)));
      add('session_start', t);
      const shape = random();
      if (shape < 0.05) {
        add('add_to_cart', next()); // a cart without a page view: not in the funnel
        continue;
      }
      const views = 1 + Math.floor(random() * 3);
      for (let i = 0; i < views; i++) add('page_view', next());
      if (random() < 0.45) {
        add('add_to_cart', next());
        if (random() < 0.55) {
          const amount = Math.round((5 + random() * 200) * 100) / 100;
          const currency = random() < 0.15 ? 'EUR' : 'USD';
          const orderId = `o-${offset}`;
          add('purchase', next(), {
            order_id: orderId,
            product_id: `sku-${Math.floor(random() * 50)}`,
            amount,
            currency,
          });
        }
      } else if (random() < 0.03) {
        add('purchase', next(), { order_id: `o-${offset}`, product_id: 'sku-1', amount: 9.99, currency: 'USD' });
      }
    }
  }
  // one late-evening event per date, so every date's data reaches its last hour
  const keeper = versions.find((v) => v.is_current && Date.parse(v.valid_from) < rangeStart && v.valid_to === null);
  if (keeper) {
    for (const date of dates) {
      facts.push({
        event_id: randomUUID(),
        event_time: at(date, 23 * 3600 + 1800),
        date_key: dateKey(date),
        user_key: keeper.user_key,
        device_key: 0,
        event_type: 'session_start',
        session_id: `${keeper.user_id}-${date}-late`,
        page: null,
        country: keeper.country,
        order_id: null,
        product_id: null,
        amount: null,
        currency: null,
        lake_file_id: lakeFileIndex[date],
        source_offset: offset++,
      });
    }
  }
  return { dates, versions, facts, lakeFileIndex };
}

/** Inserts generated rows: dim_user, fact_events, and the ops rows of a healthy load of every date. */
export async function seedWarehouse(pool: pg.Pool, options: SeedOptions): Promise<Seeded> {
  const g = generate(options);
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query(
      `insert into warehouse.dim_user (user_key, user_id, email, plan, country, valid_from, valid_to, is_current)
       select r.user_key, r.user_id, r.email, r.plan, r.country, r.valid_from, r.valid_to, r.is_current
       from jsonb_to_recordset($1::jsonb)
           as r (user_key bigint, user_id text, email text, plan text, country text, valid_from timestamptz, valid_to timestamptz, is_current boolean)`,
      [JSON.stringify(g.versions)],
    );
    const { rows: landing } = await client.query<{ landing_id: string }>(
      `insert into ops.landings (topic, started_at, records_read, records_landed, records_dead_lettered)
       values ('events', now(), 0, 0, 0) returning landing_id`,
    );
    const lakeFileIds: Record<string, number> = {};
    for (const date of g.dates) {
      const n = g.facts.filter((f) => f.date_key === dateKey(date)).length;
      const { rows } = await client.query<{ lake_file_id: string }>(
        `insert into ops.lake_files (landing_id, path, area, dt, topic, partition, first_offset, last_offset, row_count, bytes)
         values ($1, $2, 'events', $3::date, 'events', 0, 0, $4, $5, 1000) returning lake_file_id`,
        [landing[0].landing_id, `events/dt=${date}/p0-seed.parquet`, date, Math.max(n - 1, 0), Math.max(n, 1)],
      );
      lakeFileIds[date] = Number(rows[0].lake_file_id);
      const dead = Math.floor(n * (options.deadLetterRatio ?? 0.002));
      if (dead > 0) {
        await client.query(
          `insert into ops.lake_files (landing_id, path, area, dt, topic, partition, first_offset, last_offset, row_count, bytes)
           values ($1, $2, 'dead_letter', $3::date, 'events', 0, 0, $4, $5, 100)`,
          [landing[0].landing_id, `dead_letter/dt=${date}/p0-seed.parquet`, date, dead - 1, dead],
        );
      }
      await client.query(
        `insert into ops.date_loads (dt, first_loaded_at, last_loaded_at) values ($1::date, now(), now())`,
        [date],
      );
      await client.query(
        `insert into ops.pipeline_runs (workflow_id, run_id, dt, step, status, finished_at)
         values ($1, $2, $3::date, 'pipeline', 'succeeded', now())`,
        [`daily-${date}`, `seed-${date}`, date],
      );
    }
    for (const f of g.facts) f.lake_file_id = lakeFileIds[dateOfKey(f.date_key)];
    await insertFacts(client, g.facts);
    await client.query('commit');
    return { dates: g.dates, versions: g.versions, facts: g.facts, lakeFileIds };
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export function dateOfKey(key: number): string {
  const s = String(key);
  return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}`;
}

/**
 * Set-based insert of fact rows (chunks of 20 000), into the partitions of their dates (created when missing),
 * then the dates' user activity rows, as a fact load keeps them. Given a pool, it runs in a transaction of its own.
 */
export async function insertFacts(target: pg.Pool | pg.ClientBase, facts: SeededFact[]): Promise<void> {
  if (target instanceof pg.Pool) return inTransaction(target, (client) => insertFacts(client, facts));
  const client = target;
  const dateKeys = [...new Set(facts.map((f) => f.date_key))].sort();
  for (const key of dateKeys) await ensureFactPartition(client, key);
  for (let i = 0; i < facts.length; i += 20_000) {
    await client.query(
      `insert into warehouse.fact_events (event_id, event_time, date_key, user_key, device_key, event_type, session_id, page,
           country, order_id, product_id, amount, currency, lake_file_id, source_offset)
       select r.event_id, r.event_time, r.date_key, r.user_key, r.device_key, r.event_type, r.session_id, r.page,
           r.country, r.order_id, r.product_id, r.amount, r.currency, r.lake_file_id, r.source_offset
       from jsonb_to_recordset($1::jsonb) as r (event_id uuid, event_time timestamptz, date_key int, user_key bigint,
           device_key int, event_type text, session_id text, page text, country text, order_id text, product_id text,
           amount numeric, currency text, lake_file_id bigint, source_offset bigint)`,
      [JSON.stringify(facts.slice(i, i + 20_000))],
    );
  }
  for (const key of dateKeys) await refreshUserActivity(client, dateOfKey(key));
}

/** Rewrites a date's user activity rows after a test changed its facts directly, as a fact load would. */
export async function refreshDateActivity(pool: pg.Pool, date: string): Promise<void> {
  await inTransaction(pool, (client) => refreshUserActivity(client, date));
}

async function inTransaction(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<void>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await fn(client);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback');
    throw err;
  } finally {
    client.release();
  }
}

/**
 * env.cleanup() ends the pool through Kysely, which only ends it once Kysely has used it; a test that touched the
 * pool alone would leave idle clients that the forced DROP DATABASE then kills with an uncaught error.
 */
export async function cleanupEnv(env: { db: Kysely<any>; cleanup(): Promise<void> } | undefined): Promise<void> {
  if (!env) return;
  await sql`select 1`.execute(env.db);
  await env.cleanup();
}
