-- grain: one row per user attribute event (user_signup, profile_update, plan_change) among the date's staged
-- events, by event_id; a duplicate record keeps the lowest (kafka_partition, kafka_offset). is_new marks the
-- events the change log does not hold yet: only those are inserted (re-running inserts nothing), and their users
-- are the ones whose versions dim_user_versions.sql has to rebuild (with users it does not hold, or whose
-- earliest event moved earlier). The dim_user exclusive lock keeps other loads from inserting meanwhile.
drop table if exists staging.:"changes_table";

create unlogged table staging.:"changes_table" with (autovacuum_enabled = false) as
select
    attribute_events.*,
    -- a scalar subquery, probed through user_changes_pkey for each of the day's events (an EXISTS may be planned as
    -- a hash of the whole change log, whose cost then grows with the history)
    coalesce((
        select false
        from warehouse.user_changes as user_changes
        where user_changes.event_id = attribute_events.event_id
    ), true) as is_new
from (
    select distinct on (staged.event_id)
        staged.event_id,
        staged.user_id,
        staged.event_time,
        staged.event_type,
        staged.user_email as email,
        staged.user_plan as plan,
        staged.user_country as country,
        staged.lake_file_id
    from staging.:"events_table" as staged
    where staged.event_type in ('user_signup', 'profile_update', 'plan_change')
    order by staged.event_id, staged.kafka_partition, staged.kafka_offset
) as attribute_events;

analyze staging.:"changes_table";

with inserted as (
    insert into warehouse.user_changes (event_id, user_id, event_time, event_type, email, plan, country, dt, lake_file_id)
    select
        changes.event_id,
        changes.user_id,
        changes.event_time,
        changes.event_type,
        changes.email,
        changes.plan,
        changes.country,
        :'date'::date,
        changes.lake_file_id
    from staging.:"changes_table" as changes
    where changes.is_new
    on conflict (event_id) do nothing
    returning 1
)

select
    (select count(*) from staging.:"changes_table")::int as count_read,
    (select count(*) from inserted)::int as count_inserted;
