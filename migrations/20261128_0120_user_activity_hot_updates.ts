import { type Kysely, sql } from 'kysely';

/**
 * Every fact load moves the last activity of each of the date's users in warehouse.user_activity: on the second day
 * of 1M events, 16k updates beside 16k inserts. Its last_event_at index made each update write a new entry in both
 * of its indexes; without it, and with half of each page left free, the updates stay on their page and touch no
 * index (HOT): the day-2 upsert took 262-357 ms against 538-726 ms on a copy of the table (EXPLAIN ANALYZE, every
 * update HOT at fillfactor 50, none with the index).
 * The index served two reads, which take the newest date from warehouse.date_totals instead (one row per date with
 * facts, written with user_activity by every fact load): marts.churn_risk's as-of date, and the freshness check's
 * newest fact (warehouse/checks/freshness.sql). The view's inactive users are most of them on any real history, read
 * by a scan with or without the index.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    drop index warehouse.user_activity_last_event_at;

    alter table warehouse.user_activity set (fillfactor = 50);

    create or replace view marts.churn_risk as
    with

    as_of as (
        select to_date(max(dt.date_key)::text, 'YYYYMMDD') as as_of_date
        from warehouse.date_totals as dt
    ),

    inactive as (
        select
            ua.user_id,
            ua.last_event_at,
            ao.as_of_date - (ua.last_event_at at time zone 'UTC')::date as days_inactive,
            ao.as_of_date
        from warehouse.user_activity as ua
        cross join as_of as ao
        where ua.last_event_at < (ao.as_of_date - 6)::timestamp at time zone 'UTC'
    )

    select
        i.user_id,
        coalesce(du.plan, 'unknown') as plan,
        i.last_event_at as last_seen_at,
        i.days_inactive,
        case
            when i.days_inactive >= 30 then 'high'
            when i.days_inactive >= 14 then 'medium'
            else 'low'
        end as risk_bucket,
        i.as_of_date
    from inactive as i
    left join warehouse.dim_user as du
        on du.user_id = i.user_id
        and du.is_current;

    comment on column marts.churn_risk.as_of_date is 'The latest UTC date with facts (the newest date in warehouse.date_totals).';
  `.execute(db);
}
