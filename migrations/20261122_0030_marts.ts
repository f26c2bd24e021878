import { type Kysely, sql } from 'kysely';

/**
 * The marts of SPEC section 5, rebuilt by activities/marts.ts from warehouse/marts/*.sql.
 * The analyst role reads them through the default privileges of migration 0001 (schema marts).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table marts.daily_active_users (
      date date primary key,
      dau int not null,
      new_users int not null,
      returning_users int not null,
      events bigint not null,
      refreshed_at timestamptz not null default now(),
      check (new_users + returning_users = dau)
    );
    comment on table marts.daily_active_users is 'One row per UTC date with at least one fact: active, new and returning users and event count.';
    comment on column marts.daily_active_users.date is 'The UTC date.';
    comment on column marts.daily_active_users.dau is 'Distinct users (user_id) with at least one event of any type on the date.';
    comment on column marts.daily_active_users.new_users is 'Active users whose first fact ever (any event type, all loaded history) falls on this date.';
    comment on column marts.daily_active_users.returning_users is 'Active users who also had a fact on an earlier date: dau - new_users.';
    comment on column marts.daily_active_users.events is 'Fact rows (events of any type) on the date.';
    comment on column marts.daily_active_users.refreshed_at is 'When the row was last rebuilt.';

    create table marts.revenue_daily (
      date date not null,
      plan text not null,
      country text not null,
      currency char(3) not null,
      orders int not null,
      revenue numeric(16, 2) not null,
      avg_order_value numeric(14, 2) not null,
      paying_users int not null,
      refreshed_at timestamptz not null default now(),
      primary key (date, plan, country, currency)
    );
    comment on table marts.revenue_daily is 'One row per UTC date, plan at the time of purchase, user country at the time of purchase and currency: purchase revenue.';
    comment on column marts.revenue_daily.date is 'The UTC date of the purchases.';
    comment on column marts.revenue_daily.plan is 'The buyer''s plan in the dim_user version valid at the purchase (free, pro, enterprise; unknown for an inferred user).';
    comment on column marts.revenue_daily.country is 'The buyer''s profile country in that same dim_user version (unknown when not known yet).';
    comment on column marts.revenue_daily.currency is 'ISO-4217 currency of the amounts; revenue is never summed across currencies (XXX when missing).';
    comment on column marts.revenue_daily.orders is 'Purchase events (one per order); payment_failed is not counted.';
    comment on column marts.revenue_daily.revenue is 'Sum of purchase amounts.';
    comment on column marts.revenue_daily.avg_order_value is 'revenue / orders, rounded to cents.';
    comment on column marts.revenue_daily.paying_users is 'Distinct users (user_id) with at least one purchase in the group.';
    comment on column marts.revenue_daily.refreshed_at is 'When the row was last rebuilt.';

    create table marts.revenue_per_user (
      user_id text not null,
      currency char(3) not null,
      plan text not null,
      lifetime_revenue numeric(16, 2) not null,
      orders int not null,
      avg_order_value numeric(14, 2) not null,
      first_purchase_at timestamptz not null,
      last_purchase_at timestamptz not null,
      refreshed_at timestamptz not null default now(),
      primary key (user_id, currency)
    );
    comment on table marts.revenue_per_user is 'One row per user and currency with at least one purchase: lifetime revenue. Refreshed for the users a run''s dates touched.';
    comment on column marts.revenue_per_user.user_id is 'Natural key of the user.';
    comment on column marts.revenue_per_user.currency is 'ISO-4217 currency of the amounts (XXX when missing); a user who paid in two currencies has two rows.';
    comment on column marts.revenue_per_user.plan is 'The user''s current plan (current dim_user version; unknown for an inferred user).';
    comment on column marts.revenue_per_user.lifetime_revenue is 'Sum of all the user''s purchase amounts in this currency.';
    comment on column marts.revenue_per_user.orders is 'The user''s purchase events in this currency.';
    comment on column marts.revenue_per_user.avg_order_value is 'lifetime_revenue / orders, rounded to cents.';
    comment on column marts.revenue_per_user.first_purchase_at is 'event_time of the user''s first purchase, UTC.';
    comment on column marts.revenue_per_user.last_purchase_at is 'event_time of the user''s latest purchase, UTC.';
    comment on column marts.revenue_per_user.refreshed_at is 'When the row was last rebuilt.';

    create table marts.churn_risk (
      user_id text primary key,
      plan text not null,
      last_seen_at timestamptz not null,
      days_inactive int not null check (days_inactive >= 7),
      risk_bucket text not null check (risk_bucket in ('low', 'medium', 'high')),
      as_of_date date not null,
      refreshed_at timestamptz not null default now()
    );
    comment on table marts.churn_risk is 'One row per user inactive for 7 or more days as of the latest date with facts (as_of_date). Rebuilt whole on every refresh, because every user''s days_inactive moves with as_of_date.';
    comment on column marts.churn_risk.user_id is 'Natural key of the user.';
    comment on column marts.churn_risk.plan is 'The user''s current plan (unknown for an inferred user).';
    comment on column marts.churn_risk.last_seen_at is 'event_time of the user''s latest event of any type, UTC.';
    comment on column marts.churn_risk.days_inactive is 'as_of_date minus the UTC date of last_seen_at, in days (7 or more).';
    comment on column marts.churn_risk.risk_bucket is 'low: 7-13 days inactive, medium: 14-29, high: 30 or more.';
    comment on column marts.churn_risk.as_of_date is 'The latest UTC date with facts in warehouse.fact_events when the mart was rebuilt.';
    comment on column marts.churn_risk.refreshed_at is 'When the row was last rebuilt.';

    create table marts.funnel_daily (
      date date not null,
      step text not null check (step in ('page_view', 'add_to_cart', 'purchase')),
      step_order smallint not null check (step_order between 1 and 3),
      users int not null,
      conversion_from_previous numeric(7, 4),
      conversion_from_first numeric(7, 4),
      refreshed_at timestamptz not null default now(),
      primary key (date, step)
    );
    comment on table marts.funnel_daily is 'One row per UTC date with funnel events and funnel step (page_view -> add_to_cart -> purchase).';
    comment on column marts.funnel_daily.date is 'The UTC date.';
    comment on column marts.funnel_daily.step is 'page_view, add_to_cart or purchase.';
    comment on column marts.funnel_daily.step_order is '1 page_view, 2 add_to_cart, 3 purchase.';
    comment on column marts.funnel_daily.users is 'Distinct users (user_id) who on the date had an event of this step and of every earlier step (in any order within the day).';
    comment on column marts.funnel_daily.conversion_from_previous is 'users / users of the previous step (0-1, 4 decimals); NULL for page_view or when the previous step had no users.';
    comment on column marts.funnel_daily.conversion_from_first is 'users / page_view users (0-1, 4 decimals); NULL when no page_view users.';
    comment on column marts.funnel_daily.refreshed_at is 'When the row was last rebuilt.';
  `.execute(db);
}
