-- grain: one row per utc date that has at least one fact.
-- parameters: $1 date[], the dates to rebuild (activities/marts.ts deletes them first, then inserts this select).
-- a user is "new" on the utc date of their first fact of any event type over all loaded history;
-- every other active user is "returning" (they had a fact on an earlier date).
-- users are counted by user_id, not user_key: one user has several dim_user versions.

with

dates as (
    select
        dd.date_key,
        dd.date
    from warehouse.dim_date as dd
    where dd.date = any($1::date[])
),

day_facts as (
    select
        d.date,
        du.user_id
    from warehouse.fact_events as f
    inner join dates as d on d.date_key = f.date_key
    inner join warehouse.dim_user as du on du.user_key = f.user_key
),

active_users as (
    select
        df.date,
        df.user_id,
        count(*) as count_events
    from day_facts as df
    group by df.date, df.user_id
),

first_seen as (
    select
        au.user_id,
        min(f.date_key) as first_date_key
    from (select distinct user_id from active_users) as au
    inner join warehouse.dim_user as du on du.user_id = au.user_id
    inner join warehouse.fact_events as f on f.user_key = du.user_key
    group by au.user_id
),

flagged as (
    select
        au.date,
        au.user_id,
        au.count_events,
        fs.first_date_key = to_char(au.date, 'YYYYMMDD')::int as is_new
    from active_users as au
    inner join first_seen as fs on fs.user_id = au.user_id
)

select
    fl.date,
    count(*) as dau,
    count(*) filter (where fl.is_new) as new_users,
    count(*) filter (where not fl.is_new) as returning_users,
    sum(fl.count_events) as events
from flagged as fl
group by fl.date
