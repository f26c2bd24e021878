-- grain: one row: the date's facts whose user, device or date row is missing, and the SCD2 shape of the user
-- dimension (overlapping versions, gaps between versions, users without exactly one current version).
-- the date's facts are collapsed to one row per (user_key, device_key) before the dimension look-ups.
-- the SCD2 shape is read for the users with facts on the date (their user_days rows, the users whose versions the
-- date's load writes) while dim_user's exclusion constraint (no overlapping ranges) and its unique index on the
-- current version are in place and valid: they keep every version from overlapping another or being a second
-- current one. without either guard the whole dimension is read.
-- in psql: psql "$DATABASE_URL" -v date_key=20241217 -f warehouse/checks/integrity.sql
with guard as materialized (
    select
        exists (
            select
            from pg_constraint as c
            where c.conrelid = 'warehouse.dim_user'::regclass
                and c.conname = 'dim_user_no_overlap'
                and c.contype = 'x'
                and c.convalidated
        )
        and exists (
            select
            from pg_index as i
            inner join pg_class as c on c.oid = i.indexrelid
            where i.indrelid = 'warehouse.dim_user'::regclass
                and c.relname = 'dim_user_one_current'
                and i.indisunique
                and i.indisvalid
                and i.indisready
        ) as is_guarded
),

day_facts as (
    select
        f.user_key,
        f.device_key,
        count(*) as facts
    from warehouse.fact_events as f
    where f.date_key = :'date_key'::int
    group by f.user_key, f.device_key
),

orphans as (
    select
        coalesce(sum(df.facts) filter (where du.user_key is null), 0)::bigint as missing_user,
        coalesce(sum(df.facts) filter (where dv.device_key is null), 0)::bigint as missing_device,
        coalesce(sum(df.facts) filter (where dd.date_key is null), 0)::bigint as missing_date
    from day_facts as df
    left join warehouse.dim_user as du on du.user_key = df.user_key
    left join warehouse.dim_device as dv on dv.device_key = df.device_key
    left join warehouse.dim_date as dd on dd.date_key = :'date_key'::int
),

checked_versions as (
    select
        du.user_key,
        du.user_id,
        du.valid_from,
        du.valid_to,
        du.is_current
    from warehouse.dim_user as du
    cross join guard as g
    where g.is_guarded
        and du.user_id in (
            select ud.user_id
            from warehouse.user_days as ud
            where ud.date_key = :'date_key'::int
        )
    union all
    select
        du.user_key,
        du.user_id,
        du.valid_from,
        du.valid_to,
        du.is_current
    from warehouse.dim_user as du
    cross join guard as g
    where not g.is_guarded
),

versions as materialized (
    select
        cv.user_id,
        cv.valid_from,
        cv.valid_to,
        cv.is_current,
        lead(cv.valid_from) over (partition by cv.user_id order by cv.valid_from, cv.user_key) as next_valid_from
    from checked_versions as cv
),

scd2 as (
    select
        count(*) filter (
            where v.next_valid_from is not null
            and coalesce(v.valid_to, 'infinity') > v.next_valid_from
        ) as overlaps,
        count(*) filter (where v.next_valid_from is not null and v.valid_to < v.next_valid_from) as gaps
    from versions as v
),

currents as (
    select count(*) as users_without_one_current
    from (
        select v.user_id
        from versions as v
        group by v.user_id
        having count(*) filter (where v.is_current) <> 1
    ) as u
)

select
    o.missing_user,
    o.missing_device,
    o.missing_date,
    s.overlaps,
    s.gaps,
    c.users_without_one_current
from orphans as o
cross join scd2 as s
cross join currents as c;
