-- grain: one row per user (user_id) with at least one fact on the given dates.
-- parameters: $1 date[], the dates a run loaded.
-- the per-user marts are refreshed for exactly these users.

with

dates as (
    select dd.date_key
    from warehouse.dim_date as dd
    where dd.date = any($1::date[])
)

select distinct du.user_id
from warehouse.fact_events as f
inner join dates as d on d.date_key = f.date_key
inner join warehouse.dim_user as du on du.user_key = f.user_key
