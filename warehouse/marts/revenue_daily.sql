-- grain: one row per utc date, plan at the time of purchase, user country at the time of purchase and currency.
-- parameters: none; reads the temp table day_versions, which activities/marts.ts fills from day_versions.sql for
-- the dates being rebuilt (deleting those dates first, then inserting this select).
-- in psql: create temp table day_versions as <day_versions.sql with $1 replaced by e.g. array[20241217]>; then run
-- this select.
-- plan and country come from the dim_user version the fact points at, i.e. the version valid at event_time.
-- orders are purchase events; payment_failed is not revenue. amounts are never summed across currencies.

select
    dv.date,
    coalesce(dv.plan, 'unknown') as plan,
    coalesce(dv.country, 'unknown') as country,
    dv.currency,
    sum(dv.orders)::bigint as orders,
    coalesce(sum(dv.revenue), 0) as revenue,
    round(coalesce(sum(dv.revenue), 0) / sum(dv.orders), 2) as avg_order_value,
    count(distinct dv.user_id) as paying_users
from day_versions as dv
where dv.orders > 0
group by dv.date, coalesce(dv.plan, 'unknown'), coalesce(dv.country, 'unknown'), dv.currency
