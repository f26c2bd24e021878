import { type Kysely, sql } from 'kysely';

/**
 * Tables the warehouse loads need: the staging template every per-date staging table is cloned from, and the
 * persistent change log of user attributes that dim_user is rebuilt from. Also widens the fact_events user_key
 * index with event_time, so re-pointing the facts after a moved version boundary reads only the facts it moves.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table staging.events (
      event_id uuid not null,
      schema_version text not null,
      event_type text not null,
      event_time timestamptz not null,
      user_id text not null,
      session_id text,
      device_type text,
      device_os text,
      device_browser text,
      country text,
      page text,
      referrer text,
      user_email text,
      user_plan text,
      user_country text,
      order_id text,
      product_id text,
      amount numeric,
      currency text,
      kafka_topic text not null,
      kafka_partition int not null,
      kafka_offset bigint not null,
      lake_file_id bigint not null
    );
    comment on table staging.events is 'Template of the per-date staging tables staging.events_YYYYMMDD (unlogged, rebuilt by every stage run): one row per lake record, duplicates included. Never holds rows itself.';
    comment on column staging.events.event_id is 'The event''s UUID; the same event_id can appear twice when the producer retried.';
    comment on column staging.events.schema_version is 'Event contract version, v1.';
    comment on column staging.events.event_type is 'Event type, as in the lake.';
    comment on column staging.events.event_time is 'When the event happened, UTC.';
    comment on column staging.events.user_id is 'Natural key of the user.';
    comment on column staging.events.session_id is 'Client session id.';
    comment on column staging.events.device_type is 'desktop, mobile or tablet; NULL when the event carried no device.';
    comment on column staging.events.device_os is 'Device operating system.';
    comment on column staging.events.device_browser is 'Device browser.';
    comment on column staging.events.country is 'Country from the event context.';
    comment on column staging.events.page is 'Page from the event context.';
    comment on column staging.events.referrer is 'Referrer from the event context.';
    comment on column staging.events.user_email is 'User email after the event (user_signup, profile_update, plan_change).';
    comment on column staging.events.user_plan is 'User plan after the event (user_signup, profile_update, plan_change).';
    comment on column staging.events.user_country is 'User country after the event (user_signup, profile_update, plan_change).';
    comment on column staging.events.order_id is 'Order id on purchase and payment_failed.';
    comment on column staging.events.product_id is 'Product id on purchase and payment_failed.';
    comment on column staging.events.amount is 'Order amount on purchase and payment_failed.';
    comment on column staging.events.currency is 'ISO-4217 currency of amount.';
    comment on column staging.events.kafka_topic is 'Lineage: Kafka topic of the record.';
    comment on column staging.events.kafka_partition is 'Lineage: Kafka partition of the record.';
    comment on column staging.events.kafka_offset is 'Lineage: Kafka offset of the record.';
    comment on column staging.events.lake_file_id is 'Lineage: the ops.lake_files row the record was read from.';

    create table warehouse.user_changes (
      event_id uuid primary key,
      user_id text not null,
      event_time timestamptz not null,
      event_type text not null check (event_type in ('user_signup', 'profile_update', 'plan_change')),
      email text,
      plan text check (plan in ('free', 'pro', 'enterprise')),
      country text,
      dt date not null,
      lake_file_id bigint not null,
      loaded_at timestamptz not null default now()
    );
    create index user_changes_user on warehouse.user_changes (user_id, event_time, event_id);
    comment on table warehouse.user_changes is 'Change log of user attributes: one row per user_signup, profile_update or plan_change event ever loaded (event_id unique). dim_user versions are rebuilt from it, so any load order ends in the same history.';
    comment on column warehouse.user_changes.event_id is 'The attribute event''s UUID.';
    comment on column warehouse.user_changes.user_id is 'Natural key of the user.';
    comment on column warehouse.user_changes.event_time is 'When the attributes took effect, UTC.';
    comment on column warehouse.user_changes.event_type is 'user_signup, profile_update or plan_change.';
    comment on column warehouse.user_changes.email is 'The user''s email after the event.';
    comment on column warehouse.user_changes.plan is 'The user''s plan after the event: free, pro or enterprise.';
    comment on column warehouse.user_changes.country is 'The user''s country after the event.';
    comment on column warehouse.user_changes.dt is 'The lake partition date the event was loaded from.';
    comment on column warehouse.user_changes.lake_file_id is 'Lineage: the ops.lake_files row the event was loaded from.';
    comment on column warehouse.user_changes.loaded_at is 'When the event was first added to the change log.';

    create index fact_events_user_key_time on warehouse.fact_events (user_key, event_time);
    drop index warehouse.fact_events_user_key;
  `.execute(db);
}
