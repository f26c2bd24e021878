-- grain: one row per keyed event of the date (staging.:"facts_table") that the date's partition does not hold
-- yet: records that landed since the date's last load. Without ON CONFLICT: the date lock keeps other loads of
-- the date out.
insert into warehouse.fact_events (
    event_id, event_time, date_key, user_key, device_key, event_type, session_id, page, referrer, country,
    order_id, product_id, amount, currency, lake_file_id, source_offset
)
select
    keyed.event_id,
    keyed.event_time,
    keyed.date_key,
    keyed.user_key,
    keyed.device_key,
    keyed.event_type,
    keyed.session_id,
    keyed.page,
    keyed.referrer,
    keyed.country,
    keyed.order_id,
    keyed.product_id,
    keyed.amount,
    keyed.currency,
    keyed.lake_file_id,
    keyed.source_offset
from staging.:"facts_table" as keyed
where not exists (
    select
    from warehouse.fact_events as fact_events
    where fact_events.date_key = :'date_key'::int
        and fact_events.event_id = keyed.event_id
);
