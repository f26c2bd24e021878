-- grain: one row per event_id among the date's staged lake records; a duplicate record keeps the lowest
-- (kafka_partition, kafka_offset). user_key is the dim_user version valid at event_time, device_key the device
-- triple (0 when the event had no device). Idempotent: a row that would not change is not touched, so a re-load
-- keeps loaded_at and writes nothing.
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

keyed_events as (
    select
        staged_events.event_id,
        staged_events.event_time,
        to_char(staged_events.event_time at time zone 'UTC', 'YYYYMMDD')::int as date_key,
        dim_user.user_key,
        coalesce(dim_device.device_key, 0) as device_key,
        staged_events.event_type,
        staged_events.session_id,
        staged_events.page,
        staged_events.referrer,
        staged_events.country,
        staged_events.order_id,
        staged_events.product_id,
        staged_events.amount,
        staged_events.currency,
        staged_events.lake_file_id,
        staged_events.kafka_offset as source_offset
    from staged_events
    left join warehouse.dim_user as dim_user
        on dim_user.user_id = staged_events.user_id
        and staged_events.event_time >= dim_user.valid_from
        and (dim_user.valid_to is null or staged_events.event_time < dim_user.valid_to)
    left join warehouse.dim_device as dim_device
        on dim_device.device_type = coalesce(staged_events.device_type, 'unknown')
        and dim_device.os = coalesce(staged_events.device_os, 'unknown')
        and dim_device.browser = coalesce(staged_events.device_browser, 'unknown')
),

upserted as (
    insert into warehouse.fact_events as fact_events (
        event_id, event_time, date_key, user_key, device_key, event_type, session_id, page, referrer, country,
        order_id, product_id, amount, currency, lake_file_id, source_offset
    )
    select
        keyed_events.event_id,
        keyed_events.event_time,
        keyed_events.date_key,
        keyed_events.user_key,
        keyed_events.device_key,
        keyed_events.event_type,
        keyed_events.session_id,
        keyed_events.page,
        keyed_events.referrer,
        keyed_events.country,
        keyed_events.order_id,
        keyed_events.product_id,
        keyed_events.amount,
        keyed_events.currency,
        keyed_events.lake_file_id,
        keyed_events.source_offset
    from keyed_events
    on conflict (event_id) do update
    set
        event_time = excluded.event_time,
        date_key = excluded.date_key,
        user_key = excluded.user_key,
        device_key = excluded.device_key,
        event_type = excluded.event_type,
        session_id = excluded.session_id,
        page = excluded.page,
        referrer = excluded.referrer,
        country = excluded.country,
        order_id = excluded.order_id,
        product_id = excluded.product_id,
        amount = excluded.amount,
        currency = excluded.currency,
        lake_file_id = excluded.lake_file_id,
        source_offset = excluded.source_offset,
        loaded_at = now()
    where (
        fact_events.event_time, fact_events.date_key, fact_events.user_key, fact_events.device_key,
        fact_events.event_type, fact_events.session_id, fact_events.page, fact_events.referrer,
        fact_events.country, fact_events.order_id, fact_events.product_id, fact_events.amount,
        fact_events.currency, fact_events.lake_file_id, fact_events.source_offset
    ) is distinct from (
        excluded.event_time, excluded.date_key, excluded.user_key, excluded.device_key,
        excluded.event_type, excluded.session_id, excluded.page, excluded.referrer,
        excluded.country, excluded.order_id, excluded.product_id, excluded.amount,
        excluded.currency, excluded.lake_file_id, excluded.source_offset
    )
    returning (xmax = 0) as is_inserted
)

select
    (select count(*) from staging.:"events_table")::int as count_read,
    (select count(*) from staged_events)::int as count_distinct,
    (count(*) filter (where upserted.is_inserted))::int as count_inserted,
    (count(*) filter (where not upserted.is_inserted))::int as count_updated
from upserted;
