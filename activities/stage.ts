import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Table } from 'apache-arrow';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { BinaryCopyUnsupported } from '../lib/copy-binary';
import type { DeviceTriple } from '../lib/device-triples';
import { LakeFileCorruptError, readLakeFile } from '../lib/lake';
import { type LakeLocation, lakeOf, lakeStore } from '../lib/lake-store';
import { dateLockId, tryLockDate, withDateLock } from '../lib/locks';
import { recordStep } from '../lib/runs';
import { runSqlFile } from '../warehouse/sql';
import type { ActivityDeps, DateStepInput } from './deps';
import { type CopyFormat, type LakeFileRef, STAGING_COLUMNS, checkColumns, copyTextLines } from './staging/encode';
import { filterJob, recordFilters } from './staging/filters';
import type { FilterResult } from './staging/messages';
import { StagingChunks } from './staging/threads';

/** The per-date staging table of a date's lake records, e.g. staging.events_20241217 (unqualified name). */
export function stagingEventsTable(date: string): string {
  return `events_${dateLockId(date)}`;
}

/** The per-date staging table of the lake files a stage run read, e.g. staging.event_files_20241217. */
export function stagingFilesTable(date: string): string {
  return `event_files_${dateLockId(date)}`;
}

/**
 * The per-date table of the distinct device triples of a date's staging table, e.g. staging.event_devices_20241217:
 * the stage run writes it from what it copied (lib/device-triples.ts), the device dimension load reads it instead
 * of the staged rows, the next stage run of the date drops it.
 */
export function stagingDevicesTable(date: string): string {
  return `event_devices_${dateLockId(date)}`;
}

/** Whether staging.<table> exists and has a row: a per-date table a load may read instead of the staged rows. */
export async function filledStagingTable(client: pg.ClientBase, table: string): Promise<boolean> {
  const qualified = `staging.${client.escapeIdentifier(table)}`;
  const { rows } = await client.query<{ present: boolean }>('select to_regclass($1) is not null as present', [
    qualified,
  ]);
  if (!rows[0].present) return false;
  const { rows: filled } = await client.query<{ found: boolean }>(`select exists (select from ${qualified}) as found`);
  return filled[0].found;
}

/**
 * The per-date table of the users in a date's staging table, e.g. staging.user_staged_20241217: the user dimension
 * load writes it, the fact load reads it, the next stage run of the date drops it.
 */
export function stagingUsersTable(date: string): string {
  return `user_staged_${dateLockId(date)}`;
}

export interface StageEventsOutput {
  date: string;
  /** Qualified name of the staging table, e.g. staging.events_20241217. */
  stagingTable: string;
  files: number;
  bytes: number;
  /** Records in the date's lake files. */
  rowsRead: number;
  /** Rows left in staging: one per event_id, after set-aside. */
  rowsStaged: number;
  /** Records PostgreSQL refused (or in unreadable lake files), set aside in ops.rejected_rows. */
  rowsSetAside: number;
  /** Surplus records of an event_id (landed twice) left out of staging. */
  duplicates: number;
  /**
   * Lake files of the date already loaded, left out: the run staged only the files that landed after the date's
   * last load (0 when it staged every file).
   */
  filesAlreadyLoaded: number;
  /** Of the records staged, those whose event_id the date's facts already hold (a re-delivery), dropped. */
  rowsAlreadyLoaded: number;
}

/** Heartbeats when running as a Temporal activity; a no-op in scripts and tests. */
function heartbeat(details: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // not inside an activity
  }
}

/** The activity's cancellation (delivered with a heartbeat's answer) when running as one; none in scripts and tests. */
function cancellation(): { signal: AbortSignal | undefined } {
  try {
    return { signal: Context.current().cancellationSignal };
  } catch {
    return { signal: undefined };
  }
}

/**
 * The COPY statement into a staging table, identifiers quoted by the client. `freeze`: the rows are written frozen
 * and their pages all-visible, which PostgreSQL allows only into a table created or truncated in the same
 * subtransaction (stageDate truncates it first, inside its savepoint).
 */
export function copyStatement(
  client: pg.ClientBase,
  table: string,
  format: CopyFormat = 'text',
  options: { freeze?: boolean } = {},
): string {
  const columns = STAGING_COLUMNS.map((c) => client.escapeIdentifier(c)).join(', ');
  const freeze = options.freeze ? ', freeze true' : '';
  return `copy staging.${client.escapeIdentifier(table)} (${columns}) from stdin with (format ${format}${freeze})`;
}

interface ManifestFile {
  lake_file_id: number;
  path: string;
  row_count: number;
  bytes: number;
}

/** Drops the staging tables of dates loaded more than a day ago, skipping any date a load holds right now. */
async function dropStaleStagingTables(client: pg.ClientBase, date: string): Promise<number> {
  const [{ rows }] = (await runSqlFile(client, 'stage_stale_tables', { values: { date } })) as [
    pg.QueryResult<{ table_name: string; dt: string }>,
  ];
  let dropped = 0;
  for (const { table_name, dt } of rows) {
    if (!(await tryLockDate(client, dt))) continue;
    await client.query(`drop table if exists staging.${client.escapeIdentifier(table_name)}`);
    dropped++;
  }
  return dropped;
}

/** The counts ops.staged_dates holds for a date. */
interface StageCounts {
  rowsRead: number;
  rowsSetAside: number;
  duplicates: number;
  rowsStaged: number;
}

/**
 * What an incremental stage run of the date builds on: the lake files its last load read and the stage counts it
 * left, when every one of those files is still in the manifest with the records the load read from it; null when
 * the date must be staged whole (never loaded, loaded before the counts were kept, or a file it loaded is gone or
 * changed in the manifest: staging it whole then checks every file against the manifest again).
 */
async function loadedBase(
  client: pg.ClientBase,
  date: string,
): Promise<{ fileIds: number[]; counts: StageCounts } | null> {
  const { rows } = await client.query<{
    loaded_file_ids: string[];
    missing: number;
    manifest_rows: string;
    rows_read: string;
    rows_set_aside: string;
    duplicates: string;
    rows_staged: string;
  }>(
    `select date_loads.loaded_file_ids,
            (select count(*) from unnest(date_loads.loaded_file_ids) as loaded(lake_file_id)
             where not exists (
               select from ops.lake_files
               where lake_files.lake_file_id = loaded.lake_file_id and lake_files.area = 'events'
                 and lake_files.dt = date_loads.dt))::int as missing,
            (select coalesce(sum(lake_files.row_count), 0) from ops.lake_files
             where lake_files.lake_file_id = any(date_loads.loaded_file_ids)) as manifest_rows,
            date_loads.loaded_rows_read as rows_read, date_loads.loaded_rows_set_aside as rows_set_aside,
            date_loads.loaded_duplicates as duplicates, date_loads.loaded_rows_staged as rows_staged
     from ops.date_loads
     where date_loads.dt = $1::date and date_loads.loaded_file_ids is not null
       and date_loads.loaded_rows_read is not null`,
    [date],
  );
  const row = rows[0];
  if (!row || row.missing > 0 || Number(row.manifest_rows) !== Number(row.rows_read)) return null;
  return {
    fileIds: row.loaded_file_ids.map(Number),
    counts: {
      rowsRead: Number(row.rows_read),
      rowsSetAside: Number(row.rows_set_aside),
      duplicates: Number(row.duplicates),
      rowsStaged: Number(row.rows_staged),
    },
  };
}

/** The committed lake files of the date outside `loaded`, ascending. */
async function filesAfter(client: pg.ClientBase, date: string, loaded: number[]): Promise<number[]> {
  const { rows } = await client.query<{ lake_file_id: string }>(
    `select lake_file_id from ops.lake_files
     where area = 'events' and dt = $1::date and lake_file_id <> all ($2::bigint[])
     order by lake_file_id`,
    [date, loaded],
  );
  return rows.map((r) => Number(r.lake_file_id));
}

/**
 * Stages one date into staging.events_YYYYMMDD (and the list of its lake files into staging.event_files_YYYYMMDD)
 * inside the caller's transaction, which holds the date lock.
 *
 * A date not loaded yet is staged whole: every committed lake file (only `fileIds` when given, to restore what an
 * earlier run read). A loaded date is staged incrementally: only the files that landed after its last load, and of
 * their records only those whose event_id the date's facts do not hold yet, so a re-load with nothing new stages
 * nothing and a re-delivery of loaded events stages nothing new. Either way surplus records of an event_id are
 * dropped, and what the run left is recorded in ops.date_stages in the same transaction, so the loads can verify
 * the unlogged tables before they read them; ops.staged_dates keeps the counts of every record of the date.
 */
export async function stageDate(
  client: pg.ClientBase,
  lake: LakeLocation,
  date: string,
  options: { fileIds?: number[]; baseFileIds?: number[] | null; runId?: string | null } = {},
): Promise<StageEventsOutput> {
  const table = stagingEventsTable(date);
  const identifiers = {
    events_table: table,
    files_table: stagingFilesTable(date),
    users_table: stagingUsersTable(date),
    devices_table: stagingDevicesTable(date),
  };
  // what to stage: a restore repeats the recorded run; otherwise a loaded date stages only what landed since
  let fileIds = options.fileIds ?? null;
  let base: { fileIds: number[]; counts: StageCounts } | null = null;
  if (fileIds === null || options.baseFileIds) {
    base = await loadedBase(client, date);
    if (options.baseFileIds && !base) {
      throw ApplicationFailure.create({
        message: `cannot restore the staging of ${date}: it was staged on top of lake files [${options.baseFileIds.join(', ')}], which the date's load record no longer lists in the manifest; re-run the date (make backfill DATE=${date})`,
        type: 'StagingLost',
        nonRetryable: true,
      });
    }
    if (base && fileIds === null) fileIds = await filesAfter(client, date, base.fileIds);
    // a restore after the date's facts took in some of the recorded files: only the rest is still to load
    else if (base && fileIds !== null) fileIds = fileIds.filter((id) => !base!.fileIds.includes(id));
  }
  await runSqlFile(client, 'stage_events', { identifiers, values: { date, file_ids: fileIds } });
  const [{ rows: files }] = (await runSqlFile(client, 'stage_events_files', { identifiers })) as [
    pg.QueryResult<ManifestFile>,
  ];
  if (options.fileIds && fileIds && files.length !== fileIds.length) {
    throw ApplicationFailure.create({
      message: `cannot restore the staging of ${date}: ${fileIds.length} lake files were staged, ${files.length} of them are still in ops.lake_files; re-run the date (make backfill DATE=${date})`,
      type: 'StagingLost',
      nonRetryable: true,
    });
  }
  const refs = files.map((f) => ({ lakeFileId: Number(f.lake_file_id), path: f.path }));
  const expectedRows = files.reduce((sum, f) => sum + Number(f.row_count), 0);
  let filesDone = 0;
  let rowsRead = 0;
  let copied = 0;
  let setAside: SetAsideRow[] = [];
  // event_ids that may occur more than once (lib/repeated-ids.ts); null: any may
  let candidates = null as string[] | null;
  // the distinct device triples of the copied records; null: not known here
  let devices = null as DeviceTriple[] | null;
  // the date's event_id filter and the neighbours' look-up candidates (activities/staging/filters.ts); with no file
  // to stage, nothing is added and no staged event_id is a candidate
  const filters = await filterJob(client, date, expectedRows, files.length > 0);
  let filtersBuilt: FilterResult | null = { own: null, candidates: filters.neighbours.map(() => []) };
  if (files.length > 0) {
    const onFile = (_file: LakeFileRef, rows: number) => {
      filesDone++;
      rowsRead += rows;
      heartbeat({ filesDone, files: files.length, rowsRead });
    };
    const copyAll = async (format: CopyFormat) => {
      filesDone = 0;
      rowsRead = 0;
      // decoded and encoded in a worker thread while this one streams the chunks into the COPY
      const chunks = new StagingChunks(lake, refs, format, onFile, expectedRows, undefined, filters);
      const { signal } = cancellation();
      try {
        // Frozen rows: otherwise the first statement to read every row (the dedupe's scan, the change log) sets
        // their commit hint bits, which dirties and writes out the whole table a second time (2.2 GB at 10M events).
        // FREEZE needs the table new in this subtransaction, and the savepoint below opened one after the create:
        // the truncate of a table this transaction created only gives it a new, empty file.
        await client.query(`truncate staging.${client.escapeIdentifier(table)}`);
        const copy = client.query(copyFrom(copyStatement(client, table, format, { freeze: true })));
        await pipeline(chunks, copy, { signal });
        candidates = chunks.candidates;
        devices = chunks.devices;
        filtersBuilt = chunks.filters;
        return Number(copy.rowCount);
      } catch (err) {
        // cancelled: the COPY ends with PostgreSQL's answer to CopyFail; the activity ends as cancelled
        signal?.throwIfAborted();
        throw err;
      } finally {
        await chunks.close();
      }
    };
    await client.query('savepoint stage_copy');
    try {
      try {
        copied = await copyAll('binary');
      } catch (err) {
        // a value only the text format carries exactly: the same files again, as text
        if (!(err instanceof BinaryCopyUnsupported)) throw err;
        await client.query('rollback to savepoint stage_copy');
        copied = await copyAll('text');
      }
      await client.query('release savepoint stage_copy');
    } catch (err) {
      // a row PostgreSQL refuses or a file that does not decode: find them, set them aside, stage the rest
      if (!isRowRefusal(err) && !(err instanceof LakeFileCorruptError)) throw err;
      await client.query('rollback to savepoint stage_copy');
      ({ copied, rowsRead, setAside } = await copyIsolating(client, lake, table, files));
      candidates = null;
      devices = null;
      filtersBuilt = null;
    }
  }
  const rowsSetAside = await recordSetAside(client, date, setAside, base ? refs.map((r) => r.lakeFileId) : null);
  const expected = expectedRows - rowsSetAside;
  rowsRead -= setAside.filter((r) => r.rowNumber !== null).length;
  if (copied !== expected || rowsRead !== expected) {
    throw ApplicationFailure.create({
      message: `staged ${copied} rows for ${date} but ops.lake_files lists ${expected}: a lake file differs from the manifest; check the files under ${lakeStore(lake).describe(`events/dt=${date}/`)}`,
      type: 'LakeManifestMismatch',
      nonRetryable: true,
    });
  }
  let duplicates = 0;
  let rowsAlreadyLoaded = 0;
  if (copied > 0) {
    // surplus records of an event_id: looked for among the fingerprinted candidates only, when there are any
    if (candidates === null || candidates.length > 0) {
      const [dedupe] = await runSqlFile(client, 'stage_events_dedupe', {
        identifiers: { events_table: table },
        values: { candidate_ids: candidates },
      });
      duplicates = dedupe.rowCount ?? 0;
    }
    if (base) {
      const [loaded] = await runSqlFile(client, 'stage_events_loaded', {
        identifiers: { events_table: table },
        values: { date_key: dateLockId(date) },
      });
      rowsAlreadyLoaded = loaded.rowCount ?? 0;
    }
    // the triples of every record copied: exact for the staged rows unless some records left the table again
    if (devices !== null && duplicates + rowsAlreadyLoaded === 0) {
      await runSqlFile(client, 'stage_events_devices', {
        identifiers,
        values: {
          device_types: devices.map((d) => d[0]),
          device_oses: devices.map((d) => d[1]),
          device_browsers: devices.map((d) => d[2]),
        },
      });
    }
    // the loads only need row counts and the common values of the join keys: a small sample is enough, and the
    // default one (30,000 rows over every column) costs as much as a tenth of the COPY
    await client.query('set local default_statistics_target = 10');
    await client.query(`analyze staging.${client.escapeIdentifier(table)}`);
    await client.query('reset default_statistics_target');
  }
  const rowsStaged = rowsRead - duplicates - rowsAlreadyLoaded;
  const prior = base?.counts ?? { rowsRead: 0, rowsSetAside: 0, duplicates: 0, rowsStaged: 0 };
  await runSqlFile(client, 'staged_dates', {
    values: {
      date,
      files: (base?.fileIds.length ?? 0) + files.length,
      rows_read: prior.rowsRead + rowsRead + rowsSetAside,
      rows_set_aside: prior.rowsSetAside + rowsSetAside,
      duplicates: prior.duplicates + duplicates + rowsAlreadyLoaded,
      rows_staged: prior.rowsStaged + rowsStaged,
    },
  });
  await recordFilters(client, date, filters, filtersBuilt, files.length > 0);
  await client.query(
    `insert into ops.date_stages (dt, staged_at, run_id, row_count, lake_file_ids, base_file_ids)
     values ($1::date, now(), $2, $3, $4::bigint[], $5::bigint[])
     on conflict (dt) do update
     set staged_at = excluded.staged_at, run_id = excluded.run_id, row_count = excluded.row_count,
         lake_file_ids = excluded.lake_file_ids, base_file_ids = excluded.base_file_ids`,
    [date, options.runId ?? null, rowsStaged, refs.map((r) => r.lakeFileId), base?.fileIds ?? null],
  );
  return {
    date,
    stagingTable: `staging.${table}`,
    files: files.length,
    bytes: files.reduce((sum, f) => sum + Number(f.bytes), 0),
    rowsRead: rowsRead + rowsSetAside,
    rowsStaged,
    rowsSetAside,
    duplicates,
    filesAlreadyLoaded: base?.fileIds.length ?? 0,
    rowsAlreadyLoaded,
  };
}

export interface EnsureStagedOutput {
  /** The staging table, unqualified (staging.<table>). */
  table: string;
  /** Why the date was staged again, when its staging tables did not match ops.date_stages; null when they did. */
  restaged: string | null;
  /** Rows in the staging table: one per event_id still to load. */
  rows: number;
  /**
   * The lake files already loaded that the stage run left out (an incremental run: staging holds only what is new
   * to the date); null when it staged every file.
   */
  baseFileIds: number[] | null;
}

interface DateStageRecord {
  row_count: string;
  lake_file_ids: string[];
  base_file_ids: string[] | null;
}

async function dateStageRecord(client: pg.ClientBase, date: string): Promise<DateStageRecord | undefined> {
  const { rows } = await client.query<DateStageRecord>(
    'select row_count, lake_file_ids, base_file_ids from ops.date_stages where dt = $1::date',
    [date],
  );
  return rows[0];
}

/**
 * Verifies the date's staging tables against what its last stage run recorded in ops.date_stages (row count and
 * lake files) before a load reads them, and stages the date again, from the same lake files on the same base, when
 * they differ: the tables are unlogged, so a database crash empties them. Inside the caller's transaction, which
 * holds the date lock. A date never staged is staged as a stage run would.
 */
export async function ensureStaged(
  client: pg.ClientBase,
  lake: LakeLocation,
  date: string,
): Promise<EnsureStagedOutput> {
  const table = stagingEventsTable(date);
  let record = await dateStageRecord(client, date);
  const recordedIds = (record?.lake_file_ids ?? []).map(Number).sort((a, b) => a - b);
  let problem: string | null = null;
  if (!record) {
    problem = 'no stage run recorded in ops.date_stages';
  } else {
    const { rows: found } = await client.query<{ events: boolean; files: boolean }>(
      `select to_regclass(format('staging.%I', $1::text)) is not null as events,
              to_regclass(format('staging.%I', $2::text)) is not null as files`,
      [table, stagingFilesTable(date)],
    );
    if (!found[0].events || !found[0].files) {
      problem = `staging.${table} or its file list is missing`;
    } else {
      // Empty or not, rather than a count: the stage run and every change to the table's rows (the fact load's
      // cross-date removal) commit with its record in one transaction, so what can leave the table out of step is
      // what crash recovery does to an unlogged table: it comes back empty. A count of 1M rows cost about 0.13 s,
      // three times per load (both dimension steps and facts).
      const { rows } = await client.query<{ filled: boolean; ids: string[] | null }>(
        `select exists (select from staging.${client.escapeIdentifier(table)}) as filled,
                (select array_agg(lake_file_id order by lake_file_id)
                 from staging.${client.escapeIdentifier(stagingFilesTable(date))}) as ids`,
      );
      const ids = (rows[0].ids ?? []).map(Number);
      if (rows[0].filled !== Number(record.row_count) > 0) {
        problem = `staging.${table} holds ${rows[0].filled ? 'rows' : '0 rows'}, the stage run left ${record.row_count}`;
      } else if (ids.length !== recordedIds.length || ids.some((id, i) => id !== recordedIds[i])) {
        problem = `staging.${table} was built from lake files [${ids.join(', ')}], the stage run read [${recordedIds.join(', ')}]`;
      }
    }
  }
  if (problem) {
    console.warn(JSON.stringify({ level: 'warn', msg: 'staging again', date, reason: problem }));
    await stageDate(
      client,
      lake,
      date,
      record ? { fileIds: recordedIds, baseFileIds: record.base_file_ids?.map(Number) ?? null } : {},
    );
    record = (await dateStageRecord(client, date))!;
  }
  return {
    table,
    restaged: problem,
    rows: Number(record!.row_count),
    baseFileIds: record!.base_file_ids?.map(Number) ?? null,
  };
}

export function createStageActivities(deps: ActivityDeps) {
  const { pool, db, config } = deps;

  /**
   * Stages one date: streams the date's committed lake files (ops.lake_files, area events) into a fresh unlogged
   * staging.events_YYYYMMDD by COPY, then drops surplus records of an event_id, and records the row count and files
   * in ops.date_stages. Grain: one row per event_id (its first record by Kafka partition and offset). Idempotent:
   * the table is dropped and rebuilt in one transaction under the date lock, so a retry or re-run stages the same
   * rows again.
   */
  async function stageEvents(input: DateStepInput): Promise<StageEventsOutput> {
    const run = () =>
      withDateLock(pool, input.date, async (client): Promise<StageEventsOutput> => {
        // as the loads: the repeated event_ids and a re-delivery's loaded ones are found by hashing in memory
        await client.query(`set local work_mem = '256MB'`);
        const result = await stageDate(client, lakeOf(config), input.date, { runId: input.run?.runId ?? null });
        await dropStaleStagingTables(client, input.date);
        return result;
      });
    if (!input.run) return run();
    let result!: StageEventsOutput;
    await recordStep(db, { ...input.run, date: input.date, step: 'stage' }, async () => {
      const r = (result = await run());
      return {
        rowsRead: r.rowsRead,
        rowsInserted: r.rowsStaged,
        details: {
          files: r.files,
          bytes: r.bytes,
          duplicates: r.duplicates,
          rowsSetAside: r.rowsSetAside,
          filesAlreadyLoaded: r.filesAlreadyLoaded,
          rowsAlreadyLoaded: r.rowsAlreadyLoaded,
        },
      };
    });
    return result;
  }

  return { stageEvents };
}

// ---------------------------------------------------------------------------------------------
// Set-aside: the slow path after a failed COPY. Staging is where PostgreSQL first sees the rows, and its table
// holds the warehouse's limits (CHECK constraints, amount as numeric(14,2)), so what it accepts loads.

/** A lake row (or a whole unreadable lake file, rowNumber null) set aside instead of staged. */
export interface SetAsideRow {
  lakeFileId: number;
  path: string;
  rowNumber: number | null;
  /** Records it stands for: 1, or the manifest's row_count of an unreadable file. */
  rows: number;
  topic: string | null;
  partition: number | null;
  offset: number | null;
  eventId: string | null;
  reason: string;
  sqlstate: string | null;
  raw: Buffer | null;
}

/** PostgreSQL refused a row's data (class 22 data exception, class 23 e.g. a CHECK): retrying cannot fix it. */
function isRowRefusal(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

function column(data: Table, name: string, row: number): unknown {
  const value: unknown = data.getChild(name)?.get(row);
  return value === undefined ? null : value;
}

/**
 * Stages the files one at a time: a file that does not decode is set aside whole; a file PostgreSQL refuses is
 * halved until each refused row stands alone, and those rows are set aside with PostgreSQL's error. Each COPY
 * runs under a savepoint, so a refused one leaves the transaction usable.
 */
async function copyIsolating(
  client: pg.ClientBase,
  lake: LakeLocation,
  table: string,
  files: ManifestFile[],
): Promise<{ copied: number; rowsRead: number; setAside: SetAsideRow[] }> {
  const setAside: SetAsideRow[] = [];
  let copied = 0;
  let rowsRead = 0;
  for (const [filesDone, f] of files.entries()) {
    const lakeFileId = Number(f.lake_file_id);
    let data: Table;
    try {
      data = await readLakeFile(lake, f.path);
    } catch (err) {
      if (!(err instanceof LakeFileCorruptError)) throw err;
      setAside.push({
        lakeFileId,
        path: f.path,
        rowNumber: null,
        rows: Number(f.row_count),
        topic: null,
        partition: null,
        offset: null,
        eventId: null,
        reason: err.message,
        sqlstate: null,
        raw: null,
      });
      continue;
    }
    checkColumns(data, f.path);
    const lines = copyTextLines(data, lakeFileId);
    rowsRead += lines.length;
    const refuse = (row: number, err: Error & { code?: string; where?: string }) => {
      const offset = column(data, 'kafka_offset', row);
      setAside.push({
        lakeFileId,
        path: f.path,
        rowNumber: row,
        rows: 1,
        topic: column(data, 'kafka_topic', row) as string | null,
        partition: column(data, 'kafka_partition', row) as number | null,
        offset: offset === null ? null : Number(offset),
        eventId: column(data, 'event_id', row) as string | null,
        reason: err.where ? `${err.message} (${err.where.replace(/^COPY \S+, line \d+, /, '')})` : err.message,
        sqlstate: err.code ?? null,
        raw: lines[row],
      });
    };
    copied += await copyBisecting(client, table, lines, 0, lines.length, refuse);
    heartbeat({ filesDone: filesDone + 1, files: files.length, rowsRead, setAside: setAside.length });
  }
  return { copied, rowsRead, setAside };
}

async function copyBisecting(
  client: pg.ClientBase,
  table: string,
  lines: Buffer[],
  from: number,
  to: number,
  refuse: (row: number, err: Error & { code?: string; where?: string }) => void,
): Promise<number> {
  if (from >= to) return 0;
  await client.query('savepoint stage_rows');
  try {
    const copy = client.query(copyFrom(copyStatement(client, table)));
    await pipeline(Readable.from([Buffer.concat(lines.slice(from, to))]), copy);
    await client.query('release savepoint stage_rows');
    return Number(copy.rowCount);
  } catch (err) {
    if (!isRowRefusal(err)) throw err;
    await client.query('rollback to savepoint stage_rows');
    await client.query('release savepoint stage_rows');
    if (to - from === 1) {
      refuse(from, err as Error);
      return 0;
    }
    const middle = (from + to) >>> 1;
    return (
      (await copyBisecting(client, table, lines, from, middle, refuse)) +
      (await copyBisecting(client, table, lines, middle, to, refuse))
    );
  }
}

/**
 * Replaces the date's set-aside rows with `rows`: all of them, or those of the lake files `fileIds` only (an
 * incremental stage run keeps what the files loaded before it set aside).
 */
async function recordSetAside(
  client: pg.ClientBase,
  date: string,
  rows: SetAsideRow[],
  fileIds: number[] | null,
): Promise<number> {
  await client.query(
    'delete from ops.rejected_rows where dt = $1::date and ($2::bigint[] is null or lake_file_id = any($2::bigint[]))',
    [date, fileIds],
  );
  for (const r of rows) {
    await client.query(
      `insert into ops.rejected_rows
         (dt, lake_file_id, path, row_number, kafka_topic, kafka_partition, kafka_offset, event_id, reason, sqlstate, raw_values)
       values ($1::date, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [date, r.lakeFileId, r.path, r.rowNumber, r.topic, r.partition, r.offset, r.eventId, r.reason, r.sqlstate, r.raw],
    );
  }
  return rows.reduce((sum, r) => sum + r.rows, 0);
}
