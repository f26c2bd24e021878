-- grain: one row per date, outside the dates being rebuilt, whose new_users count changes because of them.
-- parameters: $1 int[], the date keys (YYYYMMDD) being rebuilt.
-- loading an earlier date can move a user's first fact earlier. a user with no fact before the first of
-- the rebuilt dates they appear on is new there; the date of their next fact outside the rebuilt dates used
-- to be their first, so it loses them as a new user and its daily_active_users row is rebuilt too.
-- on a daily run of the latest date such users have no later facts, and this returns nothing.

with

all_versions as materialized (
    select
        du.user_key,
        du.user_id
    from warehouse.dim_user as du
),

-- per version first: the rebuilt dates' facts collapse to one row per user_key before the join to dim_user
rebuilt_versions as (
    select
        f.user_key,
        min(f.date_key) as first_rebuilt_date_key
    from warehouse.fact_events as f
    where f.date_key = any($1::int[])
    group by f.user_key
),

touched_users as (
    select
        av.user_id,
        min(rv.first_rebuilt_date_key) as first_rebuilt_date_key
    from rebuilt_versions as rv
    inner join all_versions as av on av.user_key = rv.user_key
    group by av.user_id
),

touched_versions as (
    select
        av.user_key,
        tu.user_id,
        tu.first_rebuilt_date_key
    from all_versions as av
    inner join touched_users as tu on tu.user_id = av.user_id
),

new_in_rebuilt_dates as (
    select
        tv.user_id,
        tv.first_rebuilt_date_key
    from touched_versions as tv
    cross join lateral (
        select min(f.event_time) as first_event_at
        from warehouse.fact_events as f
        where f.user_key = tv.user_key
    ) as version_first
    inner join warehouse.dim_date as dd on dd.date_key = tv.first_rebuilt_date_key
    group by tv.user_id, tv.first_rebuilt_date_key, dd.date
    having min(version_first.first_event_at) >= dd.date::timestamp at time zone 'UTC'
),

next_outside as (
    select
        n.user_id,
        min(later.date_key) as date_key
    from new_in_rebuilt_dates as n
    inner join touched_versions as tv on tv.user_id = n.user_id
    cross join lateral (
        select f.date_key
        from warehouse.fact_events as f
        where f.user_key = tv.user_key
            and f.event_time >= (select dd.date + 1 from warehouse.dim_date as dd where dd.date_key = n.first_rebuilt_date_key)::timestamp at time zone 'UTC'
            and f.date_key <> all($1::int[])
        order by f.event_time
        limit 1
    ) as later
    group by n.user_id
)

select distinct to_char(dd.date, 'YYYY-MM-DD') as date
from next_outside as no
inner join warehouse.dim_date as dd on dd.date_key = no.date_key
order by date
