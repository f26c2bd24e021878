-- grain: one row per staged event_id of the date that a neighbouring date's partition (neighbour_table: the
-- previous or the next date's fact_events_YYYYMMDD) already holds: the same event_id sent again with an event_time
-- across midnight. The fact loaded first stays: the load removes these from the date's staging table and from the
-- facts it wrote (activities/facts.ts), so facts and user activity both skip them, and the activity counts them.
-- event_id is unique within a date by the primary key; reuse further apart than a day is not looked for (that
-- would read every date's partition on every load). Staging holds one row per event_id, so no row repeats.
-- The load runs this join only for a neighbour whose event_id filter gave the date's stage run no candidates it can
-- still use (activities/staging/filters.ts): a date loaded before filters were kept, or a filter that changed since.
-- Read as a merge join (activities/facts.ts sets the planner to it): the staged event_ids sorted, against the
-- neighbour's primary key read in order without its heap (the partition is vacuumed after its load). 1M staged
-- events against 1M facts: 1.18-1.24 s against 1.63-1.72 s for a hash join of the two, which builds a 55 MB hash
-- table and misses the cache on every probe. The partition is named rather than read through fact_events with a
-- date_key filter: that filter alone sends every row of the index to the heap (2.6 s).
-- in psql: PGOPTIONS='-c enable_hashjoin=off' psql "$DATABASE_URL" -v events_table=events_20241218
--   -v neighbour_table=fact_events_20241217 -f warehouse/sql/fact_events_cross_date.sql
select staged.event_id
from staging.:"events_table" as staged
inner join warehouse.:"neighbour_table" as neighbour on neighbour.event_id = staged.event_id;
