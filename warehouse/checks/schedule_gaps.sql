-- grain: one row: the days the schedule should have run before the date, from schedule_start (DQ_SCHEDULE_START)
-- or else the first date a scheduled run loaded, and those without a successful whole run. history never meant to
-- run is not a gap; no first day (no schedule_start, no scheduled run yet) gives 0 days and a null first_day.
-- in psql: psql "$DATABASE_URL" -v date=2024-12-17 -v schedule_start= -f warehouse/checks/schedule_gaps.sql
-- (schedule_start empty for none, or e.g. -v schedule_start=2024-12-01)
with first_day as (
    select coalesce(
        nullif(:'schedule_start', '')::date,
        (
            select min(pr.dt)
            from ops.pipeline_runs as pr
            where pr.step = 'pipeline'
                and pr.details @> '{"scheduled": true}'
        )
    ) as dt
),

days as (
    select g::date as dt
    from first_day as fd
    cross join generate_series(fd.dt, :'date'::date - 1, interval '1 day') as g
),

succeeded_days as (
    select distinct pr.dt
    from ops.pipeline_runs as pr
    where pr.step = 'pipeline'
        and pr.status = 'succeeded'
        and pr.dt < :'date'::date
)

select
    count(*) as count_days,
    count(*) filter (where sd.dt is null) as count_missing,
    coalesce(array_agg(to_char(d.dt, 'YYYY-MM-DD') order by d.dt) filter (where sd.dt is null), '{}') as missing_days,
    (select to_char(fd.dt, 'YYYY-MM-DD') from first_day as fd) as first_day
from days as d
left join succeeded_days as sd on sd.dt = d.dt;
