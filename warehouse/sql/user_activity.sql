-- grain: rewrites the date's rows of warehouse.user_days (one per user with facts on the date) and
-- warehouse.user_purchase_days (one per user and currency with purchases on it) from the date's facts, then
-- warehouse.user_activity (one per user: first and last date) for the users the date had before or has now, and
-- warehouse.date_totals (the date's fact rows and users, which the volume check reads).
-- Reads the date's purchases grouped by user_key first, then each version found by its key: every fact points at a
-- version valid at its event_time, so no version outside the day is read (probing the partition for every version
-- valid on the day grew with all the users the warehouse holds); user_activity takes the date's
-- user_days rows as they are, and only users the date lost are looked up in their other dates, so the cost follows
-- the date's users, not history.
-- The date's rows of user_days come from pg_temp.user_activity_days, one row per user of the date, which
-- user_activity_days.sql (from the date's facts) or user_activity_days_staged.sql (from the dimension load's staged
-- users, on a first load) writes first in the same transaction.
drop table if exists pg_temp.user_activity_users;

create temp table user_activity_users on commit drop as
select user_days.user_id
from warehouse.user_days as user_days
where user_days.date_key = :'date_key'::int;

analyze user_activity_users;

delete from warehouse.user_days as user_days
where user_days.date_key = :'date_key'::int;

delete from warehouse.user_purchase_days as user_purchase_days
where user_purchase_days.date_key = :'date_key'::int;

-- the rows go in in user_id order, so each index takes them in its own order rather than at random, and the
-- date's heap rows lie in that order for the user_activity upsert and daily_active_users, which read them next.
-- collate "C" is byte order, the collation of every user_id column (migration 0150), so the sort is the index's
-- order; it was written here before that migration, when it was a sort without strcoll. On day 2
-- of scripts/measure-load.ts --day2 (32k users, statement logs of two alternating pairs of runs), this insert took
-- 259-290 against 350-419 ms, the upsert 279 against 355-411 ms and daily_active_users 74-120 against 170-189 ms;
-- at 10M events (321k users, psql, three alternating runs), the three took 6.4-7.2 against 8.7-10.9 s.
insert into warehouse.user_days (
    date_key, user_id, events, attribute_events, first_event_at, last_event_at, page_views, add_to_carts, purchases
)
select
    :'date_key'::int as date_key,
    days.user_id,
    days.events,
    days.attribute_events,
    days.first_event_at,
    days.last_event_at,
    days.page_views,
    days.add_to_carts,
    days.purchases
from user_activity_days as days
order by days.user_id collate "C";

delete from warehouse.date_totals as date_totals
where date_totals.date_key = :'date_key'::int;

insert into warehouse.date_totals (date_key, events, users)
select
    :'date_key'::int as date_key,
    sum(user_days.events) as events,
    count(*) as users
from warehouse.user_days as user_days
where user_days.date_key = :'date_key'::int
having count(*) > 0;

drop table if exists pg_temp.user_activity_purchase_days;

create temp table user_activity_purchase_days on commit drop as
select
    dim_user.user_id,
    per_version.currency,
    sum(per_version.orders) as orders,
    sum(per_version.revenue) as revenue,
    min(per_version.first_purchase_at) as first_purchase_at,
    max(per_version.last_purchase_at) as last_purchase_at
from (
    select
        fact_events.user_key,
        coalesce(fact_events.currency, 'XXX') as currency,
        count(*) as orders,
        coalesce(sum(fact_events.amount), 0) as revenue,
        min(fact_events.event_time) as first_purchase_at,
        max(fact_events.event_time) as last_purchase_at
    from warehouse.fact_events as fact_events
    where fact_events.date_key = :'date_key'::int
        and fact_events.event_type = 'purchase'
    group by fact_events.user_key, coalesce(fact_events.currency, 'XXX')
) as per_version
inner join warehouse.dim_user as dim_user on dim_user.user_key = per_version.user_key
group by dim_user.user_id, per_version.currency;

-- in the order of its primary key, as user_days above
insert into warehouse.user_purchase_days (
    date_key, user_id, currency, orders, revenue, first_purchase_at, last_purchase_at
)
select
    :'date_key'::int as date_key,
    purchases.user_id,
    purchases.currency,
    purchases.orders,
    purchases.revenue,
    purchases.first_purchase_at,
    purchases.last_purchase_at
from user_activity_purchase_days as purchases
order by purchases.user_id collate "C", purchases.currency;

-- a user the date had before and has no longer may have no date left: their user_activity row goes. Only those
-- users are looked up (usually none), not every user of the date, whose user_days probes grew with history.
-- (an array, so that they are found through the primary key rather than by reading every user_activity row)
delete from warehouse.user_activity as user_activity
where user_activity.user_id = any(array(
    select before.user_id
    from user_activity_users as before
    where not exists (
        select
        from warehouse.user_days as now
        where now.date_key = :'date_key'::int
            and now.user_id = before.user_id
    )
))
    and not exists (
        select
        from warehouse.user_days as user_days
        where user_days.user_id = user_activity.user_id
    );

-- the date's users: its rows now are each user's activity on the date, so their first and last date move to the date
-- when it is earlier or later than what user_activity holds, and take the date's first or last event_time when it is
-- that date (a re-load may have moved them). One row per user of the date, no look-up of their other dates; the
-- upsert reads the row it updates as last committed, so fact loads of other dates that run meanwhile are kept.
-- Rows the date does not change (it is neither earlier nor later, nor moves the time of its own first or last
-- activity) are not written.
insert into warehouse.user_activity as user_activity (
    user_id, first_date_key, first_event_at, last_date_key, last_event_at
)
select
    user_days.user_id,
    user_days.date_key,
    user_days.first_event_at,
    user_days.date_key,
    user_days.last_event_at
from warehouse.user_days as user_days
where user_days.date_key = :'date_key'::int
on conflict (user_id) do update
set
    first_date_key = least(user_activity.first_date_key, excluded.first_date_key),
    first_event_at = case
        when excluded.first_date_key <= user_activity.first_date_key then excluded.first_event_at
        else user_activity.first_event_at
    end,
    last_date_key = greatest(user_activity.last_date_key, excluded.last_date_key),
    last_event_at = case
        when excluded.last_date_key >= user_activity.last_date_key then excluded.last_event_at
        else user_activity.last_event_at
    end
where excluded.first_date_key < user_activity.first_date_key
    or excluded.last_date_key > user_activity.last_date_key
    or (
        excluded.first_date_key = user_activity.first_date_key
        and excluded.first_event_at is distinct from user_activity.first_event_at
    )
    or (
        excluded.last_date_key = user_activity.last_date_key
        and excluded.last_event_at is distinct from user_activity.last_event_at
    );

-- users the date had before and has no longer, who still have other dates: the date may have been their first or
-- last, so both are looked up again in user_days (user_id, date_key), two probes per user (usually none)
insert into warehouse.user_activity as user_activity (
    user_id, first_date_key, first_event_at, last_date_key, last_event_at
)
select
    users.user_id,
    first_day.date_key,
    first_day.first_event_at,
    last_day.date_key,
    last_day.last_event_at
from (
    select distinct before.user_id
    from user_activity_users as before
    where not exists (
        select
        from warehouse.user_days as now
        where now.date_key = :'date_key'::int
            and now.user_id = before.user_id
    )
) as users
cross join lateral (
    select
        user_days.date_key,
        user_days.first_event_at
    from warehouse.user_days as user_days
    where user_days.user_id = users.user_id
    order by user_days.date_key
    limit 1
) as first_day
cross join lateral (
    select
        user_days.date_key,
        user_days.last_event_at
    from warehouse.user_days as user_days
    where user_days.user_id = users.user_id
    order by user_days.date_key desc
    limit 1
) as last_day
on conflict (user_id) do update
set
    first_date_key = excluded.first_date_key,
    first_event_at = excluded.first_event_at,
    last_date_key = excluded.last_date_key,
    last_event_at = excluded.last_event_at
where (
    user_activity.first_date_key, user_activity.first_event_at, user_activity.last_date_key,
    user_activity.last_event_at
) is distinct from (
    excluded.first_date_key, excluded.first_event_at, excluded.last_date_key, excluded.last_event_at
);
