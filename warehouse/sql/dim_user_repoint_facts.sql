-- grain: one row per fact whose user version moved: it points at a dim_user version that vanished or shrank
-- (staging moved table) and its event_time now falls in another version of the same user. A moved version's
-- facts lie in its old range [old_from, old_to), so the ones to move lie in the part of it before kept_from and
-- the part from kept_to on. Each part is read through the user_key index of only the date partitions it spans:
-- a fact's date_key is the UTC date of its event_time (the lake's dt, which fact_events.sql relies on as well),
-- and the partitions outside a part's dates are pruned at run time. A current version closed by the day's change
-- thus reads the partitions from the change's date on, not every date loaded so far. A part whose dates have no
-- partition at all is left out before any index is read: run-time pruning needs two or more partitions to choose
-- from, so with one partition (the second date's load, whose own partition comes with its facts) every closed
-- version probed it by user_key and read its facts: 12,643 probes and 1.2 s at 3M events a day, for nothing.
with fact_dates as (
    -- the date keys that have a fact partition (fact_events_YYYYMMDD, see fact_partition_create), as one multirange
    -- that a part's dates are tested against by binary search; a partition named otherwise counts as every date
    select range_agg(
        case
            when partitions.relname ~ '^fact_events_[0-9]{8}$'
                then int4range(substr(partitions.relname, 13)::int, substr(partitions.relname, 13)::int, '[]')
            else int4range(null, null)
        end
    ) as date_keys
    from pg_catalog.pg_inherits as inherits
    inner join pg_catalog.pg_class as partitions on partitions.oid = inherits.inhrelid
    where inherits.inhparent = 'warehouse.fact_events'::regclass
),

outside_ranges as (
    select
        moved.user_key,
        moved.user_id,
        moved.old_from as outside_from,
        least(moved.kept_from, moved.old_to) as outside_to
    from staging.:"moved_table" as moved
    where moved.old_from < least(moved.kept_from, moved.old_to)

    union all

    select
        moved.user_key,
        moved.user_id,
        greatest(moved.kept_to, moved.old_from) as outside_from,
        moved.old_to as outside_to
    from staging.:"moved_table" as moved
    where greatest(moved.kept_to, moved.old_from) < moved.old_to
),

outside_dates as (
    select
        outside_ranges.user_key,
        outside_ranges.user_id,
        outside_ranges.outside_from,
        outside_ranges.outside_to,
        to_char(outside_ranges.outside_from at time zone 'UTC', 'YYYYMMDD')::int as from_date_key,
        case
            when outside_ranges.outside_to = 'infinity' then 99991231
            else to_char(outside_ranges.outside_to at time zone 'UTC', 'YYYYMMDD')::int
        end as to_date_key
    from outside_ranges
),

outside_partitions as (
    select outside_dates.*
    from outside_dates
    where (select fact_dates.date_keys from fact_dates)
        && int4range(outside_dates.from_date_key, outside_dates.to_date_key, '[]')
),

repointed as (
    update warehouse.fact_events as fact_events
    set
        user_key = dim_user.user_key,
        loaded_at = now()
    from outside_partitions
    inner join warehouse.dim_user as dim_user on dim_user.user_id = outside_partitions.user_id
    where fact_events.user_key = outside_partitions.user_key
        and fact_events.date_key >= outside_partitions.from_date_key
        and fact_events.date_key <= outside_partitions.to_date_key
        and fact_events.event_time >= outside_partitions.outside_from
        and fact_events.event_time < outside_partitions.outside_to
        -- the moved users' versions through dim_user_version, not a scan of all of dim_user
        and dim_user.user_id = any(array(select distinct moved.user_id from staging.:"moved_table" as moved))
        and fact_events.event_time >= dim_user.valid_from
        and (dim_user.valid_to is null or fact_events.event_time < dim_user.valid_to)
        and dim_user.user_key <> fact_events.user_key
    returning 1
)

select count(*)::int as count_repointed
from repointed;
