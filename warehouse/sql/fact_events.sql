-- grain: one row per event_id among the date's staged lake records, keyed to the dimensions: the fact rows the
-- date should have. A duplicate record keeps the lowest (kafka_partition, kafka_offset); user_key is the
-- dim_user version valid at event_time (versions overlapping the day only, so the join does not grow with
-- dim_user); device_key the device triple, 0 when the event had no device. Sorted by event_id, the order the
-- primary key is cheapest to extend in.
drop table if exists staging.:"facts_table";

create unlogged table staging.:"facts_table" with (autovacuum_enabled = false) as
with staged_events as (
    select distinct on (staged.event_id)
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
    order by staged.event_id, staged.kafka_partition, staged.kafka_offset
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
)

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
order by staged_events.event_id;

analyze staging.:"facts_table";
