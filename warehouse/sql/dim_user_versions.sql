-- grain: users_table, one row per user with events in the date's staging table: their events on the date (events,
-- attribute_events, page_views, add_to_carts, purchases, first_staged_at, last_staged_at: the date's fact load
-- takes its user activity rows from here on a first load, warehouse/sql/user_activity_days_staged.sql), and
-- is_rebuilt when their versions are rebuilt;
-- history_table and existing_table, the rebuilt users' change log rows and dim_user versions (is_first
-- on each user's earliest); desired_table, one row per dim_user version that each rebuilt user should have, and
-- versions_table, the same rows with the key of the version each continues. The versions are
-- a pure function of the user's change log (warehouse.user_changes) and the earliest event loaded for the user,
-- so any load order and any number of re-loads give the same versions. Rebuilt are the staged users whose inputs
-- changed: changes new to the change log in this load (user_changes.sql, same transaction), no dim_user version
-- yet, or an earliest event before their first version. For every other staged user both inputs are what
-- dim_user was last built from, so a rebuild would change nothing; skipping them keeps the cost in the day's
-- changes, not in the users' history. Each version carries the user_key of the existing version it continues
-- (same valid_from, else the user's first version for the first one), or NULL when dim_user does not hold it yet.
drop table if exists staging.:"users_table";

create unlogged table staging.:"users_table" with (autovacuum_enabled = false) as
with staged_users as (
    select
        staged.user_id,
        count(*) as events,
        count(*) filter (
            where staged.event_type in ('user_signup', 'profile_update', 'plan_change')
        ) as attribute_events,
        count(*) filter (where staged.event_type = 'page_view') as page_views,
        count(*) filter (where staged.event_type = 'add_to_cart') as add_to_carts,
        count(*) filter (where staged.event_type = 'purchase') as purchases,
        min(staged.event_time) as first_staged_at,
        max(staged.event_time) as last_staged_at
    from staging.:"events_table" as staged
    group by staged.user_id
),

changed_users as (
    select distinct changes.user_id
    from staging.:"changes_table" as changes
    where changes.is_new
)

select
    staged_users.user_id,
    staged_users.events,
    staged_users.attribute_events,
    staged_users.page_views,
    staged_users.add_to_carts,
    staged_users.purchases,
    staged_users.first_staged_at,
    staged_users.last_staged_at,
    staged_users.user_id in (select changed_users.user_id from changed_users)
    or not exists (
        select from warehouse.dim_user as dim_user
        where dim_user.user_id = staged_users.user_id
            and dim_user.valid_from <= staged_users.first_staged_at
    ) as is_rebuilt
from staged_users;

analyze staging.:"users_table";

-- The rebuilt users' change log and existing versions, each read through its index with = any of an array (one
-- descent per user; a join to the users is planned as a scan of the whole change log or dim_user once the day's
-- users are many, and the cost would then follow the history instead of the day), into analyzed tables so that
-- the versions query below is planned on their real sizes.
drop table if exists staging.:"history_table";

create unlogged table staging.:"history_table" with (autovacuum_enabled = false) as
select
    user_changes.user_id,
    user_changes.event_time,
    user_changes.event_id,
    user_changes.email,
    user_changes.plan,
    user_changes.country
from warehouse.user_changes as user_changes
where user_changes.user_id = any(array(
    select staged_users.user_id
    from staging.:"users_table" as staged_users
    where staged_users.is_rebuilt
));

analyze staging.:"history_table";

drop table if exists staging.:"existing_table";

create unlogged table staging.:"existing_table" with (autovacuum_enabled = false) as
select
    dim_user.user_key,
    dim_user.user_id,
    dim_user.valid_from,
    dim_user.valid_to,
    row_number() over (partition by dim_user.user_id order by dim_user.valid_from) = 1 as is_first
from warehouse.dim_user as dim_user
where dim_user.user_id = any(array(
    select staged_users.user_id
    from staging.:"users_table" as staged_users
    where staged_users.is_rebuilt
));

analyze staging.:"existing_table";

-- The desired versions go into an analyzed table before they are matched with the existing ones: as a CTE the
-- planner knew neither their count nor their users (a join of two derived tables on user_id is estimated with 200
-- distinct users), and at 3M events a day it planned 14.6M desired versions for 93,052 and 8.4M matches for
-- 23,087, then sized its hash tables for them (a 16M-bucket table of 132 MB, another split into 8 batches on
-- disk): 1.4 s at 3M and 12 s at 10M events a day, most of it on day 2, the first day with existing versions.
drop table if exists staging.:"desired_table";

create unlogged table staging.:"desired_table" with (autovacuum_enabled = false) as
with touched_users as (
    select
        staged_users.user_id,
        staged_users.first_staged_at
    from staging.:"users_table" as staged_users
    where staged_users.is_rebuilt
),

first_seen as (
    -- the user's earliest event loaded so far: the existing first version starts there
    select
        touched_users.user_id,
        least(touched_users.first_staged_at, min(existing_versions.valid_from)) as first_seen_at
    from touched_users
    left join staging.:"existing_table" as existing_versions on existing_versions.user_id = touched_users.user_id
    group by touched_users.user_id, touched_users.first_staged_at
),

changes_per_instant as (
    -- of several changes at one instant, the last by event_id is the state from then on
    select distinct on (history.user_id, history.event_time)
        history.user_id,
        history.event_time,
        history.event_id,
        history.email,
        history.plan,
        history.country
    from staging.:"history_table" as history
    order by history.user_id, history.event_time, history.event_id desc
),

changes_compared as (
    select
        changes_per_instant.user_id,
        changes_per_instant.event_time,
        changes_per_instant.event_id,
        changes_per_instant.email,
        changes_per_instant.plan,
        changes_per_instant.country,
        row_number() over by_time = 1
        or (changes_per_instant.email, changes_per_instant.plan, changes_per_instant.country) is distinct from (
            lag(changes_per_instant.email) over by_time,
            lag(changes_per_instant.plan) over by_time,
            lag(changes_per_instant.country) over by_time
        ) as is_new_version
    from changes_per_instant
    window by_time as (partition by changes_per_instant.user_id order by changes_per_instant.event_time)
),

attribute_versions as (
    select
        changes_compared.user_id,
        changes_compared.event_time as changed_at,
        lead(changes_compared.event_time) over by_time as valid_to,
        row_number() over by_time = 1 as is_first,
        changes_compared.email,
        changes_compared.plan,
        changes_compared.country,
        changes_compared.event_id as source_event_id
    from changes_compared
    where changes_compared.is_new_version
    window by_time as (partition by changes_compared.user_id order by changes_compared.event_time)
),

desired_versions as (
    -- users with attributes: the first version reaches back to their earliest event (a completed inferred member)
    select
        attribute_versions.user_id,
        case
            when attribute_versions.is_first then least(attribute_versions.changed_at, first_seen.first_seen_at)
            else attribute_versions.changed_at
        end as valid_from,
        attribute_versions.valid_to,
        attribute_versions.is_first,
        attribute_versions.email,
        attribute_versions.plan,
        attribute_versions.country,
        false as is_inferred,
        attribute_versions.source_event_id
    from attribute_versions
    inner join first_seen on first_seen.user_id = attribute_versions.user_id

    union all

    -- users without attributes yet: one inferred member from their earliest event on
    select
        first_seen.user_id,
        first_seen.first_seen_at as valid_from,
        null::timestamptz as valid_to,
        true as is_first,
        null::text as email,
        null::text as plan,
        null::text as country,
        true as is_inferred,
        null::uuid as source_event_id
    from first_seen
    where not exists (
        select from changes_per_instant where changes_per_instant.user_id = first_seen.user_id
    )
)

select
    desired_versions.user_id,
    desired_versions.valid_from,
    desired_versions.valid_to,
    desired_versions.is_first,
    desired_versions.email,
    desired_versions.plan,
    desired_versions.country,
    desired_versions.is_inferred,
    desired_versions.source_event_id
from desired_versions;

analyze staging.:"desired_table";

drop table if exists staging.:"versions_table";

create unlogged table staging.:"versions_table" with (autovacuum_enabled = false) as
with same_start_matches as (
    select
        desired_versions.user_id,
        desired_versions.valid_from,
        existing_versions.user_key
    from staging.:"desired_table" as desired_versions
    inner join staging.:"existing_table" as existing_versions
        on existing_versions.user_id = desired_versions.user_id
        and existing_versions.valid_from = desired_versions.valid_from
),

first_version_matches as (
    -- a first version whose start moved earlier keeps the key of the user's existing first version
    select
        desired_versions.user_id,
        desired_versions.valid_from,
        existing_versions.user_key
    from staging.:"desired_table" as desired_versions
    inner join staging.:"existing_table" as existing_versions
        on existing_versions.user_id = desired_versions.user_id
        and existing_versions.is_first
    where desired_versions.is_first
        and not exists (
            select from same_start_matches where same_start_matches.user_key = existing_versions.user_key
        )
        and not exists (
            select from same_start_matches
            where same_start_matches.user_id = desired_versions.user_id
                and same_start_matches.valid_from = desired_versions.valid_from
        )
)

select
    coalesce(same_start_matches.user_key, first_version_matches.user_key) as user_key,
    desired_versions.user_id,
    desired_versions.valid_from,
    desired_versions.valid_to,
    desired_versions.valid_to is null as is_current,
    desired_versions.email,
    desired_versions.plan,
    desired_versions.country,
    desired_versions.is_inferred,
    desired_versions.source_event_id
from staging.:"desired_table" as desired_versions
left join same_start_matches
    on same_start_matches.user_id = desired_versions.user_id
    and same_start_matches.valid_from = desired_versions.valid_from
left join first_version_matches
    on first_version_matches.user_id = desired_versions.user_id
    and first_version_matches.valid_from = desired_versions.valid_from;

create index on staging.:"versions_table" (user_key);

create index on staging.:"versions_table" (user_id);

analyze staging.:"versions_table";
