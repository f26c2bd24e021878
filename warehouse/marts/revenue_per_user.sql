-- grain: one row per user and currency with at least one purchase.
-- parameters: $1 text[], the user_ids to rebuild (activities/marts.ts deletes them first, then inserts this select).
-- lifetime figures cover every purchase of the user over all loaded history; plan is the current one.

with

-- materialized: scanned once (a hashed array filter) and read twice below
user_versions as materialized (
    select
        du.user_key,
        du.user_id,
        du.plan,
        du.is_current
    from warehouse.dim_user as du
    where du.user_id = any($1::text[])
),

current_plans as (
    select
        uv.user_id,
        uv.plan
    from user_versions as uv
    where uv.is_current
),

purchases as (
    select
        uv.user_id,
        coalesce(f.currency, 'XXX') as currency,
        f.amount,
        f.event_time
    from user_versions as uv
    inner join warehouse.fact_events as f on f.user_key = uv.user_key
    where f.event_type = 'purchase'
)

select
    p.user_id,
    p.currency,
    coalesce(cp.plan, 'unknown') as plan,
    coalesce(sum(p.amount), 0) as lifetime_revenue,
    count(*) as orders,
    round(coalesce(sum(p.amount), 0) / count(*), 2) as avg_order_value,
    min(p.event_time) as first_purchase_at,
    max(p.event_time) as last_purchase_at
from purchases as p
left join current_plans as cp on cp.user_id = p.user_id
group by p.user_id, p.currency, cp.plan
