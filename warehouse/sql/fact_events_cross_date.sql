-- grain: one row per staged event of the date whose event_id fact_events already holds under the previous or the
-- next date (the same event_id sent again with an event_time across midnight). The fact loaded first stays;
-- these leave the date's staging table before anything is keyed, so facts and user activity both skip them, and
-- the activity counts them. event_id is unique within a date by the primary key; reuse further apart than a
-- day is not looked for (that would read every date's partition on every load).
delete from staging.:"events_table" as staged
using warehouse.fact_events as fact_events
where fact_events.date_key in (:'previous_date_key'::int, :'next_date_key'::int)
    and fact_events.event_id = staged.event_id;
