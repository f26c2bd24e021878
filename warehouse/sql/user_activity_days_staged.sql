-- grain: pg_temp.user_activity_days, one row per user with events on the date, as user_activity_days.sql writes
-- it from the date's facts, here from the user dimension load's staged users (users_table, staging.user_staged_
-- YYYYMMDD: dim_user_versions.sql counts each user's staged events as it groups them). The fact load reads it on a
-- date's first load, when the partition it has just written holds the staged events one for one
-- (activities/facts.ts): no second pass over the day's facts and no dim_user look-up per version. In the statement
-- logs of scripts/measure-load.ts --day2 (1M events a day, 16k and 32k users), 12-25 ms against 0.54-0.79 s for
-- user_activity_days.sql; the dimension load's grouping takes about 0.09 s more for the counts (0.31-0.41 against
-- 0.25-0.31 s in psql on the 32k users' day).
-- in psql: psql "$DATABASE_URL" -v users_table=user_staged_20241217 -f warehouse/sql/user_activity_days_staged.sql
drop table if exists pg_temp.user_activity_days;

create temp table user_activity_days on commit drop as
select
    staged_users.user_id,
    staged_users.events,
    staged_users.attribute_events,
    staged_users.page_views,
    staged_users.add_to_carts,
    staged_users.purchases,
    staged_users.first_staged_at as first_event_at,
    staged_users.last_staged_at as last_event_at
from staging.:"users_table" as staged_users;
