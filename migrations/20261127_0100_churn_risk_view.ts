import { type Kysely, sql } from 'kysely';

/**
 * marts.churn_risk becomes a view over warehouse.user_activity (kept by the fact loads) and the current dim_user
 * versions. As a table it was rebuilt whole on every refresh, because every row's days_inactive moves with the
 * as-of date: a daily run paid for every user ever inactive, more with each day of history. The view computes the
 * same rows when read, through user_activity's last_event_at index (the inactive users only), and is always as of
 * the latest date with facts. The refreshed_at column goes: the rows are never stored.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    drop table marts.churn_risk;

    create view marts.churn_risk as
    with

    as_of as (
        select (max(ua.last_event_at) at time zone 'UTC')::date as as_of_date
        from warehouse.user_activity as ua
    ),

    inactive as (
        select
            ua.user_id,
            ua.last_event_at,
            ao.as_of_date - (ua.last_event_at at time zone 'UTC')::date as days_inactive,
            ao.as_of_date
        from warehouse.user_activity as ua
        cross join as_of as ao
        where ua.last_event_at < (ao.as_of_date - 6)::timestamp at time zone 'UTC'
    )

    select
        i.user_id,
        coalesce(du.plan, 'unknown') as plan,
        i.last_event_at as last_seen_at,
        i.days_inactive,
        case
            when i.days_inactive >= 30 then 'high'
            when i.days_inactive >= 14 then 'medium'
            else 'low'
        end as risk_bucket,
        i.as_of_date
    from inactive as i
    left join warehouse.dim_user as du
        on du.user_id = i.user_id
        and du.is_current;

    comment on view marts.churn_risk is 'One row per user inactive for 7 or more days as of the latest UTC date with facts (as_of_date). A view over warehouse.user_activity and the current dim_user versions: always current, computed when read.';
    comment on column marts.churn_risk.user_id is 'Natural key of the user.';
    comment on column marts.churn_risk.plan is 'The user''s current plan (unknown for an inferred user).';
    comment on column marts.churn_risk.last_seen_at is 'event_time of the user''s latest event of any type, UTC.';
    comment on column marts.churn_risk.days_inactive is 'as_of_date minus the UTC date of last_seen_at, in days (7 or more).';
    comment on column marts.churn_risk.risk_bucket is 'low: 7-13 days inactive, medium: 14-29, high: 30 or more.';
    comment on column marts.churn_risk.as_of_date is 'The latest UTC date with facts (the newest last_event_at in warehouse.user_activity).';

    grant select on marts.churn_risk to analyst;
  `.execute(db);
}
