-- grain: one row per user attribute event (user_signup, profile_update, plan_change) among the date's staged
-- events, by event_id; a duplicate record keeps the lowest (kafka_partition, kafka_offset). Events already in
-- the change log are left as they are, so re-running inserts nothing.
with attribute_events as (
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
),

inserted as (
    insert into warehouse.user_changes (event_id, user_id, event_time, event_type, email, plan, country, dt, lake_file_id)
    select
        attribute_events.event_id,
        attribute_events.user_id,
        attribute_events.event_time,
        attribute_events.event_type,
        attribute_events.email,
        attribute_events.plan,
        attribute_events.country,
        :'date'::date,
        attribute_events.lake_file_id
    from attribute_events
    on conflict (event_id) do nothing
    returning 1
)

select
    (select count(*) from attribute_events)::int as count_read,
    (select count(*) from inserted)::int as count_inserted;
