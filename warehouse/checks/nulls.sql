-- grain: one row: the date's fact rows, how many have a null in a critical column (event_id, event_time, user_key,
-- event_type, and amount on purchases), and the count per column. lib/checks.ts judges the share against
-- DQ_NULL_MAX_RATIO.
-- facts_table is the date's partition (facts_partition true: every row is the date's) or, before its first load,
-- fact_events with the date_key filter (false): lib/checks.ts factsSource.
-- in psql: psql "$DATABASE_URL" -v date_key=20241217 -v facts_table=fact_events_20241217 -v facts_partition=true -f warehouse/checks/nulls.sql
select
    count(*) as count_rows,
    count(*) filter (
        where f.event_id is null
        or f.event_time is null
        or f.user_key is null
        or f.event_type is null
        or (f.event_type = 'purchase' and f.amount is null)
    ) as count_rows_with_nulls,
    count(*) filter (where f.event_id is null) as event_id,
    count(*) filter (where f.event_time is null) as event_time,
    count(*) filter (where f.user_key is null) as user_key,
    count(*) filter (where f.event_type is null) as event_type,
    count(*) filter (where f.event_type = 'purchase' and f.amount is null) as purchase_amount
from warehouse.:"facts_table" as f
where :'facts_partition'::boolean or f.date_key = :'date_key'::int;
