-- grain: one row: the date's facts whose user, device or date row is missing, and the SCD2 shape of the whole
-- user dimension (overlapping versions, gaps between versions, users without exactly one current version).
-- the versions are ordered by the (user_id, valid_from) index.
-- in psql: psql "$DATABASE_URL" -v date_key=20241217 -f warehouse/checks/integrity.sql
with day_facts as (
    select
        f.user_key,
        f.device_key,
        f.date_key
    from warehouse.fact_events as f
    where f.date_key = :'date_key'::int
),

orphans as (
    select
        count(*) filter (where du.user_key is null) as missing_user,
        count(*) filter (where dv.device_key is null) as missing_device,
        count(*) filter (where dd.date_key is null) as missing_date
    from day_facts as df
    left join warehouse.dim_user as du on du.user_key = df.user_key
    left join warehouse.dim_device as dv on dv.device_key = df.device_key
    left join warehouse.dim_date as dd on dd.date_key = df.date_key
),

ordered_versions as (
    select
        du.user_id,
        du.valid_from,
        du.valid_to,
        lead(du.valid_from) over (partition by du.user_id order by du.valid_from, du.user_key) as next_valid_from
    from warehouse.dim_user as du
),

scd2 as (
    select
        count(*) filter (
            where ov.next_valid_from is not null
            and coalesce(ov.valid_to, 'infinity') > ov.next_valid_from
        ) as overlaps,
        count(*) filter (where ov.next_valid_from is not null and ov.valid_to < ov.next_valid_from) as gaps
    from ordered_versions as ov
),

currents as (
    select count(*) as users_without_one_current
    from (
        select du.user_id
        from warehouse.dim_user as du
        group by du.user_id
        having count(*) filter (where du.is_current) <> 1
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
