-- grain: one row per utc date with funnel events and funnel step (page_view -> add_to_cart -> purchase).
-- parameters: $1 int[], the date keys (YYYYMMDD) to rebuild; activities/marts.ts deletes those dates first,
-- then inserts this select. in psql: replace $1 with e.g. array[20241217].
-- a user reaches a step on a date when they had an event of that step and of every earlier step that day,
-- in any order within the day; users are counted by user_id.

with

dates as (
    select
        dd.date_key,
        dd.date
    from warehouse.dim_date as dd
    where dd.date_key = any($1::int[])
),

steps as (
    select
        s.step_order,
        s.step
    from (values (1, 'page_view'), (2, 'add_to_cart'), (3, 'purchase')) as s (step_order, step)
),

-- per version first: the date's facts collapse to one row per user_key before the join to dim_user
version_days as (
    select
        f.date_key,
        f.user_key,
        bool_or(f.event_type = 'page_view') as did_page_view,
        bool_or(f.event_type = 'add_to_cart') as did_add_to_cart,
        bool_or(f.event_type = 'purchase') as did_purchase
    from warehouse.fact_events as f
    where f.date_key = any($1::int[])
        and f.event_type in ('page_view', 'add_to_cart', 'purchase')
    group by f.date_key, f.user_key
),

user_days as (
    select
        d.date,
        du.user_id,
        bool_or(vd.did_page_view) as did_page_view,
        bool_or(vd.did_add_to_cart) as did_add_to_cart,
        bool_or(vd.did_purchase) as did_purchase
    from version_days as vd
    inner join dates as d on d.date_key = vd.date_key
    inner join warehouse.dim_user as du on du.user_key = vd.user_key
    group by d.date, du.user_id
),

reached as (
    select
        ud.date,
        count(*) filter (where ud.did_page_view) as page_view_users,
        count(*) filter (where ud.did_page_view and ud.did_add_to_cart) as add_to_cart_users,
        count(*) filter (where ud.did_page_view and ud.did_add_to_cart and ud.did_purchase) as purchase_users
    from user_days as ud
    group by ud.date
),

step_users as (
    select
        r.date,
        s.step_order,
        s.step,
        case s.step
            when 'page_view' then r.page_view_users
            when 'add_to_cart' then r.add_to_cart_users
            else r.purchase_users
        end as users
    from reached as r
    cross join steps as s
)

select
    su.date,
    su.step,
    su.step_order,
    su.users,
    case
        when su.step_order = 1 then null
        else round(su.users::numeric / nullif(lag(su.users) over by_date, 0), 4)
    end as conversion_from_previous,
    round(su.users::numeric / nullif(first_value(su.users) over by_date, 0), 4) as conversion_from_first
from step_users as su
window by_date as (partition by su.date order by su.step_order)
