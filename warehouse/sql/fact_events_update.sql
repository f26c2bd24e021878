-- grain: one row per fact of the date already loaded whose content differs from its keyed staged event, as
-- found by fact_events_changes.sql. Rows that would not change are not touched, so a re-load writes nothing and
-- keeps loaded_at.
update warehouse.fact_events as fact_events
set
    event_time = changed.event_time,
    user_key = changed.user_key,
    device_key = changed.device_key,
    event_type = changed.event_type,
    session_id = changed.session_id,
    page = changed.page,
    referrer = changed.referrer,
    country = changed.country,
    order_id = changed.order_id,
    product_id = changed.product_id,
    amount = changed.amount,
    currency = changed.currency,
    lake_file_id = changed.lake_file_id,
    source_offset = changed.source_offset,
    loaded_at = now()
from staging.:"changes_table" as changed
where not changed.is_new
    and fact_events.date_key = :'date_key'::int
    and fact_events.event_id = changed.event_id;
