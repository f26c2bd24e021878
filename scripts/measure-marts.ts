/**
 * Times the mart refresh on about 1M facts (100k users, 30 days): all dates, the latest date, and
 * an old date (which also rebuilds later dates' new-user counts). Uses a throwaway database.
 *   node --import tsx scripts/measure-marts.ts
 */
import pg from 'pg';
import { createMartActivities } from '../activities/marts';
import { loadConfig } from '../lib/config';
import { addDays } from '../lib/temporal';
import { createDb, createPool } from '../warehouse/db';
import { migrateToLatest } from '../warehouse/migrate';
import { exitWithError } from '../lib/redact';

const FACTS = 1_000_000;
const DAYS = 30;
const START = '2024-10-01';

async function main(): Promise<void> {
  const base = loadConfig();
  const database = `nightshift_marts_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: base.databaseUrl });
  await admin.connect();
  await admin.query(`create database ${database}`);
  const url = new URL(base.databaseUrl);
  url.pathname = `/${database}`;
  const pool = createPool(url.toString(), 4);
  const db = createDb(pool);
  try {
    await migrateToLatest(db);
    await pool.query(`
      insert into warehouse.dim_user (user_key, user_id, email, plan, country, valid_from, valid_to, is_current)
      select g, 'u' || g, 'u' || g || '@x', (array['free','pro','enterprise'])[1 + g % 3], (array['US','DE','FR'])[1 + g % 3],
             '2024-01-01', null, true
      from generate_series(1, 100000) as g`);
    await pool.query(
      `insert into warehouse.fact_events (event_id, event_time, date_key, user_key, device_key, event_type, amount, currency, lake_file_id, source_offset)
       select gen_random_uuid(), ts, to_char(ts at time zone 'UTC', 'YYYYMMDD')::int, 1 + (hashint4(g) & 2147483647) % 100000, 0,
              (array['page_view','page_view','page_view','add_to_cart','session_start','purchase'])[1 + g % 6],
              case when g % 6 = 5 then 10 + g % 90 end, case when g % 6 = 5 then 'USD' end, 1, g
       from generate_series(1, $2::int) as g,
            lateral (select $1::timestamptz + (g::double precision / $2::int) * $3::interval as ts) as t`,
      [`${START}T00:00:00Z`, FACTS, `${DAYS} days`],
    );
    await pool.query('analyze warehouse.fact_events; analyze warehouse.dim_user');
    const { refreshMarts } = createMartActivities({ config: { ...base, databaseUrl: url.toString() }, pool, db });
    const dates = Array.from({ length: DAYS }, (_, i) => addDays(START, i));
    const time = async (dates: string[]) => {
      const t = Date.now();
      await refreshMarts({ dates });
      return (Date.now() - t) / 1000;
    };
    const all = await time(dates);
    const latest = await time([dates[DAYS - 1]]);
    const old = await time([dates[5]]);
    console.log(
      `facts ${FACTS}, 100k users, ${DAYS} days: all dates ${all.toFixed(1)} s, latest date ${latest.toFixed(1)} s, an old date ${old.toFixed(1)} s`,
    );
  } finally {
    await db.destroy();
    await admin.query(`drop database if exists ${database}`);
    await admin.end();
  }
}

main().catch((err) => exitWithError(err));
