-- grain: one row per existing dim_user version of the touched users that loses facts: it vanished from the
-- desired versions, or its range shrank. Facts pointing at these keys outside [kept_from, kept_to) are
-- re-pointed by dim_user_repoint_facts.sql; a vanished key keeps nothing (kept_from = kept_to = infinity).
-- old_from and old_to are the version's range before this load: its facts lie in it.
drop table if exists staging.:"moved_table";

-- The touched users' versions come from existing_table (dim_user_versions.sql), which read every version of the
-- rebuilt users in this transaction under the dim_user lock: the touched users are those users (each gets at least
-- one desired version), and no other load has written dim_user since. A second read of dim_user for them took
-- 0.39-0.52 s on day 2 of 10M events (321k users, 77k existing versions; psql).
create unlogged table staging.:"moved_table" with (autovacuum_enabled = false) as
select
    existing.user_key,
    existing.user_id,
    versions.user_key is null as is_vanished,
    existing.valid_from as old_from,
    coalesce(existing.valid_to, 'infinity') as old_to,
    coalesce(versions.valid_from, 'infinity') as kept_from,
    case when versions.user_key is null then 'infinity' else coalesce(versions.valid_to, 'infinity') end as kept_to
from staging.:"existing_table" as existing
left join staging.:"versions_table" as versions on versions.user_key = existing.user_key
where versions.user_key is null
    or versions.valid_from > existing.valid_from
    or coalesce(versions.valid_to, 'infinity') < coalesce(existing.valid_to, 'infinity');

analyze staging.:"moved_table";

-- versions that vanished (a late change made them redundant); their facts move in the re-point step
delete from warehouse.dim_user as dim_user
using staging.:"moved_table" as moved
where moved.user_key = dim_user.user_key
    and moved.is_vanished;

-- versions that continue with another range or other attributes (a split, a completed inferred member); read
-- through dim_user_pkey, one index descent per kept version, as above
update warehouse.dim_user as dim_user
set
    valid_from = versions.valid_from,
    valid_to = versions.valid_to,
    is_current = versions.is_current,
    email = versions.email,
    plan = versions.plan,
    country = versions.country,
    is_inferred = versions.is_inferred,
    source_event_id = versions.source_event_id
from staging.:"versions_table" as versions
where versions.user_key = dim_user.user_key
    and dim_user.user_key = any(
        array(select kept.user_key from staging.:"versions_table" as kept where kept.user_key is not null)
    )
    and (
        dim_user.valid_from, dim_user.valid_to, dim_user.is_current, dim_user.email, dim_user.plan,
        dim_user.country, dim_user.is_inferred, dim_user.source_event_id
    ) is distinct from (
        versions.valid_from, versions.valid_to, versions.is_current, versions.email, versions.plan,
        versions.country, versions.is_inferred, versions.source_event_id
    );

-- versions dim_user does not hold yet
insert into warehouse.dim_user (
    user_id, email, plan, country, valid_from, valid_to, is_current, is_inferred, source_event_id
)
select
    versions.user_id,
    versions.email,
    versions.plan,
    versions.country,
    versions.valid_from,
    versions.valid_to,
    versions.is_current,
    versions.is_inferred,
    versions.source_event_id
from staging.:"versions_table" as versions
where versions.user_key is null
order by versions.user_id, versions.valid_from;
