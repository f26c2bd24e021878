-- grain: one row: the records the lake manifest holds for the date, dead-lettered and landed as events.
-- lib/checks.ts judges the dead-lettered share against DQ_DEAD_LETTER_MAX_RATIO.
-- in psql: psql "$DATABASE_URL" -v date=2024-12-17 -f warehouse/checks/dead_letters.sql
select
    coalesce(sum(lf.row_count) filter (where lf.area = 'dead_letter'), 0) as count_dead,
    coalesce(sum(lf.row_count) filter (where lf.area = 'events'), 0) as count_landed
from ops.lake_files as lf
where lf.dt = :'date'::date;
