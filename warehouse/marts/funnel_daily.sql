-- grain: one row per utc date with funnel events and funnel step (page_view -> add_to_cart -> purchase).
-- parameters: $1 int[], the date keys (YYYYMMDD) to rebuild; activities/marts.ts deletes those dates first, then
-- inserts this select. in psql: replace $1 with e.g. array[20241217].
-- a user reaches a step on a date when they had an event of that step and of every earlier step that day,
-- in any order within the day; users are counted by user_id. the steps each user took come from their user_days row
-- (page_views, add_to_carts, purchases), which the fact loads keep: one row per user of the date, read through the
-- (date_key, user_id) primary key, instead of the date's facts grouped by dim_user version.

with

steps as (
    select
        s.step_order,
        s.step
    from (values (1, 'page_view'), (2, 'add_to_cart'), (3, 'purchase')) as s (step_order, step)
),

reached as (
    select
        ud.date_key,
        count(*) filter (where ud.page_views > 0) as page_view_users,
        count(*) filter (where ud.page_views > 0 and ud.add_to_carts > 0) as add_to_cart_users,
        count(*) filter (where ud.page_views > 0 and ud.add_to_carts > 0 and ud.purchases > 0) as purchase_users
    from warehouse.user_days as ud
    where ud.date_key = any($1::int[])
    group by ud.date_key
    -- a date with funnel events only
    having bool_or(ud.page_views > 0 or ud.add_to_carts > 0 or ud.purchases > 0)
),

step_users as (
    select
        dd.date,
        s.step_order,
        s.step,
        case s.step
            when 'page_view' then r.page_view_users
            when 'add_to_cart' then r.add_to_cart_users
            else r.purchase_users
        end as users
    from reached as r
    -- dim_date is joined once per date, after the users are counted
    inner join warehouse.dim_date as dd on dd.date_key = r.date_key
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
