-- grain: one row per event_id among the date's staged lake records (staging holds one row per event_id) whose
-- fact row is missing (is_new) or differs (is_changed), keyed to the dimensions. Each event is compared once
-- with the date's loaded facts, so a re-load keeps nothing here and the update and the insert that follow
-- touch only what differs. user_key is the dim_user version valid at event_time (versions overlapping the day
-- only, so the join does not grow with dim_user); device_key the device triple, 0 when the event had no device.
drop table if exists staging.:"facts_table";

create unlogged table staging.:"facts_table" with (autovacuum_enabled = false) as
with staged_events as (
    select
        staged.event_id,
        staged.event_time,
        staged.user_id,
        staged.device_type,
        staged.device_os,
        staged.device_browser,
        staged.event_type,
        staged.session_id,
        staged.page,
        staged.referrer,
        staged.country,
        staged.order_id,
        staged.product_id,
        staged.amount,
        staged.currency,
        staged.lake_file_id,
        staged.kafka_offset
    from staging.:"events_table" as staged
),

day_versions as (
    select
        dim_user.user_key,
        dim_user.user_id,
        dim_user.valid_from,
        dim_user.valid_to
    from warehouse.dim_user as dim_user
    where dim_user.valid_from < :'day_end'::timestamptz
        and (dim_user.valid_to is null or dim_user.valid_to > :'day_start'::timestamptz)
),

keyed_events as (
    select
        staged_events.event_id,
        staged_events.event_time,
        to_char(staged_events.event_time at time zone 'UTC', 'YYYYMMDD')::int as date_key,
        day_versions.user_key,
        coalesce(dim_device.device_key, 0) as device_key,
        staged_events.event_type,
        staged_events.session_id,
        staged_events.page,
        staged_events.referrer,
        staged_events.country,
        staged_events.order_id,
        staged_events.product_id,
        staged_events.amount::numeric(14, 2) as amount,
        staged_events.currency::char(3) as currency,
        staged_events.lake_file_id,
        staged_events.kafka_offset as source_offset
    from staged_events
    left join day_versions
        on day_versions.user_id = staged_events.user_id
        and staged_events.event_time >= day_versions.valid_from
        and (day_versions.valid_to is null or staged_events.event_time < day_versions.valid_to)
    left join warehouse.dim_device as dim_device
        on dim_device.device_type = coalesce(staged_events.device_type, 'unknown')
        and dim_device.os = coalesce(staged_events.device_os, 'unknown')
        and dim_device.browser = coalesce(staged_events.device_browser, 'unknown')
),

loaded_events as (
    select
        fact_events.event_id,
        fact_events.event_time,
        fact_events.date_key,
        fact_events.user_key,
        fact_events.device_key,
        fact_events.event_type,
        fact_events.session_id,
        fact_events.page,
        fact_events.referrer,
        fact_events.country,
        fact_events.order_id,
        fact_events.product_id,
        fact_events.amount,
        fact_events.currency,
        fact_events.lake_file_id,
        fact_events.source_offset
    from warehouse.fact_events as fact_events
    where fact_events.date_key = :'date_key'::int
)

select
    keyed_events.*,
    loaded_events.event_id is null as is_new,
    loaded_events.event_id is not null and (
        loaded_events.event_time, loaded_events.date_key, loaded_events.user_key, loaded_events.device_key,
        loaded_events.event_type, loaded_events.session_id, loaded_events.page, loaded_events.referrer,
        loaded_events.country, loaded_events.order_id, loaded_events.product_id, loaded_events.amount,
        loaded_events.currency, loaded_events.lake_file_id, loaded_events.source_offset
    ) is distinct from (
        keyed_events.event_time, keyed_events.date_key, keyed_events.user_key, keyed_events.device_key,
        keyed_events.event_type, keyed_events.session_id, keyed_events.page, keyed_events.referrer,
        keyed_events.country, keyed_events.order_id, keyed_events.product_id, keyed_events.amount,
        keyed_events.currency, keyed_events.lake_file_id, keyed_events.source_offset
    ) as is_changed
from keyed_events
left join loaded_events on loaded_events.event_id = keyed_events.event_id
where loaded_events.event_id is null
    or (
        loaded_events.event_time, loaded_events.date_key, loaded_events.user_key, loaded_events.device_key,
        loaded_events.event_type, loaded_events.session_id, loaded_events.page, loaded_events.referrer,
        loaded_events.country, loaded_events.order_id, loaded_events.product_id, loaded_events.amount,
        loaded_events.currency, loaded_events.lake_file_id, loaded_events.source_offset
    ) is distinct from (
        keyed_events.event_time, keyed_events.date_key, keyed_events.user_key, keyed_events.device_key,
        keyed_events.event_type, keyed_events.session_id, keyed_events.page, keyed_events.referrer,
        keyed_events.country, keyed_events.order_id, keyed_events.product_id, keyed_events.amount,
        keyed_events.currency, keyed_events.lake_file_id, keyed_events.source_offset
    );

analyze staging.:"facts_table";
