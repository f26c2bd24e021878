-- grain: none; the empty scratch table a re-load keys the date's staged events into, with fact_events' columns.
drop table if exists staging.:"facts_table";

create unlogged table staging.:"facts_table" (like warehouse.fact_events including defaults)
with (autovacuum_enabled = false);
