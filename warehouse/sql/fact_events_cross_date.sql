-- grain: one row per staged event_id of the date that fact_events already holds under the previous or the next
-- date (the same event_id sent again with an event_time across midnight). The fact loaded first stays: the load
-- removes these from the date's staging table and from the facts it wrote (activities/facts.ts), so facts and user
-- activity both skip them, and the activity counts them. event_id is unique within a date by the primary key;
-- reuse further apart than a day is not looked for (that would read every date's partition on every load).
-- Only reads: on a date's first load it runs on a connection of its own while the load indexes the date's new
-- partition and writes its user activity (a hash join of the staged event_ids with the neighbouring partitions,
-- one core for about 1.5 s at 1M events).
select distinct staged.event_id
from staging.:"events_table" as staged
inner join warehouse.fact_events as fact_events on fact_events.event_id = staged.event_id
where fact_events.date_key in (:'previous_date_key'::int, :'next_date_key'::int);
