-- grain: one row per loaded date in ops.date_loads. needs_reload is cleared unless lake files for the date were
-- committed that this load did not stage (they landed while it ran); reload_reason and marked_at then say so,
-- and otherwise keep the last marking as history. loaded_file_ids: the files this load's facts come from (an
-- incremental stage run's files and the files loaded before it); loaded_*: ops.staged_dates as this load leaves it,
-- the counts the next incremental stage run adds to. marts_stale: set when this load changed the date's facts
-- (facts_changed), else left as it was (a mart refresh clears it).
with unstaged_files as (
    select count(*)::int as count_unstaged
    from ops.lake_files as lake_files
    where lake_files.area = 'events'
        and lake_files.dt = :'date'::date
        and lake_files.lake_file_id <> all (:'staged_file_ids'::bigint[])
),

stage_counts as (
    select
        staged_dates.rows_read,
        staged_dates.rows_set_aside,
        staged_dates.duplicates,
        staged_dates.rows_staged
    from (select) as one_row
    left join ops.staged_dates as staged_dates on staged_dates.dt = :'date'::date
)

insert into ops.date_loads as date_loads (
    dt, first_loaded_at, last_loaded_at, needs_reload, reload_reason, marked_at, loaded_file_ids,
    loaded_rows_read, loaded_rows_set_aside, loaded_duplicates, loaded_rows_staged, marts_stale
)
select
    :'date'::date,
    now(),
    now(),
    unstaged_files.count_unstaged > 0,
    case
        when unstaged_files.count_unstaged > 0
            then format('%s lake file(s) committed while the date was loading', unstaged_files.count_unstaged)
    end,
    case when unstaged_files.count_unstaged > 0 then now() end,
    :'staged_file_ids'::bigint[],
    stage_counts.rows_read,
    stage_counts.rows_set_aside,
    stage_counts.duplicates,
    stage_counts.rows_staged,
    true
from unstaged_files
cross join stage_counts
on conflict (dt) do update
set
    first_loaded_at = coalesce(date_loads.first_loaded_at, excluded.first_loaded_at),
    last_loaded_at = excluded.last_loaded_at,
    needs_reload = excluded.needs_reload,
    reload_reason = case when excluded.needs_reload then excluded.reload_reason else date_loads.reload_reason end,
    marked_at = case when excluded.needs_reload then excluded.marked_at else date_loads.marked_at end,
    loaded_file_ids = excluded.loaded_file_ids,
    loaded_rows_read = excluded.loaded_rows_read,
    loaded_rows_set_aside = excluded.loaded_rows_set_aside,
    loaded_duplicates = excluded.loaded_duplicates,
    loaded_rows_staged = excluded.loaded_rows_staged,
    marts_stale = date_loads.marts_stale or :'facts_changed'::boolean;
