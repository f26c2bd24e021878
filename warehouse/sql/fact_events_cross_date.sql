-- grain: one row per keyed event of the date whose event_id fact_events already holds under another date (the
-- same event_id sent again with another event_time). The fact loaded first stays; these are dropped from the
-- date's keyed rows and counted, so the load goes on and the reconciliation check reports the difference.
delete from staging.:"facts_table" as keyed
using warehouse.fact_events as fact_events
where fact_events.event_id = keyed.event_id
    and fact_events.date_key <> :'date_key'::int;
