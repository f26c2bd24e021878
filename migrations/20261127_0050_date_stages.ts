import { type Kysely, sql } from 'kysely';

/**
 * ops.date_stages: what the last stage run of each date put into its staging tables, recorded in the same
 * transaction. The staging tables are UNLOGGED (fast to fill, not WAL-logged), so a database crash empties them;
 * the dimension and fact steps compare the tables with this record before they read them and stage the date again
 * when they differ.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table ops.date_stages (
      dt date primary key,
      staged_at timestamptz not null default now(),
      run_id text,
      row_count bigint not null,
      lake_file_ids bigint[] not null
    );
    comment on table ops.date_stages is 'One row per event date: what its last stage run left in staging.events_YYYYMMDD and staging.event_files_YYYYMMDD. Loads verify the (unlogged) staging tables against it and stage the date again when a crash emptied them.';
    comment on column ops.date_stages.dt is 'Event date (UTC).';
    comment on column ops.date_stages.staged_at is 'When the last stage run of the date committed.';
    comment on column ops.date_stages.run_id is 'Temporal run id of the last stage run; NULL when it ran outside a workflow.';
    comment on column ops.date_stages.row_count is 'Rows it left in staging.events_YYYYMMDD: one per event_id.';
    comment on column ops.date_stages.lake_file_ids is 'The lake files (ops.lake_files) it staged, ascending: the rows of staging.event_files_YYYYMMDD.';
  `.execute(db);
}
