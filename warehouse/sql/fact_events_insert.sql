-- grain: one row per keyed event of the date that its partition does not hold yet (is_new in
-- fact_events_changes.sql). Without ON CONFLICT: the date lock keeps other loads of the date out.
insert into warehouse.fact_events (
    event_id, event_time, date_key, user_key, device_key, event_type, session_id, page, referrer, country,
    order_id, product_id, amount, currency, lake_file_id, source_offset
)
select
    changed.event_id,
    changed.event_time,
    changed.date_key,
    changed.user_key,
    changed.device_key,
    changed.event_type,
    changed.session_id,
    changed.page,
    changed.referrer,
    changed.country,
    changed.order_id,
    changed.product_id,
    changed.amount,
    changed.currency,
    changed.lake_file_id,
    changed.source_offset
from staging.:"changes_table" as changed
where changed.is_new;
