-- grain: one row per event_id among the date's staged lake records (staging holds one row per event_id) outside
-- the lake files in loaded_file_ids (a re-load skips the files the date's last load staged; empty otherwise),
-- keyed to the dimensions. The last statement is the keyed rows; the load writes them with CREATE TABLE AS
-- (activities/facts.ts keyedFacts), which may key them with a parallel worker where INSERT ... SELECT may not: on
-- the date's first load into the new partition warehouse.fact_events_YYYYMMDD (constrained, indexed and attached
-- afterwards), on a re-load into a scratch table in staging that fact_events_changes.sql compares with the loaded
-- partition. In psql the file prints the rows.
-- user_key is the dim_user version valid at event_time (versions overlapping the day only, so the join does not
-- grow with dim_user); device_key the device triple, 0 when the event had no device. user_key is made NOT NULL
-- in the target: an event with no valid version fails that (23502) and the activity names the fix.
-- day_versions_table is a table of its own, analyzed: the planner then knows it is small with one or a few rows per
-- user and hashes it, reading each event once. A plain table in staging, dropped by the load: not temporary, as
-- a parallel worker cannot read a temporary table (the join with it would wait for the leader), and not unlogged,
-- as PostgreSQL 15 cannot recover from the kill of its postmaster alone while a transaction has created an
-- unlogged table (test/fault-postgres.ts), which a date's first fact load otherwise never does. As a materialized
-- CTE it had no statistics: the planner assumed few distinct user_ids and hashed the day's events instead (a
-- 200 MB hash table, about 3 x slower); left to join dim_user itself, it probed dim_user's gist index for every
-- event once dim_user had grown.
-- Only the versions of the date's staged users (users_table, from the user dimension load: activities/facts.ts
-- dayUsers) go into it, unless all_users: the versions overlapping the day include the open version of every user
-- the warehouse holds, 133,679 rows against 25,014 for the day's users on the 30th day of 200,000 events, which
-- made the table, its ANALYZE and the hash join grow with history.
drop table if exists staging.:"day_versions_table";

create table staging.:"day_versions_table" with (autovacuum_enabled = false) as
select
    dim_user.user_key,
    dim_user.user_id,
    dim_user.valid_from,
    dim_user.valid_to
from warehouse.dim_user as dim_user
where dim_user.valid_from < :'day_end'::timestamptz
    and (dim_user.valid_to is null or dim_user.valid_to > :'day_start'::timestamptz)
    and (:'all_users'::boolean or dim_user.user_id in (select users.user_id from staging.:"users_table" as users));

analyze staging.:"day_versions_table";

select
    staged.event_id,
    staged.event_time,
    :'date_key'::int as date_key,
    day_versions.user_key,
    coalesce(dim_device.device_key, 0) as device_key,
    staged.event_type,
    staged.session_id,
    staged.page,
    staged.referrer,
    staged.country,
    staged.order_id,
    staged.product_id,
    staged.amount::numeric(14, 2) as amount,
    staged.currency::char(3) as currency,
    staged.lake_file_id,
    staged.kafka_offset as source_offset,
    now() as loaded_at
from staging.:"events_table" as staged
left join staging.:"day_versions_table" as day_versions
    on day_versions.user_id = staged.user_id
    and staged.event_time >= day_versions.valid_from
    and (day_versions.valid_to is null or staged.event_time < day_versions.valid_to)
left join warehouse.dim_device as dim_device
    on dim_device.device_type = coalesce(staged.device_type, 'unknown')
    and dim_device.os = coalesce(staged.device_os, 'unknown')
    and dim_device.browser = coalesce(staged.device_browser, 'unknown')
where staged.lake_file_id <> all (:'loaded_file_ids'::bigint[]);
