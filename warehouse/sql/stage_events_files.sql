-- grain: one row per committed lake file of the date's events partition, in commit order.
select
    lake_files.lake_file_id,
    lake_files.path,
    lake_files.row_count,
    lake_files.bytes
from ops.lake_files as lake_files
where lake_files.area = 'events'
    and lake_files.dt = :'date'::date
order by lake_files.lake_file_id;
