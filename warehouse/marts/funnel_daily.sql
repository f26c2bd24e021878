-- grain: one row per utc date with funnel events and funnel step (page_view -> add_to_cart -> purchase).
-- parameters: none; reads the temp table day_versions, which activities/marts.ts fills from day_versions.sql for
-- the dates being rebuilt (deleting those dates first, then inserting this select).
-- in psql: create temp table day_versions as <day_versions.sql with $1 replaced by e.g. array[20241217]>; then run
-- this select.
-- a user reaches a step on a date when they had an event of that step and of every earlier step that day,
-- in any order within the day; users are counted by user_id (day_versions has a row per version and currency).

with

steps as (
    select
        s.step_order,
        s.step
    from (values (1, 'page_view'), (2, 'add_to_cart'), (3, 'purchase')) as s (step_order, step)
),

user_days as (
    select
        dv.date,
        dv.user_id,
        bool_or(dv.did_page_view) as did_page_view,
        bool_or(dv.did_add_to_cart) as did_add_to_cart,
        bool_or(dv.orders > 0) as did_purchase
    from day_versions as dv
    group by dv.date, dv.user_id
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
