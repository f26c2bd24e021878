-- grain: one row per keyed event of the date (staging.:"facts_table") that its partition does not hold yet
-- (is_new: records that landed since the date's last load) or holds with other content (a re-load after a
-- dimension change, or a corrected lake file). One join of the keyed events with the loaded ones; a re-load of
-- unchanged data leaves this empty, and the update and insert that follow write nothing.
drop table if exists staging.:"changes_table";

create unlogged table staging.:"changes_table" with (autovacuum_enabled = false) as
select
    keyed.*,
    loaded.event_id is null as is_new
from staging.:"facts_table" as keyed
left join warehouse.fact_events as loaded
    on loaded.date_key = :'date_key'::int
    and loaded.event_id = keyed.event_id
where loaded.event_id is null
    or (
        loaded.event_time, loaded.user_key, loaded.device_key, loaded.event_type, loaded.session_id, loaded.page,
        loaded.referrer, loaded.country, loaded.order_id, loaded.product_id, loaded.amount, loaded.currency,
        loaded.lake_file_id, loaded.source_offset
    ) is distinct from (
        keyed.event_time, keyed.user_key, keyed.device_key, keyed.event_type, keyed.session_id, keyed.page,
        keyed.referrer, keyed.country, keyed.order_id, keyed.product_id, keyed.amount, keyed.currency,
        keyed.lake_file_id, keyed.source_offset
    );
