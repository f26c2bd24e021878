-- grain: one row per fact of the date already loaded whose content differs from its keyed staged event in
-- staging.:"facts_table" (a re-load after a dimension change, or a corrected lake file). Rows that would not
-- change are not touched, so a re-load writes nothing and keeps loaded_at.
update warehouse.fact_events as fact_events
set
    event_time = keyed.event_time,
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
where fact_events.date_key = :'date_key'::int
    and fact_events.event_id = keyed.event_id
    and (
        fact_events.event_time, fact_events.user_key, fact_events.device_key, fact_events.event_type,
        fact_events.session_id, fact_events.page, fact_events.referrer, fact_events.country, fact_events.order_id,
        fact_events.product_id, fact_events.amount, fact_events.currency, fact_events.lake_file_id,
        fact_events.source_offset
    ) is distinct from (
        keyed.event_time, keyed.user_key, keyed.device_key, keyed.event_type,
        keyed.session_id, keyed.page, keyed.referrer, keyed.country, keyed.order_id,
        keyed.product_id, keyed.amount, keyed.currency, keyed.lake_file_id,
        keyed.source_offset
    );
