-- grain: one row per user (user_id) with at least one fact on the given dates.
-- parameters: $1 int[], the date keys (YYYYMMDD) a run loaded.
-- the per-user marts are refreshed for exactly these users.

select distinct du.user_id
from warehouse.fact_events as f
inner join warehouse.dim_user as du on du.user_key = f.user_key
where f.date_key = any($1::int[])
