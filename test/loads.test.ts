import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createCheckActivities } from '../activities/checks';
import { createDimensionActivities } from '../activities/dimensions';
import { createFactActivities, type LoadFactsOutput, refreshUserActivity } from '../activities/facts';
import { createStageActivities } from '../activities/stage';
import { createLandActivities } from '../activities/land';
import { createMartActivities } from '../activities/marts';
import { EventSender } from '../lib/kafka';
import { isDateLocked, tryLockDate, withDateLock } from '../lib/locks';
import { DQ_DEFAULTS } from '../lib/checks';
import type { RawEventV1 } from '../lib/events';
import { createPool } from '../warehouse/db';
import { countingPool, createTestEnv, LAKE_KINDS, type LakeKind, type TestEnv } from './support';
import { until } from './temporal-support';

/** Warehouse loads (issue 4): staging by COPY, SCD2 users, dimensions, idempotent fact upserts, late data. */

// ---------------------------------------------------------------------------------------------
// A small hand-written event builder: realistic v1 events, one user at a time.

type Plan = 'free' | 'pro' | 'enterprise';

interface Attributes {
  email: string;
  plan: Plan;
  country: string;
}

const DEVICES = [
  { type: 'desktop', os: 'macOS', browser: 'Safari' },
  { type: 'mobile', os: 'Android', browser: 'Chrome' },
  { type: 'tablet', os: 'iPadOS' },
] as const;

function event(
  type: RawEventV1['event_type'],
  userId: string,
  time: string,
  extra: Partial<RawEventV1> = {},
): RawEventV1 {
  return {
    schema_version: 'v1',
    event_id: randomUUID(),
    event_type: type,
    event_time: time,
    user_id: userId,
    session_id: `s-${userId}-${time.slice(0, 13)}`,
    device: DEVICES[userId.length % DEVICES.length],
    context: { country: 'DE', page: '/home', referrer: 'https://example.com/' },
    ...extra,
  };
}

const signup = (userId: string, time: string, user: Attributes) => event('user_signup', userId, time, { user });
const planChange = (userId: string, time: string, user: Attributes) => event('plan_change', userId, time, { user });
const profileUpdate = (userId: string, time: string, user: Attributes) =>
  event('profile_update', userId, time, { user });
const pageView = (userId: string, time: string, page = '/pricing') =>
  event('page_view', userId, time, { context: { country: 'DE', page, referrer: 'https://example.com/' } });
const purchase = (userId: string, time: string, amount: number) =>
  event('purchase', userId, time, {
    purchase: { order_id: `o-${randomUUID().slice(0, 8)}`, product_id: 'p-42', amount, currency: 'EUR' },
  });

// ---------------------------------------------------------------------------------------------
// Feeding the lake

interface LoadFeed {
  /** Lands the events (in the given order) in the lake: each call is one landing. */
  send(events: RawEventV1[]): Promise<void>;
}

/** The real landing path: JSON records produced to the test's topic (keyed by user_id), then landEvents. */
async function landingFeed(env: TestEnv): Promise<LoadFeed & { close(): Promise<void> }> {
  const land = createLandActivities({ config: env.config, pool: env.pool, db: env.db });
  return {
    async send(events) {
      const producer = EventSender.connect(env.config, env.config.kafkaTopic);
      for (const e of events) await producer.send(Buffer.from(e.user_id), Buffer.from(JSON.stringify(e)));
      await producer.close();
      const landed = await land.landEvents({});
      expect(landed).toMatchObject({
        recordsRead: events.length,
        recordsLanded: events.length,
        recordsDeadLettered: 0,
      });
    },
    close: () => Promise.resolve(),
  };
}

// ---------------------------------------------------------------------------------------------
// Loading and reading back

const run = { workflowId: 'test-loads', runId: 'run-1' };

function loader(env: TestEnv) {
  const deps = { config: env.config, pool: env.pool, db: env.db };
  const stage = createStageActivities(deps);
  const dims = createDimensionActivities(deps);
  const facts = createFactActivities(deps);
  let runs = 0;
  return async (date: string) => {
    const input = { date, run: { ...run, runId: `run-${++runs}` } };
    const staged = await stage.stageEvents(input);
    const dimensions = await dims.loadDimensions(input);
    const loaded = await facts.loadFacts(input);
    return { staged, dimensions, loaded };
  };
}

/** The stage, dimension and fact activities on the test database, for tests that run the steps one by one. */
function loadSteps(env: TestEnv) {
  const deps = { config: env.config, pool: env.pool, db: env.db };
  return {
    stage: createStageActivities(deps),
    dims: createDimensionActivities(deps),
    facts: createFactActivities(deps),
  };
}

/** md5 of every row of the three tables, in key order, all columns (loaded_at and surrogate keys included). */
async function tableHashes(env: TestEnv) {
  const { rows } = await env.pool.query(`
    select
      (select md5(string_agg(u::text, '|' order by u.user_key)) from warehouse.dim_user as u) as dim_user,
      (select md5(string_agg(d::text, '|' order by d.device_key)) from warehouse.dim_device as d) as dim_device,
      (select md5(string_agg(f::text, '|' order by f.event_id)) from warehouse.fact_events as f) as fact_events,
      (select md5(string_agg(a::text, '|' order by a.date_key, a.user_id)) from warehouse.user_days as a) as user_days,
      (select md5(string_agg(a::text, '|' order by a.user_id)) from warehouse.user_activity as a) as user_activity,
      (select count(*)::int from warehouse.fact_events) as facts`);
  return rows[0];
}

/** dim_user and the facts' versions by natural content, free of surrogate numbers. */
async function naturalContent(env: TestEnv) {
  const users = await env.pool.query(`
    select user_id, valid_from, valid_to, email, plan, country, is_current, is_inferred, source_event_id
    from warehouse.dim_user
    order by user_id, valid_from`);
  const facts = await env.pool.query(`
    select f.event_id, u.user_id, u.valid_from
    from warehouse.fact_events as f
    left join warehouse.dim_user as u on u.user_key = f.user_key
    order by f.event_id`);
  return { users: users.rows, facts: facts.rows };
}

async function versionsOf(env: TestEnv, userId: string) {
  const { rows } = await env.pool.query(
    `select user_key, plan, email, country, valid_from, valid_to, is_current, is_inferred
     from warehouse.dim_user where user_id = $1 order by valid_from`,
    [userId],
  );
  return rows;
}

async function integrity(env: TestEnv) {
  // the activity rows the fact loads keep, recomputed from every fact (the loads refresh only their own date)
  const { rows } = await env.pool.query(`
    with facts as materialized (
      select f.date_key, u.user_id, f.event_time, f.event_type, f.currency, f.amount
      from warehouse.fact_events f join warehouse.dim_user u on u.user_key = f.user_key
    ),
    user_days_now as (
      select date_key, user_id, count(*)::int as events,
        count(*) filter (where event_type in ('user_signup', 'profile_update', 'plan_change'))::int as attribute_events,
        min(event_time) as first_event_at, max(event_time) as last_event_at,
        count(*) filter (where event_type = 'page_view')::int as page_views,
        count(*) filter (where event_type = 'add_to_cart')::int as add_to_carts,
        count(*) filter (where event_type = 'purchase')::int as purchases
      from facts group by 1, 2
    ),
    purchase_days_now as (
      select date_key, user_id, coalesce(currency, 'XXX')::char(3) as currency, count(*)::int as orders,
        coalesce(sum(amount), 0)::numeric(16, 2) as revenue, min(event_time) as first_purchase_at, max(event_time) as last_purchase_at
      from facts where event_type = 'purchase' group by 1, 2, 3
    ),
    date_totals_now as (
      select date_key, count(*)::bigint as events, count(distinct user_id)::int as users from facts group by 1
    ),
    activity_now as (
      select user_id,
        (array_agg(date_key order by event_time))[1] as first_date_key, min(event_time) as first_event_at,
        (array_agg(date_key order by event_time desc))[1] as last_date_key, max(event_time) as last_event_at
      from facts group by 1
    )
    select
      (select count(*)::int from warehouse.fact_events f where not exists (select from warehouse.dim_user u where u.user_key = f.user_key)) as orphan_users,
      (select count(*)::int from warehouse.fact_events f where not exists (select from warehouse.dim_device d where d.device_key = f.device_key)) as orphan_devices,
      (select count(*)::int from warehouse.fact_events f join warehouse.dim_user u on u.user_key = f.user_key
        where f.event_time < u.valid_from or f.event_time >= coalesce(u.valid_to, 'infinity')) as facts_outside_version,
      (select count(*)::int from (
        select user_id from warehouse.dim_user group by user_id having count(*) filter (where is_current) <> 1) x) as users_without_one_current,
      (select count(*)::int from (
        select valid_to, lead(valid_from) over (partition by user_id order by valid_from) as next_from
        from warehouse.dim_user) x
        where x.next_from is not null and x.valid_to is distinct from x.next_from) as gaps_or_overlaps,
      (select count(*)::int from (
        (select * from user_days_now except select * from warehouse.user_days)
        union all (select * from warehouse.user_days except select * from user_days_now)) x) as user_days_drift,
      (select count(*)::int from (
        (select * from purchase_days_now except select * from warehouse.user_purchase_days)
        union all (select * from warehouse.user_purchase_days except select * from purchase_days_now)) x) as purchase_days_drift,
      (select count(*)::int from (
        (select * from activity_now except select * from warehouse.user_activity)
        union all (select * from warehouse.user_activity except select * from activity_now)) x) as user_activity_drift,
      (select count(*)::int from (
        (select * from date_totals_now except select * from warehouse.date_totals)
        union all (select * from warehouse.date_totals except select * from date_totals_now)) x) as date_totals_drift`);
  return rows[0];
}

const CLEAN = {
  orphan_users: 0,
  orphan_devices: 0,
  facts_outside_version: 0,
  users_without_one_current: 0,
  gaps_or_overlaps: 0,
  user_days_drift: 0,
  purchase_days_drift: 0,
  date_totals_drift: 0,
  user_activity_drift: 0,
};

// ---------------------------------------------------------------------------------------------

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

/**
 * env.cleanup() drops the database WITH (FORCE), which a non-superuser cannot use while an autovacuum worker
 * (run as the bootstrap superuser) is busy on it, as it often is after a load: retry until the worker is done.
 */
async function dropWhenAutovacuumDone(env: TestEnv): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await env.cleanup();
    } catch (err) {
      if ((err as { code?: string }).code !== '42501' || attempt >= 30) throw err;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

async function setup(lake: LakeKind): Promise<{ env: TestEnv; feed: LoadFeed; load: ReturnType<typeof loader> }> {
  const env = await createTestEnv({ partitions: 2, lake });
  const feed = await landingFeed(env);
  cleanups.push(async () => {
    await feed.close();
    await dropWhenAutovacuumDone(env);
  });
  return { env, feed, load: loader(env) };
}

const alice: Attributes = { email: 'alice@example.com', plan: 'free', country: 'DE' };

/** A day with several users, devices, a plan change, purchases and one duplicated record. */
function busyDay(date: string): RawEventV1[] {
  const events: RawEventV1[] = [];
  for (let i = 0; i < 20; i++) {
    const user = `user-${i}`;
    const attrs: Attributes = { email: `${user}@example.com`, plan: 'free', country: i % 2 ? 'FR' : 'DE' };
    events.push(signup(user, `${date}T0${i % 10}:00:00.000Z`, attrs));
    events.push(pageView(user, `${date}T1${i % 10}:00:00.000Z`));
    if (i % 3 === 0) events.push(planChange(user, `${date}T1${i % 10}:30:00.000Z`, { ...attrs, plan: 'pro' }));
    if (i % 2 === 0) events.push(purchase(user, `${date}T2${i % 4}:15:00.123456Z`, 19.99 + i));
  }
  events.push({
    ...pageView('anonymous-1', `${date}T12:00:00Z`),
    device: undefined,
    context: undefined,
    session_id: undefined,
  });
  return events;
}

describe.each(LAKE_KINDS)('warehouse loads (%s lake)', (lake) => {
  it('loading a date twice, or ten times, leaves byte-identical dim_user, dim_device and fact_events', async () => {
    const { env, feed, load } = await setup(lake);
    const day = busyDay('2024-12-17');
    await feed.send([...day, day[3]]); // one record landed twice
    const first = await load('2024-12-17');
    expect(first.loaded.rowsInserted).toBe(day.length);
    const micros = await env.pool.query(
      `select distinct to_char(event_time at time zone 'UTC', 'US') as us from warehouse.fact_events where event_type = 'purchase'`,
    );
    expect(micros.rows).toEqual([{ us: '123456' }]); // microseconds survive Parquet and COPY
    // the date's first load built its own partition, attached to fact_events with its primary key and the parent's user_key index
    const partitions = await env.pool.query(
      `select c.relname, (select array_agg(i.indexrelid::regclass::text order by 1) from pg_index i where i.indrelid = c.oid) as indexes
       from pg_inherits h join pg_class c on c.oid = h.inhrelid where h.inhparent = 'warehouse.fact_events'::regclass`,
    );
    expect(partitions.rows).toEqual([
      {
        relname: 'fact_events_20241217',
        indexes: ['warehouse.fact_events_20241217_pkey', 'warehouse.fact_events_20241217_user_key'],
      },
    ]);
    const after1 = await tableHashes(env);
    const second = await load('2024-12-17');
    expect(await tableHashes(env)).toEqual(after1);
    expect(second.loaded).toMatchObject({ rowsInserted: 0, rowsUpdated: 0, rowsUnchanged: day.length });
    expect(second.dimensions.user).toMatchObject({
      versionsInserted: 0,
      versionsUpdated: 0,
      versionsDeleted: 0,
      factsRepointed: 0,
    });
    expect(second.dimensions.device.devicesInserted).toBe(0);
    for (let i = 0; i < 8; i++) await load('2024-12-17');
    expect(await tableHashes(env)).toEqual(after1);
    expect(await integrity(env)).toEqual(CLEAN);
    const { rows } = await env.pool.query(
      `select step, status, rows_read, rows_inserted, rows_updated, rows_unchanged from ops.pipeline_runs where run_id = 'run-2' order by step`,
    );
    // a re-load with nothing new stages nothing (every lake file is loaded), so no user is touched; the facts step
    // still reports the date's records and facts, all unchanged
    expect(rows).toEqual([
      { step: 'dimensions', status: 'succeeded', rows_read: 0, rows_inserted: 0, rows_updated: 0, rows_unchanged: 0 },
      {
        step: 'facts',
        status: 'succeeded',
        rows_read: day.length + 1,
        rows_inserted: 0,
        rows_updated: 0,
        rows_unchanged: day.length,
      },
      {
        step: 'stage',
        status: 'succeeded',
        rows_read: 0,
        rows_inserted: 0,
        rows_updated: null,
        rows_unchanged: null,
      },
    ]);
    const { rows: loads } = await env.pool.query(
      `select needs_reload, first_loaded_at < last_loaded_at as reloaded from ops.date_loads`,
    );
    expect(loads).toEqual([{ needs_reload: false, reloaded: true }]);
  });

  it('a user who goes free -> pro -> enterprise -> pro over three days has four contiguous versions, purchases at the plan of their time', async () => {
    const { env, feed, load } = await setup(lake);
    const u = 'alice';
    await feed.send([signup(u, '2024-12-01T09:00:00Z', alice), purchase(u, '2024-12-01T10:00:00Z', 10)]);
    await load('2024-12-01');
    await feed.send([
      planChange(u, '2024-12-02T08:00:00Z', { ...alice, plan: 'pro' }),
      purchase(u, '2024-12-02T12:00:00Z', 20),
    ]);
    await load('2024-12-02');
    await feed.send([
      purchase(u, '2024-12-03T05:59:59.999999Z', 30),
      planChange(u, '2024-12-03T06:00:00Z', { ...alice, plan: 'enterprise' }),
      purchase(u, '2024-12-03T07:00:00Z', 40),
      planChange(u, '2024-12-03T15:00:00+01:00', { ...alice, plan: 'pro' }),
      purchase(u, '2024-12-03T16:00:00Z', 50),
    ]);
    await load('2024-12-03');

    const versions = await versionsOf(env, u);
    expect(versions.map((v) => v.plan)).toEqual(['free', 'pro', 'enterprise', 'pro']);
    expect(versions.map((v) => [v.valid_from.toISOString(), v.valid_to?.toISOString() ?? null, v.is_current])).toEqual([
      ['2024-12-01T09:00:00.000Z', '2024-12-02T08:00:00.000Z', false],
      ['2024-12-02T08:00:00.000Z', '2024-12-03T06:00:00.000Z', false],
      ['2024-12-03T06:00:00.000Z', '2024-12-03T14:00:00.000Z', false],
      ['2024-12-03T14:00:00.000Z', null, true],
    ]);
    const { rows } = await env.pool.query(`
      select f.amount::float as amount, u.plan
      from warehouse.fact_events f join warehouse.dim_user u on u.user_key = f.user_key
      where f.event_type = 'purchase' order by f.event_time`);
    expect(rows).toEqual([
      { amount: 10, plan: 'free' },
      { amount: 20, plan: 'pro' },
      { amount: 30, plan: 'pro' },
      { amount: 40, plan: 'enterprise' },
      { amount: 50, plan: 'pro' },
    ]);
    expect(await integrity(env)).toEqual(CLEAN);
  });

  it('the same changes fed in reverse order end in the same dim_user rows and fact versions as in order', async () => {
    const days: Record<string, RawEventV1[]> = {
      '2024-12-01': [
        signup('alice', '2024-12-01T09:00:00Z', alice),
        purchase('alice', '2024-12-01T10:00:00Z', 10),
        signup('bob', '2024-12-01T11:00:00Z', { email: 'bob@example.com', plan: 'pro', country: 'US' }),
        pageView('carol', '2024-12-01T23:00:00Z'),
      ],
      '2024-12-02': [
        planChange('alice', '2024-12-02T08:00:00Z', { ...alice, plan: 'pro' }),
        purchase('alice', '2024-12-02T12:00:00Z', 20),
        // bob changes nothing but his email, then back: three versions
        profileUpdate('bob', '2024-12-02T09:00:00Z', { email: 'bob@new.example.com', plan: 'pro', country: 'US' }),
        profileUpdate('bob', '2024-12-02T09:30:00Z', { email: 'bob@new.example.com', plan: 'pro', country: 'US' }),
        purchase('bob', '2024-12-02T10:00:00Z', 99),
        signup('carol', '2024-12-02T07:00:00Z', { email: 'carol@example.com', plan: 'free', country: 'NL' }),
      ],
      '2024-12-03': [
        planChange('alice', '2024-12-03T06:00:00Z', { ...alice, plan: 'enterprise' }),
        purchase('alice', '2024-12-03T07:00:00Z', 40),
        planChange('alice', '2024-12-03T14:00:00Z', { ...alice, plan: 'pro' }),
        purchase('alice', '2024-12-03T16:00:00Z', 50),
        profileUpdate('bob', '2024-12-03T09:00:00Z', { email: 'bob@example.com', plan: 'pro', country: 'US' }),
        // two changes at one instant: the later event_id wins
        planChange('carol', '2024-12-03T10:00:00Z', { email: 'carol@example.com', plan: 'pro', country: 'NL' }),
        planChange('carol', '2024-12-03T10:00:00Z', { email: 'carol@example.com', plan: 'enterprise', country: 'NL' }),
        purchase('carol', '2024-12-03T11:00:00Z', 7),
      ],
    };
    const results = [];
    for (const order of [
      ['2024-12-01', '2024-12-02', '2024-12-03'],
      ['2024-12-03', '2024-12-02', '2024-12-01'],
      ['2024-12-02', '2024-12-03', '2024-12-01', '2024-12-02'],
    ]) {
      const { env, feed, load } = await setup(lake);
      for (const date of order) {
        await feed.send(days[date]);
        await load(date);
        expect(await integrity(env)).toEqual(CLEAN);
      }
      results.push(await naturalContent(env));
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    expect(results[0].users.filter((u) => u.user_id === 'alice').map((u) => u.plan)).toEqual([
      'free',
      'pro',
      'enterprise',
      'pro',
    ]);
    expect(results[0].users.filter((u) => u.user_id === 'bob').map((u) => u.email)).toEqual([
      'bob@example.com',
      'bob@new.example.com',
      'bob@example.com',
    ]);
    const carol = results[0].users.filter((u) => u.user_id === 'carol');
    expect(carol.map((u) => [u.plan, u.is_inferred, u.valid_from.toISOString()])).toEqual([
      ['free', false, '2024-12-01T23:00:00.000Z'],
      [expect.any(String), false, '2024-12-03T10:00:00.000Z'],
    ]);
  });

  it('a purchase that arrives before its user signs up points at an inferred member, completed when the signup loads', async () => {
    const { env, feed, load } = await setup(lake);
    await feed.send([purchase('dave', '2024-12-01T23:00:00Z', 12.5), purchase('erin', '2024-12-01T22:00:00Z', 3)]);
    await load('2024-12-01');
    const [inferred] = await versionsOf(env, 'dave');
    expect(inferred).toMatchObject({ plan: null, email: null, is_inferred: true, is_current: true, valid_to: null });
    const factKey = async (userId: string) =>
      (
        await env.pool.query(
          `select f.user_key from warehouse.fact_events f join warehouse.dim_user u using (user_key)
           where u.user_id = $1 and f.event_type = 'purchase'`,
          [userId],
        )
      ).rows.map((r) => r.user_key);
    expect(await factKey('dave')).toEqual([inferred.user_key]);

    // dave signs up the next day; erin's signup happened the day before her purchase but is loaded after it
    await feed.send([
      signup('dave', '2024-12-02T08:00:00Z', { email: 'dave@example.com', plan: 'pro', country: 'SE' }),
    ]);
    await load('2024-12-02');
    await feed.send([
      signup('erin', '2024-11-30T08:00:00Z', { email: 'erin@example.com', plan: 'free', country: 'IT' }),
    ]);
    await load('2024-11-30');

    expect(await versionsOf(env, 'dave')).toEqual([
      { ...inferred, plan: 'pro', email: 'dave@example.com', country: 'SE', is_inferred: false },
    ]);
    const erin = await versionsOf(env, 'erin');
    expect(erin).toMatchObject([
      { plan: 'free', is_inferred: false, is_current: true, valid_from: new Date('2024-11-30T08:00:00Z') },
    ]);
    expect(await factKey('dave')).toEqual([inferred.user_key]);
    expect(await factKey('erin')).toEqual([erin[0].user_key]);
    expect(await integrity(env)).toEqual(CLEAN);
  });

  it('a change that lands late is slotted into history at its time, and facts after it on other dates are re-pointed', async () => {
    const { env, feed, load } = await setup(lake);
    const u = 'alice';
    await feed.send([signup(u, '2024-12-01T09:00:00Z', alice), purchase(u, '2024-12-01T10:00:00Z', 10)]);
    await load('2024-12-01');
    await feed.send([purchase(u, '2024-12-02T12:00:00Z', 20)]);
    await load('2024-12-02');
    await feed.send([
      purchase(u, '2024-12-03T05:00:00Z', 30),
      planChange(u, '2024-12-03T06:00:00Z', { ...alice, plan: 'enterprise' }),
      purchase(u, '2024-12-03T07:00:00Z', 40),
    ]);
    await load('2024-12-03');
    const before = await versionsOf(env, u);
    const plansOfPurchases = async () =>
      (
        await env.pool.query(`
          select u.plan from warehouse.fact_events f join warehouse.dim_user u on u.user_key = f.user_key
          where f.event_type = 'purchase' order by f.event_time`)
      ).rows.map((r) => r.plan);
    expect(await plansOfPurchases()).toEqual(['free', 'free', 'free', 'enterprise']);

    // the upgrade to pro on 12-02 lands after 12-03 was loaded: 12-02 is marked for re-load
    await feed.send([planChange(u, '2024-12-02T08:00:00Z', { ...alice, plan: 'pro' })]);
    const marked = await env.pool.query(`select dt, needs_reload from ops.date_loads where needs_reload`);
    expect(marked.rows).toEqual([{ dt: '2024-12-02', needs_reload: true }]);
    const late = await load('2024-12-02');
    expect(late.dimensions.user).toMatchObject({
      versionsInserted: 1,
      versionsUpdated: 1,
      versionsDeleted: 0,
      factsRepointed: 2,
    });
    expect(late.loaded).toMatchObject({ rowsInserted: 1, rowsUpdated: 0, needsReload: false });
    const after = await versionsOf(env, u);
    expect(after.map((v) => [v.plan, v.valid_from.toISOString(), v.valid_to?.toISOString() ?? null])).toEqual([
      ['free', '2024-12-01T09:00:00.000Z', '2024-12-02T08:00:00.000Z'],
      ['pro', '2024-12-02T08:00:00.000Z', '2024-12-03T06:00:00.000Z'],
      ['enterprise', '2024-12-03T06:00:00.000Z', null],
    ]);
    // the version it split keeps its key and start; the one after keeps its key and start
    expect(after[0].user_key).toBe(before[0].user_key);
    expect(after[2].user_key).toBe(before[1].user_key);
    expect(await plansOfPurchases()).toEqual(['free', 'pro', 'pro', 'enterprise']);

    // an earlier upgrade to enterprise makes the 12-03 version redundant: it goes, and its facts move
    await feed.send([planChange(u, '2024-12-02T20:00:00Z', { ...alice, plan: 'enterprise' })]);
    const again = await load('2024-12-02');
    expect(again.dimensions.user).toMatchObject({ versionsInserted: 1, versionsDeleted: 1, factsRepointed: 3 }); // two purchases and the 06:00 change
    expect((await versionsOf(env, u)).map((v) => [v.plan, v.valid_from.toISOString()])).toEqual([
      ['free', '2024-12-01T09:00:00.000Z'],
      ['pro', '2024-12-02T08:00:00.000Z'],
      ['enterprise', '2024-12-02T20:00:00.000Z'],
    ]);
    expect(await plansOfPurchases()).toEqual(['free', 'pro', 'enterprise', 'enterprise']);
    expect(await integrity(env)).toEqual(CLEAN);
  });

  it('staging is per date and transient: a stage run drops the tables of dates loaded more than a day ago', async () => {
    const { env, feed, load } = await setup(lake);
    await feed.send([signup('gina', '2024-12-07T09:00:00Z', alice), signup('hank', '2024-12-08T09:00:00Z', alice)]);
    await load('2024-12-07');
    const stagingTables = async () =>
      (
        await env.pool.query(
          `select table_name from information_schema.tables where table_schema = 'staging' order by 1`,
        )
      ).rows.map((r) => r.table_name);
    expect(await stagingTables()).toEqual([
      'event_devices_20241207',
      'event_files_20241207',
      'events',
      'events_20241207',
      'user_staged_20241207',
    ]);
    await env.pool.query(`update ops.date_loads set last_loaded_at = now() - interval '25 hours'`);
    await load('2024-12-08');
    expect(await stagingTables()).toEqual([
      'event_devices_20241208',
      'event_files_20241208',
      'events',
      'events_20241208',
      'user_staged_20241208',
    ]);
  });

  it("the fact load keys events to the staged users' versions only while they are the users the dimension load read", async () => {
    const { env, feed, load } = await setup(lake);
    const { stage, dims, facts } = loadSteps(env);
    await feed.send([signup('ivy', '2024-12-13T09:00:00Z', alice), signup('jack', '2024-12-13T10:00:00Z', alice)]);
    await load('2024-12-13');
    const date = '2024-12-14';
    const input = { date, run: { ...run, runId: 'staged-users' } };
    const users = async () =>
      (await env.pool.query('select user_id from staging.user_staged_20241214 order by 1')).rows.map((r) => r.user_id);
    await feed.send([pageView('ivy', `${date}T08:00:00Z`)]);
    await stage.stageEvents(input);
    await dims.loadDimensions(input);
    expect(await users()).toEqual(['ivy']);
    // jack's event lands and the date is staged again, without a dimension load: his version from the 13th is
    // valid, so his fact is keyed to it (were the dimension load's users still read, it would have no version)
    await feed.send([pageView('jack', `${date}T09:00:00Z`)]);
    await stage.stageEvents(input);
    const tables = await env.pool.query(`select to_regclass('staging.user_staged_20241214') as t`);
    expect(tables.rows).toEqual([{ t: null }]);
    expect(await facts.loadFacts(input)).toMatchObject({ rowsInserted: 2 });
    const { rows } = await env.pool.query(
      `select u.user_id, u.user_key = cur.user_key as current_version
       from warehouse.fact_events f join warehouse.dim_user u using (user_key)
       join warehouse.dim_user cur on cur.user_id = u.user_id and cur.is_current
       where f.date_key = 20241214 order by 1`,
    );
    expect(rows).toEqual([
      { user_id: 'ivy', current_version: true },
      { user_id: 'jack', current_version: true },
    ]);
    // the next day, loaded as the pipeline does, reads the users its dimension load left
    await feed.send([pageView('jack', '2024-12-15T09:00:00Z')]);
    await load('2024-12-15');
    expect(
      (await env.pool.query('select user_id from staging.user_staged_20241215')).rows.map((r) => r.user_id),
    ).toEqual(['jack']);
    expect(await integrity(env)).toEqual(CLEAN);
  });

  it("a date's first load takes its user_days rows from the users the dimension load counted, and from its facts when that table has no counts", async () => {
    const { env, feed } = await setup(lake);
    const { stage, dims, facts } = loadSteps(env);
    const userDays = async (dateKey: number) =>
      (
        await env.pool.query(
          'select user_id, events, attribute_events, page_views from warehouse.user_days where date_key = $1 order by 1',
          [dateKey],
        )
      ).rows;
    // a table the dimension load of an older worker left, without the counts: the rows come from the facts
    await feed.send([signup('kim', '2024-12-13T09:00:00Z', alice), pageView('kim', '2024-12-13T10:00:00Z')]);
    const older = { date: '2024-12-13', run: { ...run, runId: 'counted-users-older' } };
    await stage.stageEvents(older);
    await dims.loadDimensions(older);
    await env.pool.query('alter table staging.user_staged_20241213 drop column purchases');
    expect(await facts.loadFacts(older)).toMatchObject({ rowsInserted: 2 });
    expect(await userDays(20241213)).toEqual([{ user_id: 'kim', events: 2, attribute_events: 1, page_views: 1 }]);
    expect(await integrity(env)).toEqual(CLEAN);

    // the dimension load counts each staged user's events as it groups them
    await feed.send([
      pageView('kim', '2024-12-14T08:00:00Z'),
      signup('lea', '2024-12-14T09:00:00Z', alice),
      pageView('kim', '2024-12-14T23:00:00Z'),
    ]);
    const date = { date: '2024-12-14', run: { ...run, runId: 'counted-users' } };
    await stage.stageEvents(date);
    await dims.loadDimensions(date);
    const { rows: counted } = await env.pool.query(
      `select user_id, events::int, attribute_events::int, page_views::int, first_staged_at, last_staged_at
       from staging.user_staged_20241214 order by 1`,
    );
    expect(counted).toEqual([
      {
        user_id: 'kim',
        events: 2,
        attribute_events: 0,
        page_views: 2,
        first_staged_at: new Date('2024-12-14T08:00:00Z'),
        last_staged_at: new Date('2024-12-14T23:00:00Z'),
      },
      {
        user_id: 'lea',
        events: 1,
        attribute_events: 1,
        page_views: 0,
        first_staged_at: new Date('2024-12-14T09:00:00Z'),
        last_staged_at: new Date('2024-12-14T09:00:00Z'),
      },
    ]);
    // and the first load reads them there, not from its facts: a count changed in the table is what user_days gets
    await env.pool.query(`update staging.user_staged_20241214 set events = 7, page_views = 5 where user_id = 'kim'`);
    expect(await facts.loadFacts(date)).toMatchObject({ rowsInserted: 3 });
    expect(await userDays(20241214)).toEqual([
      { user_id: 'kim', events: 7, attribute_events: 0, page_views: 5 },
      { user_id: 'lea', events: 1, attribute_events: 1, page_views: 0 },
    ]);
  });

  it('two loads of the same date never interleave: the date lock waits, other dates go ahead', async () => {
    const { env } = await setup(lake);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const order: string[] = [];
    const first = withDateLock(env.pool, '2024-12-09', async () => {
      order.push('first:start');
      await held;
      order.push('first:end');
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const probe = await env.pool.connect();
    try {
      expect(await isDateLocked(probe, '2024-12-09')).toBe(true);
      await probe.query('begin');
      expect(await tryLockDate(probe, '2024-12-09')).toBe(false);
      expect(await tryLockDate(probe, '2024-12-10')).toBe(true);
      await probe.query('rollback');
    } finally {
      probe.release();
    }
    const second = withDateLock(env.pool, '2024-12-09', async () => {
      order.push('second');
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['first:start', 'first:end', 'second']);
  });

  it('facts loaded before their users fail without retry, naming the count and the fix, and leave no partition', async () => {
    const { env, feed, load } = await setup(lake);
    const deps = { config: env.config, pool: env.pool, db: env.db };
    await feed.send([signup('gina', '2024-12-09T08:00:00Z', alice), pageView('gina', '2024-12-09T09:00:00Z')]);
    await createStageActivities(deps).stageEvents({ date: '2024-12-09', run: { ...run, runId: 'stage-only' } });
    const facts = createFactActivities(deps);
    const refused = {
      nonRetryable: true,
      message: expect.stringMatching(/^2 staged events of 2024-12-09 .*run loadUserDimension/),
    };
    await expect(facts.loadFacts({ date: '2024-12-09', run: { ...run, runId: 'facts-only' } })).rejects.toMatchObject(
      refused,
    );
    const partitions = await env.pool.query(
      `select count(*)::int as n from pg_inherits where inhparent = 'warehouse.fact_events'::regclass`,
    );
    expect(partitions.rows[0].n).toBe(0);
    expect(await env.pool.query(`select to_regclass('warehouse.fact_events_20241209') as t`)).toMatchObject({
      rows: [{ t: null }],
    });

    // the re-load path: the date is loaded, then a new user's events land and only the stage runs again
    await load('2024-12-09');
    await feed.send([pageView('hank', '2024-12-09T10:00:00Z')]);
    await createStageActivities(deps).stageEvents({ date: '2024-12-09', run: { ...run, runId: 'stage-only' } });
    await expect(facts.loadFacts({ date: '2024-12-09', run: { ...run, runId: 'facts-only' } })).rejects.toMatchObject({
      nonRetryable: true,
      message: expect.stringMatching(/^1 staged events of 2024-12-09 /),
    });
    // the re-load keys only the records of the lake file that landed since: hank's page view
    const reloaded = await load('2024-12-09');
    expect(reloaded.loaded).toMatchObject({ rowsInserted: 1, rowsUpdated: 0, rowsUnchanged: 2 });
    const files = await env.pool.query(
      `select array_length(loaded_file_ids, 1) as n from ops.date_loads where dt = '2024-12-09'`,
    );
    expect(files.rows).toEqual([{ n: 2 }]);
    const again = await load('2024-12-09');
    expect(again.loaded).toMatchObject({ rowsInserted: 0, rowsUpdated: 0, rowsUnchanged: 3 });
    expect(await integrity(env)).toEqual(CLEAN);
  });

  it('a staging table a database crash emptied (unlogged) is staged again, from the same lake files, before dimensions and facts read it', async () => {
    const { env, feed } = await setup(lake);
    const { stage, dims, facts } = loadSteps(env);
    const date = '2024-12-09';
    const input = { date, run: { ...run, runId: 'crash-1' } };
    const events = busyDay(date);
    await feed.send(events);
    const staged = await stage.stageEvents(input);
    const distinct = staged.rowsStaged;
    // what crash recovery does to unlogged tables: they come back empty
    const empty = () => env.pool.query('truncate staging.events_20241209, staging.event_files_20241209');
    await empty();
    const dimensions = await dims.loadDimensions(input);
    expect(dimensions.device.restaged).toMatch(/holds 0 rows, the stage run left \d+/);
    expect(dimensions.user.restaged).toBeNull();

    // a file lands after the stage: a re-stage restores what the stage run read, not more, and marks the date
    await feed.send([pageView('late-user', `${date}T23:00:00Z`)]);
    await empty();
    const loaded = await facts.loadFacts(input);
    expect(loaded.restaged).toMatch(/holds 0 rows/);
    expect(loaded).toMatchObject({ rowsDistinct: distinct, rowsInserted: distinct, needsReload: true });
    const { rows } = await env.pool.query('select count(*)::int as n from warehouse.fact_events');
    expect(rows[0].n).toBe(distinct);

    // a staging table that matches its record is read as it is
    await stage.stageEvents(input);
    await dims.loadDimensions(input);
    const reloaded = await facts.loadFacts(input);
    expect(reloaded).toMatchObject({ restaged: null, rowsInserted: 1, needsReload: false });
    expect(await integrity(env)).toEqual(CLEAN);
  });

  it("the stage run hands the staged records' device triples to the device dimension; with a record dropped as a repeat they are read from the staged rows", async () => {
    const { env, feed, load } = await setup(lake);
    const date = '2024-12-04';
    await feed.send([...busyDay(date), pageView('tabby', `${date}T13:00:00Z`)]);
    await load(date);
    // the stage run's triples are exactly those of the staged rows (a missing os or browser as 'unknown')
    const triples = async (sql: string) =>
      (await env.pool.query(`${sql} order by 1, 2, 3`)).rows.map((r) => Object.values(r).join('/'));
    const fromStage = await triples(
      'select device_type, device_os, device_browser from staging.event_devices_20241204',
    );
    expect(fromStage).toEqual(
      await triples(
        `select distinct coalesce(device_type, 'unknown') as t, coalesce(device_os, 'unknown') as o, coalesce(device_browser, 'unknown') as b
         from staging.events_20241204`,
      ),
    );
    expect(fromStage).toEqual(
      expect.arrayContaining(['desktop/macOS/Safari', 'tablet/iPadOS/unknown', 'unknown/unknown/unknown']),
    );
    expect(await triples('select device_type, os, browser from warehouse.dim_device')).toEqual(fromStage);

    // the same event_id again with another device: the first record is staged, and the other's device is not one
    // of the date's devices
    const first = pageView('kim', '2024-12-05T10:00:00Z');
    await feed.send([first]);
    await feed.send([{ ...first, device: { type: 'desktop', os: 'Linux', browser: 'Lynx' } }]);
    const { staged } = await load('2024-12-05');
    expect(staged).toMatchObject({ rowsRead: 2, rowsStaged: 1, duplicates: 1 });
    const tables = await env.pool.query(`select to_regclass('staging.event_devices_20241205') as t`);
    expect(tables.rows).toEqual([{ t: null }]);
    expect(await triples('select device_type, os, browser from warehouse.dim_device')).toEqual(fromStage);
    expect(await integrity(env)).toEqual(CLEAN);
  });

  it("a date's first load writes its partition with the parent's columns, vacuums and analyzes it from a smaller sample, and leaves its connections at the server's target", async () => {
    const { env, feed, load } = await setup(lake);
    const views = Array.from({ length: 400 }, (_, i) =>
      pageView('vera', new Date(Date.parse('2024-12-07T01:00:00Z') + i * 61_000).toISOString()),
    );
    await feed.send([signup('vera', '2024-12-07T00:30:00Z', alice), ...views]);
    await load('2024-12-07');
    const { rows } = await env.pool.query(
      `select s.last_vacuum is not null as vacuumed, s.last_analyze is not null as analyzed,
         (select cardinality(st.histogram_bounds::text::text[]) from pg_stats st
          where st.schemaname = 'warehouse' and st.tablename = s.relname and st.attname = 'event_time') as bounds
       from pg_stat_user_tables s where s.schemaname = 'warehouse' and s.relname = 'fact_events_20241207'`,
    );
    // 401 distinct event times: the default target (100) gives a histogram of 101 bounds, the partition's 30 at most 31
    expect(rows).toEqual([{ vacuumed: true, analyzed: true, bounds: expect.any(Number) }]);
    expect(rows[0].bounds).toBeGreaterThan(20);
    expect(rows[0].bounds).toBeLessThanOrEqual(31);
    // written by CREATE TABLE AS, the partition has the parent's columns, types, NOT NULLs and defaults (attaching
    // it checks the first three; warehouse.fact_partition_constrain copies the defaults)
    const columns = async (table: string) =>
      (
        await env.pool.query(
          `select a.attname, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull,
             pg_get_expr(d.adbin, d.adrelid) as default_value
           from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
           where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum`,
          [table],
        )
      ).rows;
    const parent = await columns('warehouse.fact_events');
    expect(parent.some((c) => c.default_value !== null)).toBe(true);
    expect(await columns('warehouse.fact_events_20241207')).toEqual(parent);
    const clients = await Promise.all(Array.from({ length: env.pool.totalCount }, () => env.pool.connect()));
    try {
      for (const client of clients) {
        const target = await client.query(
          `select setting = reset_val as reset from pg_settings where name = 'default_statistics_target'`,
        );
        expect(target.rows).toEqual([{ reset: true }]);
      }
    } finally {
      for (const client of clients) client.release();
    }
  });

  it('duplicate records (the same event_id landed twice) produce one fact row', async () => {
    const { env, feed, load } = await setup(lake);
    const p = purchase('frank', '2024-12-05T10:00:00Z', 5);
    const s = signup('frank', '2024-12-05T09:00:00Z', alice);
    await feed.send([s, p]);
    await feed.send([p, s, p]);
    const { staged, loaded } = await load('2024-12-05');
    expect(staged).toMatchObject({ rowsRead: 5, rowsStaged: 2, duplicates: 3 });
    expect(loaded).toMatchObject({ rowsRead: 5, rowsDistinct: 2, rowsInserted: 2, duplicates: 3 });
    const { rows } = await env.pool.query(
      `select f.event_id, count(*) over ()::int as n, lf.first_offset <= f.source_offset and f.source_offset <= lf.last_offset as offset_in_file
       from warehouse.fact_events f join ops.lake_files lf using (lake_file_id) where f.event_id = $1`,
      [p.event_id],
    );
    expect(rows).toEqual([{ event_id: p.event_id, n: 1, offset_in_file: true }]);
    const changes = await env.pool.query(`select count(*)::int as n from warehouse.user_changes`);
    expect(changes.rows[0].n).toBe(1);

    // the same event_id sent again with another event_time lands under another date: the first load keeps it
    await feed.send([{ ...p, event_time: '2024-12-06T10:00:00Z' }, pageView('frank', '2024-12-06T11:00:00Z')]);
    const other = await load('2024-12-06');
    expect(other.loaded).toMatchObject({ rowsRead: 2, rowsInserted: 1, crossDateDuplicates: 1 });
    const kept = await env.pool.query(`select date_key from warehouse.fact_events where event_id = $1`, [p.event_id]);
    expect(kept.rows).toEqual([{ date_key: 20241205 }]);
    // the record left out counts as a surplus record of its event_id: the date's landed records reconcile
    const checks = await createCheckActivities(env, { config: DQ_DEFAULTS }).runChecks({
      date: '2024-12-06',
      run: { ...run, runId: 'cross-date-checks' },
    });
    expect(checks.results.find((c) => c.check === 'reconciliation')).toMatchObject({ status: 'pass', observed: 1 });
    expect(await integrity(env)).toEqual(CLEAN);
  });

  it('a first load looks for event_ids under the neighbouring dates on a second connection beside its load; a re-load, and a first load whose look-up fails, look in their own transaction', async () => {
    const { env, feed, load } = await setup(lake);
    // the fact load on the real pool, counting the connections it holds at once
    const counted = countingPool(env.pool);
    const deps = { config: env.config, pool: env.pool, db: env.db };
    const stage = createStageActivities(deps);
    const dims = createDimensionActivities(deps);
    const facts = createFactActivities({ ...deps, pool: counted.pool });
    let runs = 0;
    const loadCounted = async (date: string) => {
      const input = { date, run: { ...run, runId: `counted-${date}-${++runs}` } };
      await stage.stageEvents(input);
      await dims.loadDimensions(input);
      counted.most = 0;
      return facts.loadFacts(input);
    };
    const dateOf = async (eventId: string) =>
      (await env.pool.query('select date_key from warehouse.fact_events where event_id = $1', [eventId])).rows;

    const p = purchase('gil', '2024-12-05T23:59:00Z', 5);
    const v = pageView('gil', '2024-12-06T08:00:00Z');
    await feed.send([signup('gil', '2024-12-05T09:00:00Z', alice), p]);
    await load('2024-12-05');
    await feed.send([{ ...p, event_time: '2024-12-06T00:01:00Z' }, v]);
    const first = await loadCounted('2024-12-06');
    expect(first).toMatchObject({
      rowsRead: 2,
      rowsInserted: 1,
      crossDateDuplicates: 1,
      crossDateLookups: { '2024-12-05': 'candidates' },
    });
    expect(counted.most).toBe(2);
    expect(counted.held).toBe(0);
    expect(await dateOf(p.event_id)).toEqual([{ date_key: 20241205 }]);
    // the look-up ends after the date's user activity was written: the rows are written again without the purchase
    const activity = await env.pool.query(
      `select (select array_agg(events) from warehouse.user_days where date_key = 20241206) as events,
              (select count(*)::int from warehouse.user_purchase_days where date_key = 20241206) as purchase_days,
              (select events from warehouse.date_totals where date_key = 20241206) as date_events`,
    );
    expect(activity.rows).toEqual([{ events: [1], purchase_days: 0, date_events: 1 }]);

    // a re-load of the date (its partition exists) with a new lake file holding another re-sent event
    const q = pageView('gil', '2024-12-05T23:30:00Z');
    await feed.send([q]);
    await load('2024-12-05');
    await feed.send([{ ...q, event_time: '2024-12-06T00:02:00Z' }, pageView('gil', '2024-12-06T09:00:00Z')]);
    const again = await loadCounted('2024-12-06');
    expect(again).toMatchObject({ rowsInserted: 1, crossDateDuplicates: 1 });
    expect(counted.most).toBe(1);
    expect(await dateOf(q.event_id)).toEqual([{ date_key: 20241205 }]);

    // a first load whose second connection cannot be had looks in its own transaction
    counted.refuse = true;
    const w = pageView('gil', '2024-12-07T10:00:00Z');
    await feed.send([{ ...v, event_time: '2024-12-07T00:03:00Z' }, w]);
    const refused = await loadCounted('2024-12-07');
    expect(refused).toMatchObject({ rowsRead: 2, rowsInserted: 1, crossDateDuplicates: 1 });
    expect(counted.most).toBe(1);
    expect(await dateOf(v.event_id)).toEqual([{ date_key: 20241206 }]);

    // on a pool of one connection, held by the load itself, the first load looks in its own transaction
    const single = createPool(env.config.databaseUrl, 1);
    try {
      await feed.send([{ ...w, event_time: '2024-12-08T00:04:00Z' }, pageView('gil', '2024-12-08T10:00:00Z')]);
      const input = { date: '2024-12-08', run: { ...run, runId: 'single-connection' } };
      await stage.stageEvents(input);
      await dims.loadDimensions(input);
      const alone = await createFactActivities({ ...deps, pool: single }).loadFacts(input);
      expect(alone).toMatchObject({ rowsRead: 2, rowsInserted: 1, crossDateDuplicates: 1 });
      expect(await dateOf(w.event_id)).toEqual([{ date_key: 20241207 }]);
    } finally {
      await single.end();
    }

    // the records left out count as surplus records of their event_ids: every date's landed records reconcile
    for (const date of ['2024-12-06', '2024-12-07', '2024-12-08']) {
      const checks = await createCheckActivities(env, { config: DQ_DEFAULTS }).runChecks({
        date,
        run: { ...run, runId: `cross-date-${date}` },
      });
      expect(checks.results.find((c) => c.check === 'reconciliation')).toMatchObject({ status: 'pass' });
    }
    expect(counted.held).toBe(0);
    expect(await integrity(env)).toEqual(CLEAN);
  });

  it("looks for a date's event_ids under a neighbour among its stage run's candidates from the neighbour's event_id filter, and by the join once that filter changed or is gone", async () => {
    const { env, feed, load } = await setup(lake);
    const deps = { config: env.config, pool: env.pool, db: env.db };
    const stage = createStageActivities(deps);
    const dims = createDimensionActivities(deps);
    const facts = createFactActivities(deps);
    let runs = 0;
    const input = (date: string) => ({ date, run: { ...run, runId: `filters-${date}-${++runs}` } });
    const filterOf = async (date: string) =>
      (
        await env.pool.query<{ generation: string }>(
          'select generation from ops.event_id_filters where dt = $1::date',
          [date],
        )
      ).rows.map((r) => Number(r.generation));
    const candidatesOf = async (date: string) =>
      (
        await env.pool.query<{ neighbour: string; generation: string; ids: string[] }>(
          `select to_char(neighbour_dt, 'YYYY-MM-DD') as neighbour, neighbour_generation as generation,
                  event_ids as ids
           from ops.cross_date_candidates where dt = $1::date order by neighbour_dt`,
          [date],
        )
      ).rows.map((r) => ({ ...r, generation: Number(r.generation) }));

    const p = purchase('jo', '2024-12-05T23:59:00Z', 5);
    await feed.send([signup('jo', '2024-12-05T09:00:00Z', alice), p]);
    await load('2024-12-05');
    const [generation] = await filterOf('2024-12-05');

    // the next date's stage run finds the re-sent purchase a candidate against the filter, and its own event not
    const v = pageView('jo', '2024-12-06T08:00:00Z');
    await feed.send([{ ...p, event_time: '2024-12-06T00:01:00Z' }, v]);
    await stage.stageEvents(input('2024-12-06'));
    const [found] = await candidatesOf('2024-12-06');
    expect(found).toMatchObject({ neighbour: '2024-12-05', generation });
    expect(found.ids).toContain(p.event_id);
    expect(found.ids).not.toContain(v.event_id);

    // a new lake file of the loaded date is staged on top: its filter takes the new event_ids under a new
    // generation, so the candidates found against the old one are not used and the next date's load looks by the join
    const q = pageView('jo', '2024-12-05T23:30:00Z');
    await feed.send([q]);
    await stage.stageEvents(input('2024-12-05'));
    expect((await filterOf('2024-12-05'))[0]).toBeGreaterThan(generation);
    await dims.loadDimensions(input('2024-12-06'));
    const joined = await facts.loadFacts(input('2024-12-06'));
    expect(joined).toMatchObject({
      rowsInserted: 1,
      crossDateDuplicates: 1,
      crossDateLookups: { '2024-12-05': 'join' },
    });
    await load('2024-12-05');

    // a date whose facts were loaded while it had no filter never gets one: it could not hold their event_ids
    await env.pool.query(`delete from ops.event_id_filters where dt = '2024-12-05'`);
    await feed.send([pageView('jo', '2024-12-05T22:00:00Z')]);
    await load('2024-12-05');
    expect(await filterOf('2024-12-05')).toEqual([]);
    // the date after next keeps its own filter; a re-load of the date between them looks under the filterless date by
    // the join and under the other among its candidates
    const w = pageView('jo', '2024-12-07T10:00:00Z');
    await feed.send([w]);
    const { loaded } = await load('2024-12-07');
    expect(loaded).toMatchObject({
      rowsInserted: 1,
      crossDateDuplicates: 0,
      crossDateLookups: { '2024-12-06': 'candidates' },
    });
    await feed.send([
      { ...q, event_time: '2024-12-06T00:03:00Z' },
      { ...w, event_time: '2024-12-06T23:58:00Z' },
    ]);
    const again = await load('2024-12-06');
    expect(again.loaded).toMatchObject({
      rowsInserted: 0,
      crossDateDuplicates: 2,
      crossDateLookups: { '2024-12-05': 'join', '2024-12-07': 'candidates' },
    });
    const dateOf = async (eventId: string) =>
      (await env.pool.query('select date_key from warehouse.fact_events where event_id = $1', [eventId])).rows;
    expect(await dateOf(p.event_id)).toEqual([{ date_key: 20241205 }]);
    expect(await dateOf(q.event_id)).toEqual([{ date_key: 20241205 }]);
    expect(await dateOf(v.event_id)).toEqual([{ date_key: 20241206 }]);
    expect(await dateOf(w.event_id)).toEqual([{ date_key: 20241207 }]);
    expect(await integrity(env)).toEqual(CLEAN);
  });

  it('fact loads of two neighbouring dates at the same moment keep an event_id sent on both dates once', async () => {
    const { env, feed } = await setup(lake);
    const deps = { config: env.config, pool: env.pool, db: env.db };
    const stage = createStageActivities(deps);
    const dims = createDimensionActivities(deps);
    const facts = createFactActivities(deps);
    const input = (date: string) => ({ date, run: { ...run, runId: `neighbours-${date}` } });
    const p = purchase('ida', '2024-12-05T23:59:00Z', 5);
    await feed.send([signup('ida', '2024-12-05T09:00:00Z', alice), p]);
    await feed.send([{ ...p, event_time: '2024-12-06T00:01:00Z' }, pageView('ida', '2024-12-06T08:00:00Z')]);
    for (const date of ['2024-12-05', '2024-12-06']) {
      await stage.stageEvents(input(date));
      await dims.loadDimensions(input(date));
    }

    // Both loads are held before they commit: their first write to ops.date_loads waits for this transaction,
    // after each has looked for the other date's event_ids. The second one must wait for the first one's commit
    // before it looks, or neither finds the event under the other date.
    const waiting = async () =>
      (
        await env.pool.query<{ n: number }>(
          `select count(*)::int as n from pg_locks
           where not granted and database = (select oid from pg_database where datname = current_database())`,
        )
      ).rows[0].n;
    const blocker = await env.pool.connect();
    let first: Promise<LoadFactsOutput> | undefined;
    let second: Promise<LoadFactsOutput> | undefined;
    try {
      await blocker.query('begin');
      await blocker.query('lock table ops.date_loads in exclusive mode');
      first = facts.loadFacts(input('2024-12-05'));
      await expect.poll(waiting, { timeout: 20_000, interval: 20 }).toBe(1);
      second = facts.loadFacts(input('2024-12-06'));
      await expect.poll(waiting, { timeout: 20_000, interval: 20 }).toBe(2);
    } finally {
      await blocker.query('commit');
      blocker.release();
    }
    const [early, late] = await Promise.all([first, second]);
    expect(early).toMatchObject({ rowsRead: 2, rowsInserted: 2, crossDateDuplicates: 0 });
    expect(late).toMatchObject({ rowsRead: 2, rowsInserted: 1, crossDateDuplicates: 1 });
    const kept = await env.pool.query('select date_key from warehouse.fact_events where event_id = $1', [p.event_id]);
    expect(kept.rows).toEqual([{ date_key: 20241205 }]);
    for (const date of ['2024-12-05', '2024-12-06']) {
      const checks = await createCheckActivities(env, { config: DQ_DEFAULTS }).runChecks(input(date));
      expect(checks.results.find((c) => c.check === 'uniqueness')).toMatchObject({ status: 'pass' });
      expect(checks.results.find((c) => c.check === 'reconciliation')).toMatchObject({ status: 'pass' });
    }
    expect(await integrity(env)).toEqual(CLEAN);
  });

  it('a first load between two loaded dates finds event_ids under each of them, and each fact stays under the date that loaded it first', async () => {
    const { env, feed, load } = await setup(lake);
    const dateOf = async (eventId: string) =>
      (await env.pool.query('select date_key from warehouse.fact_events where event_id = $1', [eventId])).rows;
    const before = pageView('hal', '2024-12-04T23:58:00Z');
    const after = pageView('hal', '2024-12-06T00:02:00Z');
    await feed.send([signup('hal', '2024-12-04T09:00:00Z', alice), before]);
    await load('2024-12-04');
    await feed.send([after]);
    await load('2024-12-06');
    // the middle date receives both again, with event_times across its two midnights, and one event of its own
    await feed.send([
      { ...before, event_time: '2024-12-05T00:01:00Z' },
      { ...after, event_time: '2024-12-05T23:59:00Z' },
      pageView('hal', '2024-12-05T12:00:00Z'),
    ]);
    const { loaded } = await load('2024-12-05');
    expect(loaded).toMatchObject({ rowsRead: 3, rowsInserted: 1, crossDateDuplicates: 2 });
    expect(await dateOf(before.event_id)).toEqual([{ date_key: 20241204 }]);
    expect(await dateOf(after.event_id)).toEqual([{ date_key: 20241206 }]);
    const { rows } = await env.pool.query(
      'select count(*)::int as n from warehouse.fact_events where date_key = 20241205',
    );
    expect(rows).toEqual([{ n: 1 }]);
  });

  it("a user's first and last dates follow their facts: dates loaded out of order, and facts a repair removed", async () => {
    const { env, feed, load } = await setup(lake);
    const activity = async () =>
      (
        await env.pool.query(
          'select user_id, first_date_key, last_date_key from warehouse.user_activity order by user_id',
        )
      ).rows;
    // the last date first, then the first, then the middle one: each moves dora's first date, never her last
    await feed.send([pageView('dora', '2024-12-12T10:00:00Z'), pageView('eve', '2024-12-12T11:00:00Z')]);
    await load('2024-12-12');
    await feed.send([pageView('dora', '2024-12-10T10:00:00Z')]);
    await load('2024-12-10');
    await feed.send([pageView('dora', '2024-12-11T10:00:00Z'), pageView('dora', '2024-12-11T09:00:00Z')]);
    await load('2024-12-11');
    expect(await activity()).toEqual([
      { user_id: 'dora', first_date_key: 20241210, last_date_key: 20241212 },
      { user_id: 'eve', first_date_key: 20241212, last_date_key: 20241212 },
    ]);
    expect(await integrity(env)).toEqual(CLEAN);

    // a repair deletes the last date's facts: dora's last date goes back to the 11th, eve has no date left
    await withDateLock(env.pool, '2024-12-12', async (client) => {
      await client.query('delete from warehouse.fact_events where date_key = 20241212');
      await refreshUserActivity(client, '2024-12-12');
    });
    expect(await activity()).toEqual([{ user_id: 'dora', first_date_key: 20241210, last_date_key: 20241211 }]);
    expect(await integrity(env)).toEqual(CLEAN);
  });

  it('a loaded date re-delivered in new Kafka offsets stages nothing new: the warehouse stays byte-identical and reconciles', async () => {
    const { env, feed, load } = await setup(lake);
    const date = '2024-12-11';
    const day = busyDay(date);
    await feed.send(day);
    const first = await load(date);
    const distinct = first.staged.rowsStaged;
    const before = await tableHashes(env);

    // the same records produced again: new offsets, new lake files, every event_id already a fact of the date
    await feed.send(day);
    const again = await load(date);
    expect(again.staged).toMatchObject({ rowsRead: day.length, rowsStaged: 0, rowsAlreadyLoaded: distinct });
    expect(again.staged.filesAlreadyLoaded).toBeGreaterThan(0);
    expect(again.dimensions.user.usersTouched).toBe(0);
    expect(again.loaded).toMatchObject({ rowsRead: 2 * day.length, rowsInserted: 0, rowsUpdated: 0 });
    expect(await tableHashes(env)).toEqual(before);

    // a new event among re-delivered ones: only it is staged and loaded
    const late = pageView('user-3', `${date}T23:30:00Z`);
    await feed.send([late, ...day.slice(0, 5)]);
    const third = await load(date);
    expect(third.staged).toMatchObject({ rowsStaged: 1, rowsAlreadyLoaded: 5 });
    expect(third.loaded).toMatchObject({ rowsInserted: 1, rowsUnchanged: distinct });

    // ops.staged_dates still describes every record of the date: the reconciliation check passes
    const { rows: counts } = await env.pool.query(
      'select rows_read::int, duplicates::int, rows_staged::int from ops.staged_dates where dt = $1::date',
      [date],
    );
    expect(counts).toEqual([
      { rows_read: 2 * day.length + 6, duplicates: 2 * day.length + 6 - (distinct + 1), rows_staged: distinct + 1 },
    ]);
    const checks = await createCheckActivities(env, { config: DQ_DEFAULTS }).runChecks({
      date,
      run: { ...run, runId: 'redelivery-checks' },
    });
    const reconciliation = checks.results.find((c) => c.check === 'reconciliation');
    expect(reconciliation).toMatchObject({ status: 'pass', observed: distinct + 1 });
    expect(await integrity(env)).toEqual(CLEAN);
  });
});

describe('marts and a load that overtakes their refresh', () => {
  it("a refresh of a later date that read the versions before an earlier date's load changed them starts again: the earlier date's refresh of it is not skipped as current", async () => {
    const { env, feed, load } = await setup('file');
    const refreshMarts = (dates: string[]) =>
      createMartActivities({ config: env.config, pool: env.pool, db: env.db }).refreshMarts({ dates });
    const plans = async () =>
      (
        await env.pool.query(
          `select plan, revenue::text from marts.revenue_daily where date = '2024-12-06' order by plan`,
        )
      ).rows;
    // uma buys on the later date before her signup (plan pro) on the earlier one is loaded: an inferred member
    await feed.send([
      purchase('uma', '2024-12-06T10:00:00Z', 30),
      signup('uma', '2024-12-05T09:00:00Z', { email: 'uma@example.com', plan: 'pro', country: 'DE' }),
    ]);
    await load('2024-12-06');

    // the later date's refresh takes its snapshot, then waits on a lock this test holds on a mart it rewrites
    const holder = await env.pool.connect();
    let refreshing: ReturnType<typeof refreshMarts> | undefined;
    try {
      await holder.query('begin');
      await holder.query('lock table marts.daily_active_users in exclusive mode');
      refreshing = refreshMarts(['2024-12-06']);
      refreshing.catch(() => undefined);
      await until('the refresh waiting on the mart lock', async () => {
        const { rows } = await env.pool.query(
          `select 1 from pg_stat_activity
           where datname = current_database() and wait_event_type = 'Lock' and query ilike 'delete from marts.daily_active_users%'`,
        );
        return rows.length > 0;
      });
      // meanwhile the earlier date loads: the signup completes uma's member in place, which the later date's facts
      // point at, and marks the later date's marts stale although they already were
      const earlier = await load('2024-12-05');
      expect(earlier.dimensions.user).toMatchObject({ versionsUpdated: 1, factsRepointed: 0 });
    } finally {
      await holder.query('rollback');
      holder.release();
    }
    // the overtaken refresh does not clear the mark with marts built from the versions before the load
    const overtaken = await refreshing;
    expect(overtaken.dates).toEqual(['2024-12-06']);
    expect(await plans()).toEqual([{ plan: 'pro', revenue: '30.00' }]);

    // what the earlier date's run then does: its own refresh and its later dates'
    const after = await refreshMarts(['2024-12-05', '2024-12-06']);
    expect(after.current).toEqual(['2024-12-06']);
    expect(await plans()).toEqual([{ plan: 'pro', revenue: '30.00' }]);
  });
});
