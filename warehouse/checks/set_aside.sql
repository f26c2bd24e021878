-- grain: one row: the lake rows PostgreSQL refused while staging the date (or that sat in unreadable lake files),
-- which the date loaded without: their number (from its last stage run), the unreadable files among
-- ops.rejected_rows, and the reasons of the first three.
-- in psql: psql "$DATABASE_URL" -v date=2024-12-17 -f warehouse/checks/set_aside.sql
with unreadable_files as (
    select count(*) as count_files
    from ops.rejected_rows as rr
    where rr.dt = :'date'::date
        and rr.row_number is null
),

first_rejections as (
    select rr.reason
    from ops.rejected_rows as rr
    where rr.dt = :'date'::date
    order by rr.rejected_row_id
    limit 3
),

reasons as (
    select string_agg(distinct fr.reason, '; ') as reasons
    from first_rejections as fr
)

select
    coalesce(sd.rows_set_aside, 0) as count_set_aside,
    uf.count_files,
    r.reasons
from unreadable_files as uf
cross join reasons as r
left join ops.staged_dates as sd on sd.dt = :'date'::date;
