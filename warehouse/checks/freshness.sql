-- grain: one row: the newest fact of the whole warehouse and the newest fact of the date, with how old the first
-- is at the clock `now` and how far the second falls short of the date's end (hours). lib/checks.ts judges them:
-- the scheduled run against the clock, a backfilled date against its own end.
-- both come from the per-user summaries the fact loads keep equal to the facts: each from the user_days rows of a
-- date (its users' last event_time), the newest fact overall from those of the newest date with facts (date_totals),
-- so the check reads no fact partition.
-- in psql: psql "$DATABASE_URL" -v date=2024-12-17 -v date_key=20241217 -v now=2024-12-18T02:00:00Z -f warehouse/checks/freshness.sql
with newest as materialized (
    select
        (
            select max(ud.last_event_at)
            from warehouse.user_days as ud
            where ud.date_key = (select max(dt.date_key) from warehouse.date_totals as dt)
        ) as newest_at,
        (
            select max(ud.last_event_at)
            from warehouse.user_days as ud
            where ud.date_key = :'date_key'::int
        ) as date_newest_at
)

select
    n.newest_at,
    n.date_newest_at,
    extract(epoch from (:'now'::timestamptz - n.newest_at)) / 3600 as age_hours,
    extract(epoch from ((:'date'::date + 1)::timestamp at time zone 'UTC' - n.date_newest_at)) / 3600 as hours_short
from newest as n;
