-- grain: one row: the date's facts whose user, device or date row is missing, and the SCD2 shape of the whole
-- user dimension (overlapping versions, gaps between versions, users without exactly one current version).
-- the date's facts are collapsed to one row per (user_key, device_key) before the dimension look-ups, so the
-- dimensions' size does not matter there; the versions are ordered by the (user_id, valid_from) index.
-- in psql: psql "$DATABASE_URL" -v date_key=20241217 -f warehouse/checks/integrity.sql
with day_facts as (
    select
        f.user_key,
        f.device_key,
        count(*) as facts
    from warehouse.fact_events as f
    where f.date_key = :'date_key'::int
    group by f.user_key, f.device_key
),

-- one primary-key probe of dim_user and of dim_device per (user_key, device_key) of the date, whatever their size
day_keys as (
    select
        df.facts,
        exists (select from warehouse.dim_user as du where du.user_key = df.user_key) as has_user,
        exists (select from warehouse.dim_device as dv where dv.device_key = df.device_key) as has_device
    from day_facts as df
),

orphans as (
    select
        coalesce(sum(dk.facts) filter (where not dk.has_user), 0)::bigint as missing_user,
        coalesce(sum(dk.facts) filter (where not dk.has_device), 0)::bigint as missing_device,
        case
            when exists (select from warehouse.dim_date as dd where dd.date_key = :'date_key'::int) then 0
            else coalesce(sum(dk.facts), 0)
        end::bigint as missing_date
    from day_keys as dk
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
