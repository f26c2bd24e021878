-- grain: one row per utc date that has at least one fact.
-- parameters: $1 int[], the date keys (YYYYMMDD) to rebuild; activities/marts.ts deletes those dates first,
-- then inserts this select. in psql: replace $1 with e.g. array[20241217].
-- a user is "new" on the utc date of their first fact of any event type over all loaded history;
-- every other active user is "returning" (they had a fact on an earlier date).
-- users are counted by user_id, not user_key: one user has several dim_user versions. the date's activity per
-- user (warehouse.user_days) and each user's first date (warehouse.user_activity) are kept by the fact loads.

select
    dd.date,
    day_users.dau,
    day_users.new_users,
    day_users.returning_users,
    day_users.events
from (
    select
        ud.date_key,
        count(*) as dau,
        count(*) filter (where ua.first_date_key = ud.date_key) as new_users,
        count(*) filter (where ua.first_date_key < ud.date_key) as returning_users,
        sum(ud.events) as events
    from warehouse.user_days as ud
    inner join warehouse.user_activity as ua on ua.user_id = ud.user_id
    where ud.date_key = any($1::int[])
    group by ud.date_key
) as day_users
-- dim_date is joined once per date, after the users are counted
inner join warehouse.dim_date as dd on dd.date_key = day_users.date_key
