-- grain: one row per date, outside the dates being rebuilt, whose new_users count may change because of them.
-- parameters: $1 date[], the dates being rebuilt.
-- loading an earlier date can move a user's first fact earlier: the date that used to be their first
-- (their earliest fact outside $1) then loses them as a new user, so its daily_active_users row is rebuilt too.
-- only dates after the earliest of $1 can be affected.

with

dates as (
    select
        dd.date_key,
        dd.date
    from warehouse.dim_date as dd
    where dd.date = any($1::date[])
),

touched_users as (
    select distinct du.user_id
    from warehouse.fact_events as f
    inner join dates as d on d.date_key = f.date_key
    inner join warehouse.dim_user as du on du.user_key = f.user_key
),

first_outside as (
    select
        tu.user_id,
        min(f.date_key) as first_date_key
    from touched_users as tu
    inner join warehouse.dim_user as du on du.user_id = tu.user_id
    inner join warehouse.fact_events as f on f.user_key = du.user_key
    where f.date_key not in (select d.date_key from dates as d)
    group by tu.user_id
)

select distinct to_char(dd.date, 'YYYY-MM-DD') as date
from first_outside as fo
inner join warehouse.dim_date as dd on dd.date_key = fo.first_date_key
where dd.date > (select min(d.date) from dates as d)
order by date
