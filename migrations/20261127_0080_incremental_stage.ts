import { type Kysely, sql } from 'kysely';

/**
 * A re-load stages only what is new. Once a date is loaded, its next stage run reads only the lake files that
 * landed since (when every file the load read is still in the manifest) and drops the records whose event_id the
 * date's facts already hold, so a re-load with nothing new stages nothing and a re-delivery of loaded events
 * stages nothing new either.
 *
 * - ops.date_stages.base_file_ids: the files already loaded that such a stage run left out; NULL for a stage run
 *   of every file. Restoring lost staging (ensureStaged) repeats the same run.
 * - ops.date_loads.loaded_*: the stage counts of the date's last load (ops.staged_dates as it was then), which the
 *   next incremental stage run adds its own counts to, so ops.staged_dates keeps describing every record of the
 *   date for the reconciliation check.
 * - ops.date_loads.marts_stale: whether the date's marts may lag its facts or dimensions. Loads set it when they
 *   change anything the marts read; a mart refresh clears it for the dates it rebuilds, and skips the dates
 *   whose marts are current (a re-load with nothing new).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    alter table ops.date_stages add column base_file_ids bigint[];
    comment on column ops.date_stages.base_file_ids is 'The lake files already loaded that the stage run left out (it staged only the files after them, and dropped records whose event_id the date''s facts hold); NULL when it staged every file.';

    alter table ops.date_loads
      add column loaded_rows_read bigint,
      add column loaded_rows_set_aside bigint,
      add column loaded_duplicates bigint,
      add column loaded_rows_staged bigint;
    comment on column ops.date_loads.loaded_rows_read is 'ops.staged_dates.rows_read when the date''s last load committed: records in the files of loaded_file_ids.';
    comment on column ops.date_loads.loaded_rows_set_aside is 'ops.staged_dates.rows_set_aside when the date''s last load committed.';
    comment on column ops.date_loads.loaded_duplicates is 'ops.staged_dates.duplicates when the date''s last load committed.';
    comment on column ops.date_loads.loaded_rows_staged is 'ops.staged_dates.rows_staged when the date''s last load committed.';

    alter table ops.date_loads add column marts_stale boolean not null default true;
    comment on column ops.date_loads.marts_stale is 'True when the date''s marts may lag what they read: set by a fact load of the date that changed rows and by a dim_user load that changed versions (for every date); cleared by the mart refresh that rebuilds the date.';
  `.execute(db);
}
