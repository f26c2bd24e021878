-- grain: one row per utc date, plan at the time of purchase, user country at the time of purchase and currency.
-- parameters: none; reads the temp table day_purchases, which activities/marts.ts fills from day_purchases.sql for
-- the dates being rebuilt (deleting those dates first, then inserting this select).
-- in psql: create temp table day_purchases as <day_purchases.sql with $1 replaced by e.g. array[20241217]>; then
-- run this select.
-- plan and country come from the dim_user version the fact points at, i.e. the version valid at event_time.
-- orders are purchase events; payment_failed is not revenue. amounts are never summed across currencies.

select
    dp.date,
    coalesce(dp.plan, 'unknown') as plan,
    coalesce(dp.country, 'unknown') as country,
    dp.currency,
    sum(dp.orders)::bigint as orders,
    coalesce(sum(dp.revenue), 0) as revenue,
    round(coalesce(sum(dp.revenue), 0) / sum(dp.orders), 2) as avg_order_value,
    count(distinct dp.user_id) as paying_users
from day_purchases as dp
group by dp.date, coalesce(dp.plan, 'unknown'), coalesce(dp.country, 'unknown'), dp.currency
