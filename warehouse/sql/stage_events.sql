-- grain: one row per record of the date's committed lake files, duplicate event_ids included (later steps
-- collapse them). Rebuilt by every stage run of the date; the rows arrive afterwards by COPY.
drop table if exists staging.:"events_table";

create unlogged table staging.:"events_table" (like staging.events including all)
with (autovacuum_enabled = false);
