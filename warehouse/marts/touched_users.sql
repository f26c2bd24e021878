-- grain: one row per user (user_id) with at least one fact on the given dates.
-- parameters: $1 int[], the date keys (YYYYMMDD) a run loaded.
-- the per-user marts are refreshed for exactly these users (their plan or their purchases may have changed).

select distinct ud.user_id
from warehouse.user_days as ud
where ud.date_key = any($1::int[])
