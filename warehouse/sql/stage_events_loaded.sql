-- grain: one row per record of an incremental stage run (lake files that landed after the date's last load) whose
-- event_id the date's facts already hold: the same events delivered again, in new Kafka offsets. They leave
-- staging, so the load that follows keys only events new to the date; the fact loaded first stays.
delete from staging.:"events_table" as staged
using warehouse.fact_events as fact_events
where fact_events.date_key = :'date_key'::int
    and fact_events.event_id = staged.event_id;
