-- grain: one row per utc date, dim_user version (user_key) and purchase currency among the dates' page_view,
-- add_to_cart and purchase facts: the one read of the dates' fact partitions that revenue_daily.sql and
-- funnel_daily.sql share. currency is that of the purchases ('XXX' when a purchase had none), null on the row of
-- the version's page views and carts; orders and revenue count and sum its purchases.
-- parameters: $1 int[], the date keys (YYYYMMDD) being rebuilt; activities/marts.ts creates the temp table
-- day_versions from it (on commit drop). in psql: create temp table day_versions as <this select with $1 replaced
-- by e.g. array[20241217]>; then run revenue_daily.sql and funnel_daily.sql.
-- the version's user_id, plan and country (as of the version, i.e. at event_time) come along from dim_user.

with

version_currencies as (
    select
        f.date_key,
        f.user_key,
        case when f.event_type = 'purchase' then coalesce(f.currency, 'XXX') end as currency,
        bool_or(f.event_type = 'page_view') as did_page_view,
        bool_or(f.event_type = 'add_to_cart') as did_add_to_cart,
        count(*) filter (where f.event_type = 'purchase') as orders,
        sum(f.amount) filter (where f.event_type = 'purchase') as revenue
    from warehouse.fact_events as f
    where f.date_key = any($1::int[])
        and f.event_type in ('page_view', 'add_to_cart', 'purchase')
    group by f.date_key, f.user_key, case when f.event_type = 'purchase' then coalesce(f.currency, 'XXX') end
)

select
    dd.date,
    vc.date_key,
    vc.user_key,
    du.user_id,
    du.plan,
    du.country,
    vc.currency,
    vc.did_page_view,
    vc.did_add_to_cart,
    vc.orders,
    vc.revenue
from version_currencies as vc
inner join warehouse.dim_date as dd on dd.date_key = vc.date_key
inner join warehouse.dim_user as du on du.user_key = vc.user_key
