import { type Kysely, sql } from 'kysely';

/**
 * Bad rows never block a date.
 *
 * - staging.events (the template of every per-date staging table) holds the warehouse's limits: amount as
 *   numeric(14,2), event_time's range, and text lengths in bytes, 4 per code point of the v1 contract's limits
 *   (lib/events.ts), so any text the contract accepts fits (octet_length is O(1); char_length scans). A lake row that breaks one, or
 *   that PostgreSQL refuses outright (U+0000, invalid UTF-8), fails its COPY into staging; the stage step then
 *   finds it and sets it aside instead of failing the date.
 * - ops.rejected_rows: the rows (or unreadable lake files) set aside, with the reason and their lineage.
 * - ops.staged_dates: what the last stage run of each date read, set aside and collapsed as duplicates, so the
 *   reconciliation check counts distinct event_ids landed whatever the staging table still holds.
 * - ops.alerts.suppressed: a backfill summary with nothing new is recorded but not posted.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    alter table staging.events alter column amount type numeric(14, 2);
    alter table staging.events
      add constraint user_id_at_most_1024_bytes check (octet_length(user_id) <= 1024),
      add constraint session_id_at_most_1024_bytes check (octet_length(session_id) <= 1024),
      add constraint device_os_at_most_512_bytes check (octet_length(device_os) <= 512),
      add constraint device_browser_at_most_512_bytes check (octet_length(device_browser) <= 512),
      add constraint page_at_most_8192_bytes check (octet_length(page) <= 8192),
      add constraint referrer_at_most_8192_bytes check (octet_length(referrer) <= 8192),
      add constraint user_email_at_most_1016_bytes check (octet_length(user_email) <= 1016),
      add constraint order_id_at_most_1024_bytes check (octet_length(order_id) <= 1024),
      add constraint product_id_at_most_1024_bytes check (octet_length(product_id) <= 1024),
      add constraint amount_not_negative check (amount >= 0),
      add constraint event_time_from_2000_to_2100 check (
        event_time >= '2000-01-01 00:00:00+00' and event_time < '2100-01-02 00:00:00+00'
      );
    comment on column staging.events.amount is 'Purchase amount as fact_events holds it: numeric(14,2), the lake''s double rounded half away from zero to 2 decimals.';

    create table ops.rejected_rows (
      rejected_row_id bigint generated always as identity primary key,
      dt date not null,
      lake_file_id bigint not null references ops.lake_files,
      path text not null,
      row_number int,
      kafka_topic text,
      kafka_partition int,
      kafka_offset bigint,
      event_id text,
      reason text not null,
      sqlstate text,
      raw_values bytea,
      set_aside_at timestamptz not null default now()
    );
    create index rejected_rows_dt on ops.rejected_rows (dt);
    comment on table ops.rejected_rows is 'Lake rows PostgreSQL refused while staging their date, and lake files that could not be read: set aside with the reason so the date loads. One row per rejected row (or per unreadable file); rewritten by every stage run of the date.';
    comment on column ops.rejected_rows.rejected_row_id is 'Surrogate key.';
    comment on column ops.rejected_rows.dt is 'The date being staged (the lake partition).';
    comment on column ops.rejected_rows.lake_file_id is 'The lake file (ops.lake_files) the row came from.';
    comment on column ops.rejected_rows.path is 'Path of the lake file relative to LAKE_DIR.';
    comment on column ops.rejected_rows.row_number is 'Position of the row in the lake file, from 0; NULL when the whole file was set aside (unreadable).';
    comment on column ops.rejected_rows.kafka_topic is 'Kafka topic of the record (lineage); NULL for an unreadable file.';
    comment on column ops.rejected_rows.kafka_partition is 'Kafka partition of the record; NULL for an unreadable file.';
    comment on column ops.rejected_rows.kafka_offset is 'Kafka offset of the record; NULL for an unreadable file.';
    comment on column ops.rejected_rows.event_id is 'event_id of the record, when readable.';
    comment on column ops.rejected_rows.reason is 'Why it was set aside: PostgreSQL''s error (naming the column or constraint) or the file''s read error.';
    comment on column ops.rejected_rows.sqlstate is 'PostgreSQL error code (e.g. 22021 invalid byte sequence, 23514 check violation); NULL for an unreadable file.';
    comment on column ops.rejected_rows.raw_values is 'The row as the stage step sent it to COPY (text format, tab-separated, in STAGING_COLUMNS order): the raw values. Read with encode(raw_values, ''escape'').';
    comment on column ops.rejected_rows.set_aside_at is 'When the stage run set it aside.';

    create table ops.staged_dates (
      dt date primary key,
      files int not null,
      rows_read bigint not null,
      rows_set_aside bigint not null,
      duplicates bigint not null,
      rows_staged bigint not null,
      staged_at timestamptz not null default now()
    );
    comment on table ops.staged_dates is 'One row per date: the counts of its last stage run. rows_staged = distinct event_ids the load sees.';
    comment on column ops.staged_dates.dt is 'Event date (UTC).';
    comment on column ops.staged_dates.files is 'Lake files of the date in the manifest when staged.';
    comment on column ops.staged_dates.rows_read is 'Records in those files (ops.lake_files.row_count summed).';
    comment on column ops.staged_dates.rows_set_aside is 'Records set aside in ops.rejected_rows (all the rows of an unreadable file).';
    comment on column ops.staged_dates.duplicates is 'Surplus records of an event_id (delivered twice) collapsed into one.';
    comment on column ops.staged_dates.rows_staged is 'Rows left in staging: distinct event_ids, after set-aside.';
    comment on column ops.staged_dates.staged_at is 'When the stage run committed.';
    grant select on ops.rejected_rows, ops.staged_dates to analyst;

    alter table ops.alerts add column suppressed boolean not null default false;
    comment on column ops.alerts.suppressed is 'True for a backfill summary with nothing new to say (every item alerted before): recorded, never posted.';
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    alter table ops.alerts drop column suppressed;
    drop table ops.staged_dates;
    drop table ops.rejected_rows;
    alter table staging.events
      drop constraint user_id_at_most_1024_bytes,
      drop constraint session_id_at_most_1024_bytes,
      drop constraint device_os_at_most_512_bytes,
      drop constraint device_browser_at_most_512_bytes,
      drop constraint page_at_most_8192_bytes,
      drop constraint referrer_at_most_8192_bytes,
      drop constraint user_email_at_most_1016_bytes,
      drop constraint order_id_at_most_1024_bytes,
      drop constraint product_id_at_most_1024_bytes,
      drop constraint amount_not_negative,
      drop constraint event_time_from_2000_to_2100;
    alter table staging.events alter column amount type numeric;
  `.execute(db);
}
