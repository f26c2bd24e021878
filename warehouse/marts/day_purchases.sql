-- grain: one row per utc date, dim_user version (user_key) and currency among the dates' purchase facts ('XXX' when
-- a purchase had none): the read of the dates' fact partitions that revenue_daily.sql takes its rows from. orders
-- and revenue count and sum the version's purchases in the currency.
-- parameters: $1 int[], the date keys (YYYYMMDD) being rebuilt; activities/marts.ts creates the temp table
-- day_purchases from it (on commit drop). in psql: create temp table day_purchases as <this select with $1 replaced
-- by e.g. array[20241217]>; then run revenue_daily.sql.
-- the version's user_id, plan and country (as of the version, i.e. at event_time) come along from dim_user.
-- purchases only: funnel_daily.sql counts each user's steps from warehouse.user_days. Grouping every page view, cart
-- and purchase by version and currency here took 3.2-3.5 s on day 2 of 10M events (523k groups).

with

version_purchases as (
    select
        f.date_key,
        f.user_key,
        coalesce(f.currency, 'XXX') as currency,
        count(*) as orders,
        sum(f.amount) as revenue
    from warehouse.fact_events as f
    where f.date_key = any($1::int[])
        and f.event_type = 'purchase'
    group by f.date_key, f.user_key, coalesce(f.currency, 'XXX')
)

select
    dd.date,
    vp.date_key,
    vp.user_key,
    du.user_id,
    du.plan,
    du.country,
    vp.currency,
    vp.orders,
    vp.revenue
from version_purchases as vp
inner join warehouse.dim_date as dd on dd.date_key = vp.date_key
inner join warehouse.dim_user as du on du.user_key = vp.user_key
