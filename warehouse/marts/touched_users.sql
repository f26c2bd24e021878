-- grain: one row per user (user_id) whose revenue_per_user rows may change with the given dates: they purchased
-- on one of them, or had an attribute event there (user_signup, profile_update, plan_change: their current plan
-- may have moved). Other active users keep their rows as they are.
-- parameters: $1 int[], the date keys (YYYYMMDD) a run loaded.
-- read through the (date_key, ...) primary keys of user_purchase_days and user_days: the dates' rows only.

select upd.user_id
from warehouse.user_purchase_days as upd
where upd.date_key = any($1::int[])
union
select ud.user_id
from warehouse.user_days as ud
where ud.date_key = any($1::int[])
    and ud.attribute_events > 0
