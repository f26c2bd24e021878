-- grain: one row per user (user_id) with at least one fact on the given dates.
-- parameters: $1 int[], the date keys (YYYYMMDD) a run loaded.
-- the per-user marts are refreshed for exactly these users.

select distinct du.user_id
from (
    -- distinct versions first: the dates' facts collapse to one row per user_key before the join to dim_user
    select distinct f.user_key
    from warehouse.fact_events as f
    where f.date_key = any($1::int[])
) as f
inner join warehouse.dim_user as du on du.user_key = f.user_key
