-- grain: one row: the records landed for the date (lake manifest) against its fact rows, with what the date's last
-- stage run recorded (ops.staged_dates): the repeated event_ids it collapsed and the rows it set aside.
-- a producer retry lands the same event_id twice and it becomes one fact; rows PostgreSQL refused were set aside.
-- the stage run recorded both, so each event_id counts once whatever the staging table still holds. dates staged
-- before ops.staged_dates existed fall back to the staging table's repeated event_ids while it is there
-- (has_staging; reconciliation_staging_duplicates.sql counts them).
-- facts_table is the date's partition (facts_partition true: every row is the date's) or, before its first load,
-- fact_events with the date_key filter (false): lib/checks.ts factsSource.
-- in psql: psql "$DATABASE_URL" -v date=2024-12-17 -v date_key=20241217 -v facts_table=fact_events_20241217 -v facts_partition=true -f warehouse/checks/reconciliation.sql
with landed as (
    select coalesce(sum(lf.row_count), 0) as count_landed
    from ops.lake_files as lf
    where lf.area = 'events'
        and lf.dt = :'date'::date
),

facts as (
    select count(*) as count_facts
    from warehouse.:"facts_table" as f
    where :'facts_partition'::boolean or f.date_key = :'date_key'::int
)

select
    l.count_landed,
    fa.count_facts,
    sd.duplicates as staged_duplicates,
    sd.rows_set_aside,
    to_regclass('staging.events_' || :'date_key'::int) is not null as has_staging
from landed as l
cross join facts as fa
left join ops.staged_dates as sd on sd.dt = :'date'::date;
