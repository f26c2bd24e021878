-- grain: one row per staging table of another date that is safe to drop: the date's last load succeeded more
-- than a day ago and no re-load is pending. Staging is transient; this keeps it from growing with every date.
select
    tables.table_name,
    date_loads.dt
from information_schema.tables as tables
inner join ops.date_loads as date_loads
    on tables.table_name in (
        'events_' || to_char(date_loads.dt, 'YYYYMMDD'),
        'event_files_' || to_char(date_loads.dt, 'YYYYMMDD'),
        'user_staged_' || to_char(date_loads.dt, 'YYYYMMDD'),
        'event_devices_' || to_char(date_loads.dt, 'YYYYMMDD')
    )
where tables.table_schema = 'staging'
    and date_loads.dt <> :'date'::date
    and not date_loads.needs_reload
    and date_loads.last_loaded_at < now() - interval '1 day'
order by date_loads.dt, tables.table_name;
