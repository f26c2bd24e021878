-- grain: one row per fact whose user version moved: it points at a dim_user version that vanished or shrank
-- (staging moved table) and its event_time now falls in another version of the same user. Reads only the facts
-- outside each moved version's kept range, through each date partition's user_key index.
with repointed as (
    update warehouse.fact_events as fact_events
    set
        user_key = dim_user.user_key,
        loaded_at = now()
    from staging.:"moved_table" as moved
    inner join warehouse.dim_user as dim_user on dim_user.user_id = moved.user_id
    where fact_events.user_key = moved.user_key
        and (fact_events.event_time < moved.kept_from or fact_events.event_time >= moved.kept_to)
        and fact_events.event_time >= dim_user.valid_from
        and (dim_user.valid_to is null or fact_events.event_time < dim_user.valid_to)
        and dim_user.user_key <> fact_events.user_key
    returning 1
)

select count(*)::int as count_repointed
from repointed;
