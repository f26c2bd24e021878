-- grain: one row per lake file the stage run reads, in commit order.
select
    staged_files.lake_file_id,
    staged_files.path,
    staged_files.row_count,
    staged_files.bytes
from staging.:"files_table" as staged_files
order by staged_files.lake_file_id;
