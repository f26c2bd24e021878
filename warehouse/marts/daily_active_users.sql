-- grain: one row per utc date that has at least one fact.
-- parameters: $1 int[], the date keys (YYYYMMDD) to rebuild; activities/marts.ts deletes those dates first,
-- then inserts this select. in psql: replace $1 with e.g. array[20241217].
-- a user is "new" on the utc date of their first fact of any event type over all loaded history;
-- every other active user is "returning" (they had a fact on an earlier date).
-- users are counted by user_id, not user_key: one user has several dim_user versions.

with

dates as (
    select
        dd.date_key,
        dd.date
    from warehouse.dim_date as dd
    where dd.date_key = any($1::int[])
),

-- materialized: one hash join over every version beats a per-user index probe for thousands of users
all_versions as materialized (
    select
        du.user_key,
        du.user_id
    from warehouse.dim_user as du
),

-- counted per version first: the date's facts collapse to one row per user_key before the join to dim_user
active_versions as (
    select
        f.date_key,
        f.user_key,
        count(*) as count_events
    from warehouse.fact_events as f
    where f.date_key = any($1::int[])
    group by f.date_key, f.user_key
),

active_users as (
    select
        avs.date_key,
        av.user_id,
        sum(avs.count_events)::bigint as count_events
    from active_versions as avs
    inner join all_versions as av on av.user_key = avs.user_key
    group by avs.date_key, av.user_id
),

first_seen as (
    select
        av.user_id,
        min(version_first.first_event_at) as first_event_at
    from all_versions as av
    cross join lateral (
        select min(f.event_time) as first_event_at
        from warehouse.fact_events as f
        where f.user_key = av.user_key
    ) as version_first
    where av.user_id in (select au.user_id from active_users as au)
    group by av.user_id
)

select
    d.date,
    count(*) as dau,
    count(*) filter (where fs.first_event_at >= d.date::timestamp at time zone 'UTC') as new_users,
    count(*) filter (where fs.first_event_at < d.date::timestamp at time zone 'UTC') as returning_users,
    sum(au.count_events) as events
from active_users as au
inner join dates as d on d.date_key = au.date_key
inner join first_seen as fs on fs.user_id = au.user_id
group by d.date
