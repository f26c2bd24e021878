-- grain: one row per user inactive for 7 or more days as of the latest utc date with facts.
-- parameters: none; the mart is rebuilt whole (activities/marts.ts deletes every row, then inserts this select),
-- because days_inactive of every user moves whenever the as-of date does.
-- buckets: 7-13 days inactive = low, 14-29 = medium, 30 or more = high.

with

as_of as (
    select dd.date as as_of_date
    from warehouse.dim_date as dd
    where dd.date_key = (select max(f.date_key) from warehouse.fact_events as f)
),

last_seen as (
    select
        du.user_id,
        max(f.event_time) as last_seen_at
    from warehouse.fact_events as f
    inner join warehouse.dim_user as du on du.user_key = f.user_key
    group by du.user_id
),

current_plans as (
    select
        du.user_id,
        du.plan
    from warehouse.dim_user as du
    where du.is_current
),

inactive as (
    select
        ls.user_id,
        ls.last_seen_at,
        ao.as_of_date - (ls.last_seen_at at time zone 'UTC')::date as days_inactive,
        ao.as_of_date
    from last_seen as ls
    cross join as_of as ao
)

select
    i.user_id,
    coalesce(cp.plan, 'unknown') as plan,
    i.last_seen_at,
    i.days_inactive,
    case
        when i.days_inactive >= 30 then 'high'
        when i.days_inactive >= 14 then 'medium'
        else 'low'
    end as risk_bucket,
    i.as_of_date
from inactive as i
left join current_plans as cp on cp.user_id = i.user_id
where i.days_inactive >= 7
