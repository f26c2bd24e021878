-- grain: one row per record of the date's committed lake files; the rows arrive afterwards by COPY, and
-- stage_events_dedupe.sql then keeps one row per event_id. Beside it, one row per lake file staged: the
-- manifest as this run saw it (only the files of file_ids when given: a re-stage restoring what an earlier run
-- read). Both are rebuilt by every stage run of the date.
drop table if exists staging.:"events_table";

drop table if exists staging.:"files_table";

-- what the loads took from the date's previous staging instead of its rows: its users (dim_user_versions.sql),
-- which the fact load must no longer read, and its device triples (stage_events_devices.sql)
drop table if exists staging.:"users_table";

drop table if exists staging.:"devices_table";

create unlogged table staging.:"events_table" (like staging.events including all)
with (autovacuum_enabled = false);

comment on table staging.:"events_table" is 'The date''s lake records, one row per event_id (the first record by kafka_partition, kafka_offset); rebuilt by every stage run of the date, dropped a day after its load.';

create unlogged table staging.:"files_table" with (autovacuum_enabled = false) as
select
    lake_files.lake_file_id,
    lake_files.path,
    lake_files.row_count,
    lake_files.bytes
from ops.lake_files as lake_files
where lake_files.area = 'events'
    and lake_files.dt = :'date'::date
    and (:'file_ids'::bigint[] is null or lake_files.lake_file_id = any(:'file_ids'::bigint[]));

comment on table staging.:"files_table" is 'The lake files (ops.lake_files) the last stage run of the date read, with their record counts.';
