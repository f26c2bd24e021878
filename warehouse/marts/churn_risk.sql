-- grain: one row per user inactive for 7 or more days as of the latest utc date with facts.
-- parameters: none; the mart is rebuilt whole (activities/marts.ts deletes every row, then inserts this select),
-- because days_inactive of every user moves whenever the as-of date does. it reads warehouse.user_activity
-- (one row per user, kept by the fact loads) through its last_event_at index: only the inactive users.
-- buckets: 7-13 days inactive = low, 14-29 = medium, 30 or more = high.

with

as_of as (
    select (max(ua.last_event_at) at time zone 'UTC')::date as as_of_date
    from warehouse.user_activity as ua
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
    and du.is_current
