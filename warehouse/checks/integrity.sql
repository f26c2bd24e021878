-- grain: one row: the date's facts whose user, device or date row is missing, and the SCD2 shape of the date's
-- users (overlapping versions, gaps between versions, users without exactly one current version).
-- the date's facts are collapsed to one row per (user_key, device_key) before the dimension look-ups, so the
-- dimensions' size does not matter there. the SCD2 shape is checked for the users with facts on the date, whose
-- versions are the ones a load of the date writes (dimension loads only touch the users of their staged events),
-- read through the (user_id, valid_from) index: the check follows the date's users, not every user the warehouse
-- holds. overlaps and a second current version are refused on write anyway (warehouse.dim_user_check_overlaps
-- and the dim_user_one_current index); this finds what a load could still leave behind: a gap, no current row.
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

day_users as (
    select distinct du.user_id
    from day_facts as df
    inner join warehouse.dim_user as du on du.user_key = df.user_key
),

day_versions as (
    select
        du.user_id,
        du.valid_from,
        du.valid_to,
        du.is_current,
        du.user_key
    from day_users as dus
    inner join warehouse.dim_user as du on du.user_id = dus.user_id
),

ordered_versions as (
    select
        dv.user_id,
        dv.valid_from,
        dv.valid_to,
        lead(dv.valid_from) over (partition by dv.user_id order by dv.valid_from, dv.user_key) as next_valid_from
    from day_versions as dv
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
        select dv.user_id
        from day_versions as dv
        group by dv.user_id
        having count(*) filter (where dv.is_current) <> 1
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
