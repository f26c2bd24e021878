-- grain: one row per utc date, plan at the time of purchase, user country at the time of purchase and currency.
-- parameters: $1 int[], the date keys (YYYYMMDD) to rebuild; activities/marts.ts deletes those dates first,
-- then inserts this select. in psql: replace $1 with e.g. array[20241217].
-- plan and country come from the dim_user version the fact points at, i.e. the version valid at event_time.
-- orders are purchase events; payment_failed is not revenue. amounts are never summed across currencies.

with

dates as (
    select
        dd.date_key,
        dd.date
    from warehouse.dim_date as dd
    where dd.date_key = any($1::int[])
),

purchases as (
    select
        d.date,
        coalesce(du.plan, 'unknown') as plan,
        coalesce(du.country, 'unknown') as country,
        coalesce(f.currency, 'XXX') as currency,
        du.user_id,
        f.amount
    from warehouse.fact_events as f
    inner join dates as d on d.date_key = f.date_key
    inner join warehouse.dim_user as du on du.user_key = f.user_key
    where f.date_key = any($1::int[])
        and f.event_type = 'purchase'
)

select
    p.date,
    p.plan,
    p.country,
    p.currency,
    count(*) as orders,
    coalesce(sum(p.amount), 0) as revenue,
    round(coalesce(sum(p.amount), 0) / count(*), 2) as avg_order_value,
    count(distinct p.user_id) as paying_users
from purchases as p
group by p.date, p.plan, p.country, p.currency
