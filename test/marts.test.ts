import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMartActivities } from '../activities/marts';
import * as userDaysFunnelSteps from '../migrations/20261129_0160_user_days_funnel_steps';
import { analystPassword, createTestEnv, type TestEnv } from './support';
import {
  cleanupEnv,
  dateKey,
  dateOfKey,
  insertFacts,
  refreshDateActivity,
  seedWarehouse,
  type Seeded,
} from './seed-warehouse';

/**
 * The marts against an independent computation: every figure is recomputed here in TypeScript from the rows of
 * fact_events and dim_user (plan at purchase found by searching the user's versions by event_time, not through the
 * fact's user_key join the SQL uses).
 */

interface FactRow {
  event_id: string;
  event_time: Date;
  date_key: number;
  user_key: string;
  event_type: string;
  amount: string | null;
  currency: string | null;
}
interface VersionRow {
  user_key: string;
  user_id: string;
  plan: string | null;
  country: string | null;
  valid_from: Date;
  valid_to: Date | null;
  is_current: boolean;
}

async function load(pool: pg.Pool) {
  const facts = (
    await pool.query<FactRow>(
      'select event_id, event_time, date_key, user_key::text, event_type, amount, currency from warehouse.fact_events',
    )
  ).rows;
  const versions = (
    await pool.query<VersionRow>(
      'select user_key::text, user_id, plan, country, valid_from, valid_to, is_current from warehouse.dim_user',
    )
  ).rows;
  const byKey = new Map(versions.map((v) => [v.user_key, v]));
  const byUser = new Map<string, VersionRow[]>();
  for (const v of versions) byUser.set(v.user_id, [...(byUser.get(v.user_id) ?? []), v]);
  const userOf = (f: FactRow) => byKey.get(f.user_key)!.user_id;
  const versionAt = (userId: string, t: Date) =>
    byUser.get(userId)!.find((v) => v.valid_from <= t && (v.valid_to === null || t < v.valid_to))!;
  const current = (userId: string) => byUser.get(userId)!.find((v) => v.is_current)!;
  return { facts, userOf, versionAt, current };
}

type Model = Awaited<ReturnType<typeof load>>;

const cents = (x: number) => Math.round(x * 100) / 100;
const r4 = (x: number) => Math.round(x * 10_000) / 10_000;

function expectedDau(m: Model) {
  const firstDay = new Map<string, number>();
  for (const f of m.facts) {
    const u = m.userOf(f);
    firstDay.set(u, Math.min(firstDay.get(u) ?? Infinity, f.date_key));
  }
  const days = new Map<number, { users: Set<string>; events: number }>();
  for (const f of m.facts) {
    const d = days.get(f.date_key) ?? { users: new Set(), events: 0 };
    d.users.add(m.userOf(f));
    d.events += 1;
    days.set(f.date_key, d);
  }
  const out: Record<string, { dau: number; new_users: number; returning_users: number; events: number }> = {};
  for (const [key, d] of days) {
    const newUsers = [...d.users].filter((u) => firstDay.get(u) === key).length;
    out[dateOfKey(key)] = {
      dau: d.users.size,
      new_users: newUsers,
      returning_users: d.users.size - newUsers,
      events: d.events,
    };
  }
  return out;
}

function expectedRevenueDaily(m: Model) {
  const out: Record<string, { orders: number; revenue: number; users: Set<string> }> = {};
  for (const f of m.facts.filter((x) => x.event_type === 'purchase')) {
    const u = m.userOf(f);
    const v = m.versionAt(u, f.event_time);
    const k = [dateOfKey(f.date_key), v.plan ?? 'unknown', v.country ?? 'unknown', f.currency ?? 'XXX'].join('|');
    const g = (out[k] ??= { orders: 0, revenue: 0, users: new Set() });
    g.orders += 1;
    g.revenue += Math.round(Number(f.amount ?? 0) * 100); // integer cents: no float drift
    g.users.add(u);
  }
  return Object.fromEntries(
    Object.entries(out).map(([k, g]) => [
      k,
      {
        orders: g.orders,
        revenue: g.revenue / 100,
        paying_users: g.users.size,
        avg_order_value: Math.round(g.revenue / g.orders) / 100,
      },
    ]),
  );
}

function expectedFunnel(m: Model) {
  const perDay = new Map<string, Map<string, Set<string>>>();
  for (const f of m.facts) {
    if (!['page_view', 'add_to_cart', 'purchase'].includes(f.event_type)) continue;
    const day = perDay.get(dateOfKey(f.date_key)) ?? new Map<string, Set<string>>();
    const u = m.userOf(f);
    day.set(u, (day.get(u) ?? new Set()).add(f.event_type));
    perDay.set(dateOfKey(f.date_key), day);
  }
  const out: Record<
    string,
    { users: number; conversion_from_previous: number | null; conversion_from_first: number | null }
  > = {};
  for (const [date, users] of perDay) {
    const sets = [...users.values()];
    const n1 = sets.filter((s) => s.has('page_view')).length;
    const n2 = sets.filter((s) => s.has('page_view') && s.has('add_to_cart')).length;
    const n3 = sets.filter((s) => s.has('page_view') && s.has('add_to_cart') && s.has('purchase')).length;
    const ratio = (a: number, b: number) => (b === 0 ? null : r4(a / b));
    out[`${date}|page_view`] = { users: n1, conversion_from_previous: null, conversion_from_first: ratio(n1, n1) };
    out[`${date}|add_to_cart`] = {
      users: n2,
      conversion_from_previous: ratio(n2, n1),
      conversion_from_first: ratio(n2, n1),
    };
    out[`${date}|purchase`] = {
      users: n3,
      conversion_from_previous: ratio(n3, n2),
      conversion_from_first: ratio(n3, n1),
    };
  }
  return out;
}

function expectedChurn(m: Model) {
  const asOf = Math.max(...m.facts.map((f) => f.date_key));
  const asOfMs = Date.parse(`${dateOfKey(asOf)}T00:00:00Z`);
  const last = new Map<string, Date>();
  for (const f of m.facts) {
    const u = m.userOf(f);
    if (!last.has(u) || last.get(u)! < f.event_time) last.set(u, f.event_time);
  }
  const out: Record<string, { days_inactive: number; risk_bucket: string; plan: string }> = {};
  for (const [u, t] of last) {
    const lastDayMs = Date.parse(`${t.toISOString().slice(0, 10)}T00:00:00Z`);
    const days = Math.round((asOfMs - lastDayMs) / 86_400_000);
    if (days >= 7)
      out[u] = {
        days_inactive: days,
        risk_bucket: days >= 30 ? 'high' : days >= 14 ? 'medium' : 'low',
        plan: m.current(u).plan ?? 'unknown',
      };
  }
  return out;
}

function expectedRevenuePerUser(m: Model) {
  const out: Record<string, { lifetime_revenue: number; orders: number; first: number; last: number; plan: string }> =
    {};
  for (const f of m.facts.filter((x) => x.event_type === 'purchase')) {
    const u = m.userOf(f);
    const g = (out[`${u}|${f.currency ?? 'XXX'}`] ??= {
      lifetime_revenue: 0,
      orders: 0,
      first: Infinity,
      last: -Infinity,
      plan: m.current(u).plan ?? 'unknown',
    });
    g.lifetime_revenue = cents(g.lifetime_revenue + Number(f.amount ?? 0));
    g.orders += 1;
    g.first = Math.min(g.first, f.event_time.getTime());
    g.last = Math.max(g.last, f.event_time.getTime());
  }
  return out;
}

async function marts(pool: pg.Pool) {
  const q = async (text: string) => (await pool.query(text)).rows;
  return {
    dau: Object.fromEntries(
      (await q('select * from marts.daily_active_users')).map((r) => [
        r.date,
        { dau: r.dau, new_users: r.new_users, returning_users: r.returning_users, events: Number(r.events) },
      ]),
    ),
    revenue: Object.fromEntries(
      (await q('select * from marts.revenue_daily')).map((r) => [
        [r.date, r.plan, r.country, r.currency].join('|'),
        {
          orders: r.orders,
          revenue: Number(r.revenue),
          paying_users: r.paying_users,
          avg_order_value: Number(r.avg_order_value),
        },
      ]),
    ),
    funnel: Object.fromEntries(
      (await q('select * from marts.funnel_daily')).map((r) => [
        `${r.date}|${r.step}`,
        {
          users: r.users,
          conversion_from_previous: r.conversion_from_previous === null ? null : Number(r.conversion_from_previous),
          conversion_from_first: r.conversion_from_first === null ? null : Number(r.conversion_from_first),
        },
      ]),
    ),
    churn: Object.fromEntries(
      (await q('select * from marts.churn_risk')).map((r) => [
        r.user_id,
        { days_inactive: r.days_inactive, risk_bucket: r.risk_bucket, plan: r.plan },
      ]),
    ),
    perUser: Object.fromEntries(
      (await q('select * from marts.revenue_per_user')).map((r) => [
        `${r.user_id}|${r.currency}`,
        {
          lifetime_revenue: Number(r.lifetime_revenue),
          orders: r.orders,
          first: r.first_purchase_at.getTime(),
          last: r.last_purchase_at.getTime(),
          plan: r.plan,
        },
      ]),
    ),
  };
}

const RUN = { workflowId: 'daily-test', runId: 'run-1' };

describe('marts', () => {
  let env: TestEnv;
  let seeded: Seeded;

  beforeEach(async () => {
    env = await createTestEnv({ topic: false });
    seeded = await seedWarehouse(env.pool, { start: '2024-11-01', days: 40, users: 150, seed: 7 });
  });
  afterEach(async () => {
    await cleanupEnv(env);
  });

  it('match an independent computation over fact_events: DAU, revenue by plan at purchase, funnel, churn risk, revenue per user', async () => {
    const { refreshMarts } = createMartActivities(env);
    const out = await refreshMarts({ dates: seeded.dates, run: RUN });
    expect(out.rows.daily_active_users).toBe(seeded.dates.length);

    const m = await load(env.pool);
    const got = await marts(env.pool);
    expect(got.dau).toEqual(expectedDau(m));
    expect(got.revenue).toEqual(expectedRevenueDaily(m));
    expect(got.funnel).toEqual(expectedFunnel(m));
    expect(got.churn).toEqual(expectedChurn(m));
    expect(got.perUser).toEqual(expectedRevenuePerUser(m));

    // the data set exercises what the marts distinguish
    expect(new Set(Object.values(got.churn).map((c: any) => c.risk_bucket))).toEqual(
      new Set(['low', 'medium', 'high']),
    );
    expect(Object.keys(got.revenue).some((k) => k.endsWith('|EUR'))).toBe(true);
    const planChangers = seeded.versions.filter((v) => !v.is_current).map((v) => v.user_id);
    expect(planChangers.length).toBeGreaterThan(10);
    expect(Object.values(got.dau).some((d: any) => d.new_users > 0 && d.returning_users > 0)).toBe(true);

    // the run's dates are recorded as a 'marts' step
    const { rows } = await env.pool.query(
      `select count(*)::int as n from ops.pipeline_runs where step = 'marts' and status = 'succeeded'`,
    );
    expect(rows[0].n).toBe(seeded.dates.length);
  });

  it("counts the funnel's steps of a warehouse loaded before user_days held them, from its facts, when migrated", async () => {
    // the user_days rows as a load before migration 0160 left them: no step counts
    await userDaysFunnelSteps.down(env.db);
    await userDaysFunnelSteps.up(env.db);
    const { rows } = await env.pool.query<{ users: number }>(
      'select count(*)::int as users from warehouse.user_days where page_views + add_to_carts + purchases > 0',
    );
    expect(rows[0].users).toBeGreaterThan(0);
    await createMartActivities(env).refreshMarts({ dates: seeded.dates });
    expect((await marts(env.pool)).funnel).toEqual(expectedFunnel(await load(env.pool)));
  });

  it('a refresh of the same dates is idempotent', async () => {
    const { refreshMarts } = createMartActivities(env);
    await refreshMarts({ dates: seeded.dates });
    const first = await marts(env.pool);
    await refreshMarts({ dates: seeded.dates.slice(3, 9) });
    await refreshMarts({ dates: seeded.dates });
    expect(await marts(env.pool)).toEqual(first);
  });

  it('re-loading a date refreshes the per-user marts (revenue per user, churn risk) for the users it touched', async () => {
    const { refreshMarts } = createMartActivities(env);
    await refreshMarts({ dates: seeded.dates });
    const before = await marts(env.pool);
    const last = seeded.dates[seeded.dates.length - 1];
    const churned = Object.keys(before.churn).find((u) => before.churn[u].risk_bucket === 'high')!;
    const version = seeded.versions.find((v) => v.user_id === churned && v.is_current)!;
    const untouched = Object.keys(before.perUser).find((k) => !k.startsWith(`${churned}|`))!;
    const { rows: stamp } = await env.pool.query(
      'select refreshed_at from marts.revenue_per_user where user_id || $2 || currency = $1',
      [untouched, '|'],
    );

    // late records of the last date arrive: the churned user comes back and buys
    const late = [
      { type: 'page_view', amount: null },
      { type: 'purchase', amount: 1234.5 },
    ].map((e, i) => ({
      event_id: randomUUID(),
      event_time: `${last}T12:0${i}:00Z`,
      date_key: dateKey(last),
      user_key: version.user_key,
      device_key: 0,
      event_type: e.type,
      session_id: 's-late',
      page: null,
      country: 'US',
      order_id: e.amount ? 'o-late' : null,
      product_id: null,
      amount: e.amount,
      currency: e.amount ? 'USD' : null,
      lake_file_id: seeded.lakeFileIds[last],
      source_offset: 999_999 + i,
    }));
    await insertFacts(env.pool, late);
    const out = await refreshMarts({ dates: [last] });
    expect(out.usersRefreshed).toBeGreaterThan(0);

    const after = await marts(env.pool);
    expect(after.churn[churned]).toBeUndefined();
    const key = `${churned}|USD`;
    expect(after.perUser[key].orders).toBe((before.perUser[key]?.orders ?? 0) + 1);
    expect(after.perUser[key].lifetime_revenue).toBe(cents((before.perUser[key]?.lifetime_revenue ?? 0) + 1234.5));
    expect(after.perUser[key].last).toBe(Date.parse(`${last}T12:01:00Z`));
    // users the date did not touch keep their rows as they were
    const { rows: stampAfter } = await env.pool.query(
      'select refreshed_at from marts.revenue_per_user where user_id || $2 || currency = $1',
      [untouched, '|'],
    );
    const touchedOnLast = new Set(seeded.facts.filter((f) => f.date_key === dateKey(last)).map((f) => f.user_key));
    if (
      !seeded.versions.filter((v) => untouched.startsWith(`${v.user_id}|`)).some((v) => touchedOnLast.has(v.user_key))
    ) {
      expect(stampAfter[0].refreshed_at).toEqual(stamp[0].refreshed_at);
    }
    // and everything still agrees with the independent computation
    const m = await load(env.pool);
    expect(after.perUser).toEqual(expectedRevenuePerUser(m));
    expect(after.churn).toEqual(expectedChurn(m));
  });

  it('loading an earlier date moves new users off the later date they were first counted on', async () => {
    const { refreshMarts } = createMartActivities(env);
    // the first date is loaded last (a backfill): remove its facts, build the marts, then bring it back
    const first = seeded.dates[0];
    const held = seeded.facts.filter((f) => f.date_key === dateKey(first));
    await env.pool.query('delete from warehouse.fact_events where date_key = $1', [dateKey(first)]);
    await refreshDateActivity(env.pool, first);
    await refreshMarts({ dates: seeded.dates.slice(1) });
    const before = await marts(env.pool);
    await insertFacts(env.pool, held);
    const out = await refreshMarts({ dates: [first] });
    expect(out.laterDates.length).toBeGreaterThan(0);
    const after = await marts(env.pool);
    expect(after.dau).toEqual(expectedDau(await load(env.pool)));
    expect(after.dau[seeded.dates[1]].new_users).toBeLessThan(before.dau[seeded.dates[1]].new_users);
  });

  it('rejects a bad date with a non-retryable error naming it', async () => {
    const { refreshMarts } = createMartActivities(env);
    await expect(refreshMarts({ dates: ['2024-13-01'] })).rejects.toMatchObject({
      nonRetryable: true,
      message: expect.stringContaining('2024-13-01'),
    });
  });

  it('documents every mart table and column, and the analyst role can read them', async () => {
    const { rows } = await env.pool.query(`
      select c.relname, a.attname, col_description(c.oid, a.attnum) as col_comment, obj_description(c.oid, 'pg_class') as table_comment
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      where n.nspname = 'marts' and c.relkind in ('r', 'p', 'v')`);
    expect(new Set(rows.map((r) => r.relname))).toEqual(
      new Set(['daily_active_users', 'revenue_daily', 'revenue_per_user', 'churn_risk', 'funnel_daily']),
    );
    expect(rows.filter((r) => !r.col_comment || !r.table_comment)).toEqual([]);

    await createMartActivities(env).refreshMarts({ dates: seeded.dates.slice(-2) });
    const url = new URL(env.config.databaseUrl);
    url.username = 'analyst';
    url.password = analystPassword();
    const analyst = new pg.Client({ connectionString: url.toString() });
    await analyst.connect();
    try {
      for (const t of ['daily_active_users', 'revenue_daily', 'revenue_per_user', 'churn_risk', 'funnel_daily']) {
        await analyst.query(`select * from marts.${t} limit 1`);
      }
      await expect(analyst.query('delete from marts.churn_risk')).rejects.toThrow();
    } finally {
      await analyst.end();
    }
  });
});
