-- grain: one row per user and currency with at least one purchase.
-- parameters: none; rebuilds the users in the temp table touched_users, which activities/marts.ts fills from
-- touched_users.sql (the dates' buyers and users with attribute events) and whose rows it deletes first.
-- in psql: create temp table touched_users as <touched_users.sql with $1 replaced>; then run this select.
-- lifetime figures cover every purchase of the user over all loaded history, summed from their purchase days
-- (warehouse.user_purchase_days, kept by the fact loads); plan is the current one.

with

purchases as (
    select
        upd.user_id,
        upd.currency,
        sum(upd.revenue) as lifetime_revenue,
        sum(upd.orders) as orders,
        min(upd.first_purchase_at) as first_purchase_at,
        max(upd.last_purchase_at) as last_purchase_at
    from touched_users as t
    inner join warehouse.user_purchase_days as upd on upd.user_id = t.user_id
    group by upd.user_id, upd.currency
)

select
    p.user_id,
    p.currency,
    coalesce(du.plan, 'unknown') as plan,
    p.lifetime_revenue,
    p.orders,
    round(p.lifetime_revenue / p.orders, 2) as avg_order_value,
    p.first_purchase_at,
    p.last_purchase_at
from purchases as p
left join warehouse.dim_user as du
    on du.user_id = p.user_id
    and du.is_current
