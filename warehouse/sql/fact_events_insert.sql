-- grain: one row per keyed event of the date that fact_events does not hold yet (is_new in fact_events.sql),
-- inserted without ON CONFLICT (its speculative insertion costs 10-20 % of the load): the date lock keeps other
-- loads of the date out, and an event_id already loaded under another date fails with 23505, which the
-- activity resolves with fact_events_cross_date.sql.
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
where keyed.is_new;
