-- grain: one row: the date's facts whose user or date row is missing, and the SCD2 shape of the date's users
-- (overlapping versions, gaps between versions, users without exactly one current version). The facts whose device
-- row is missing are counted by warehouse/checks/integrity_devices.sql, a part of this check that runs beside it
-- (lib/checks.ts parts): it scans the date's facts, which this file does not.
-- facts_table is the date's partition (facts_partition true: every row is the date's, the date_key filter is bound
-- off) or, before its first load, fact_events (false). the date's facts are collapsed to one row per user_key, read
-- from the partition's user_key index alone, before the dim_user look-ups, so the dimension's size does not matter
-- there. the SCD2 shape is checked for the users with facts on the date (dimension loads only touch the users of
-- their staged events), from the version before the earliest one the date's facts use, read through the (user_id,
-- valid_from) index: the check follows the date's users, not every user the warehouse holds (reading all of
-- dim_user took 5.1-6.7 s instead of 1.9-2.3 s for 1M facts once the users had 30 versions each). overlaps and a
-- second current version are refused on write anyway (warehouse.dim_user_check_overlaps and the
-- dim_user_one_current index); this finds what a load could still leave behind: a gap, no current row.
-- in psql: psql "$DATABASE_URL" -v date_key=20241217 -v facts_table=fact_events_20241217 -v facts_partition=true -f warehouse/checks/integrity.sql
with day_facts as (
    select
        f.user_key,
        count(*) as facts
    from warehouse.:"facts_table" as f
    where :'facts_partition'::boolean or f.date_key = :'date_key'::int
    group by f.user_key
),

-- one primary-key probe of dim_user per user_key of the date, whatever its size; it also brings the version's user
-- and start
day_keys as (
    select
        df.facts,
        du.user_id,
        du.valid_from,
        du.user_id is not null as has_user
    from day_facts as df
    left join lateral (
        select
            u.user_id,
            u.valid_from
        from warehouse.dim_user as u
        where u.user_key = df.user_key
        -- a probe per key: pulled up into a join, the planner may hash every version dim_user holds
        offset 0
    ) as du on true
),

orphans as (
    select
        coalesce(sum(dk.facts) filter (where not dk.has_user), 0)::bigint as missing_user,
        case
            when exists (select from warehouse.dim_date as dd where dd.date_key = :'date_key'::int) then 0
            else coalesce(sum(dk.facts), 0)
        end::bigint as missing_date
    from day_keys as dk
),

-- each user of the date, with the start of the earliest version the date's facts point at
day_users as (
    select
        dk.user_id,
        min(dk.valid_from) as first_used_from
    from day_keys as dk
    where dk.has_user
    group by dk.user_id
),

-- every version of the date's users, with the start of the next, in one scan of the (user_id, valid_from) index
-- with = any of an array: one descent per user, the versions in index order, so the window needs no sort. it
-- replaced two descents per user, one for the version before the earliest the date uses and one for the versions
-- from there, which took 4.06-4.18 s against 2.37-2.54 s for this whole check on day 2 of 10M events (321,196 users,
-- 464,738 versions read, 436,374 judged; psql, alternating). only a user's older versions are read beyond what
-- is judged, a few index entries and heap rows each.
user_versions as (
    select
        du.user_id,
        du.valid_from,
        du.valid_to,
        du.is_current,
        lead(du.valid_from) over (partition by du.user_id order by du.valid_from) as next_valid_from
    from warehouse.dim_user as du
    where du.user_id = any(array(select dus.user_id from day_users as dus))
),

-- the versions judged: from the one before the earliest the date uses onward, i.e. those whose next version
-- starts at or after it, and the last. every version a load of the date writes (its changes, the version each one
-- splits, later versions it rebuilds); not the user's older history, which the loads of its own dates wrote and
-- their checks judged
day_versions as (
    select
        uv.user_id,
        uv.valid_from,
        uv.valid_to,
        uv.is_current,
        uv.next_valid_from
    from user_versions as uv
    inner join day_users as dus on dus.user_id = uv.user_id
    where uv.next_valid_from is null or uv.next_valid_from >= dus.first_used_from
),

scd2 as (
    select
        count(*) filter (
            where dv.next_valid_from is not null
            and coalesce(dv.valid_to, 'infinity') > dv.next_valid_from
        ) as overlaps,
        count(*) filter (where dv.next_valid_from is not null and dv.valid_to < dv.next_valid_from) as gaps
    from day_versions as dv
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
    o.missing_date,
    s.overlaps,
    s.gaps,
    c.users_without_one_current
from orphans as o
cross join scd2 as s
cross join currents as c;
