-- grain: one row per existing dim_user version of the touched users that loses facts: it vanished from the
-- desired versions, or its range shrank. Facts pointing at these keys outside [kept_from, kept_to) are
-- re-pointed by dim_user_repoint_facts.sql; a vanished key keeps nothing (kept_from = kept_to = infinity).
drop table if exists staging.:"moved_table";

create unlogged table staging.:"moved_table" with (autovacuum_enabled = false) as
with touched_users as (
    select distinct versions.user_id
    from staging.:"versions_table" as versions
)

select
    dim_user.user_key,
    dim_user.user_id,
    versions.user_key is null as is_vanished,
    coalesce(versions.valid_from, 'infinity') as kept_from,
    case when versions.user_key is null then 'infinity' else coalesce(versions.valid_to, 'infinity') end as kept_to
from warehouse.dim_user as dim_user
inner join touched_users on touched_users.user_id = dim_user.user_id
left join staging.:"versions_table" as versions on versions.user_key = dim_user.user_key
where versions.user_key is null
    or versions.valid_from > dim_user.valid_from
    or coalesce(versions.valid_to, 'infinity') < coalesce(dim_user.valid_to, 'infinity');

-- versions that vanished (a late change made them redundant); their facts move in the re-point step
delete from warehouse.dim_user as dim_user
using staging.:"moved_table" as moved
where moved.user_key = dim_user.user_key
    and moved.is_vanished;

-- versions that continue with another range or other attributes (a split, a completed inferred member)
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
