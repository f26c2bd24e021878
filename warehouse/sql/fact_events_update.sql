-- grain: one row per fact of the date already loaded whose content differs from its keyed staged event (a
-- re-load after a dimension change, or a corrected lake file), as flagged by fact_events.sql. Rows that would
-- not change are not touched, so a re-load writes nothing and keeps loaded_at.
update warehouse.fact_events as fact_events
set
    event_time = keyed.event_time,
    date_key = keyed.date_key,
    user_key = keyed.user_key,
    device_key = keyed.device_key,
    event_type = keyed.event_type,
    session_id = keyed.session_id,
    page = keyed.page,
    referrer = keyed.referrer,
    country = keyed.country,
    order_id = keyed.order_id,
    product_id = keyed.product_id,
    amount = keyed.amount,
    currency = keyed.currency,
    lake_file_id = keyed.lake_file_id,
    source_offset = keyed.source_offset,
    loaded_at = now()
from staging.:"facts_table" as keyed
where keyed.is_changed
    and fact_events.event_id = keyed.event_id;
