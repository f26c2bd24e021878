-- grain: one row per day of the volume check's window: the date and the history_days days before it, oldest first,
-- with the day's fact rows and whether the day's own latest volume check failed (is_anomalous). lib/volume.ts builds
-- the baseline from these rows and judges the date against it.
-- the date's rows are counted in its partition; the days before come from date_totals, which the fact loads keep
-- equal to them: one row per day of the window, however long the history and however many users a day has. a day
-- without rows has 0.
-- facts_table is the date's partition (facts_partition true: every row is the date's) or, before its first load,
-- fact_events with the date_key filter (false): lib/checks.ts factsSource.
-- in psql: psql "$DATABASE_URL" -v date=2024-12-17 -v date_key=20241217 -v history_days=56 -v facts_table=fact_events_20241217 -v facts_partition=true -f warehouse/checks/volume.sql
with history_days as (
    select g::date as dt
    from generate_series(:'date'::date - :'history_days'::int, :'date'::date, interval '1 day') as g
),

day_counts as (
    select
        :'date_key'::int as date_key,
        count(*) as count_rows
    from warehouse.:"facts_table" as f
    where :'facts_partition'::boolean or f.date_key = :'date_key'::int
    union all
    select
        dt.date_key,
        dt.events as count_rows
    from warehouse.date_totals as dt
    where dt.date_key >= to_char(:'date'::date - :'history_days'::int, 'YYYYMMDD')::int
        and dt.date_key < :'date_key'::int
),

latest_volume_checks as (
    select distinct on (r.dt)
        r.dt,
        r.status
    from ops.dq_results as r
    where r.dt between :'date'::date - :'history_days'::int and :'date'::date - 1
        and r.check_name = 'volume'
    order by r.dt, r.checked_at desc, r.dq_result_id desc
)

select
    to_char(hd.dt, 'YYYY-MM-DD') as date,
    coalesce(dc.count_rows, 0) as count_rows,
    coalesce(lvc.status = 'fail', false) as is_anomalous
from history_days as hd
left join day_counts as dc on dc.date_key = to_char(hd.dt, 'YYYYMMDD')::int
left join latest_volume_checks as lvc on lvc.dt = hd.dt
order by hd.dt;
