import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import { dateLockId, lockDimUserShared, withDateLock } from '../lib/locks';
import { recordStep } from '../lib/runs';
import { runSqlFile } from '../warehouse/sql';
import type { ActivityDeps, DateStepInput } from './deps';
import { requireStaged, setLoadSession } from './dimensions';
import { stagingEventsTable, stagingFilesTable } from './stage';

export interface LoadFactsOutput {
  date: string;
  /** Lake records of the date behind the staged rows, duplicates included. */
  rowsRead: number;
  /** Distinct event_ids among them: the fact rows the date has. */
  rowsDistinct: number;
  rowsInserted: number;
  rowsUpdated: number;
  rowsUnchanged: number;
  /** Records dropped as duplicates of an event_id (producer retries). */
  duplicates: number;
  /** Events whose event_id is already loaded under another date (sent again with another event_time); kept there. */
  crossDateDuplicates: number;
  /** ops.date_loads.needs_reload after the load: true when lake files landed for the date while it loaded. */
  needsReload: boolean;
}

const UNIQUE_VIOLATION = '23505';

export function createFactActivities(deps: ActivityDeps) {
  const { pool, db } = deps;

  async function facts(date: string): Promise<LoadFactsOutput> {
    const dateKey = dateLockId(date);
    const identifiers = { events_table: stagingEventsTable(date), facts_table: `facts_${dateKey}` };
    const values = {
      date,
      date_key: dateKey,
      day_start: `${date}T00:00:00Z`,
      day_end: new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString(),
    };
    return withDateLock(pool, date, async (client) => {
      await setLoadSession(client);
      await requireStaged(client, date);
      // Shared: fact loads of several dates run together, but never while a dim_user rebuild moves versions.
      await lockDimUserShared(client);
      await runSqlFile(client, 'fact_events', { identifiers, values });
      const { rows: staged } = await client.query<{ n: number }>(
        `select count(*)::int as n from staging.${client.escapeIdentifier(identifiers.events_table)}`,
      );
      const rowsDistinct = staged[0].n;
      const { rows: missing } = await client.query<{ n: number }>(
        `select count(*)::int as n from staging.${client.escapeIdentifier(identifiers.facts_table)} where user_key is null`,
      );
      if (missing[0].n > 0) {
        throw ApplicationFailure.create({
          message: `${missing[0].n} staged events of ${date} have no dim_user version valid at their event_time: run loadUserDimension (or loadDimensions) for ${date} after its latest stageEvents, then loadFacts again`,
          type: 'DimensionsNotLoaded',
          nonRetryable: true,
        });
      }
      const [updated] = await runSqlFile(client, 'fact_events_update', { identifiers, values });
      let crossDate = 0;
      await client.query('savepoint fact_insert');
      let inserted: pg.QueryResult;
      try {
        [inserted] = await runSqlFile(client, 'fact_events_insert', { identifiers, values });
      } catch (err) {
        if ((err as { code?: string }).code !== UNIQUE_VIOLATION) throw err;
        await client.query('rollback to savepoint fact_insert');
        const [dropped] = await runSqlFile(client, 'fact_events_cross_date', { identifiers, values });
        crossDate = dropped.rowCount ?? 0;
        [inserted] = await runSqlFile(client, 'fact_events_insert', { identifiers, values });
      }
      await runSqlFile(client, 'fact_events_cleanup', { identifiers });
      // The lake files the stage run read: their records, duplicates included, and whether files landed since.
      const { rows: files } = await client.query<{ ids: number[] | null; records: number }>(
        `select array_agg(lake_file_id) as ids, coalesce(sum(row_count), 0)::int as records
         from staging.${client.escapeIdentifier(stagingFilesTable(date))}`,
      );
      const read = [{ n: files[0].records }];
      await runSqlFile(client, 'date_loads', { values: { date, staged_file_ids: (files[0].ids ?? []).map(Number) } });
      const { rows: marked } = await client.query<{ needs_reload: boolean }>(
        'select needs_reload from ops.date_loads where dt = $1::date',
        [date],
      );
      const rowsInserted = inserted.rowCount ?? 0;
      const rowsUpdated = updated.rowCount ?? 0;
      return {
        date,
        rowsRead: read[0].n,
        rowsDistinct,
        rowsInserted,
        rowsUpdated,
        rowsUnchanged: rowsDistinct - crossDate - rowsInserted - rowsUpdated,
        duplicates: read[0].n - rowsDistinct,
        crossDateDuplicates: crossDate,
        needsReload: marked[0].needs_reload,
      };
    });
  }

  /**
   * Upserts the date's staged events into warehouse.fact_events and marks the date loaded in ops.date_loads.
   * Grain: one row per event_id (duplicate records collapse to one), user_key the dim_user version valid at
   * event_time. Idempotent: rows that would not change are not written, so a re-load keeps loaded_at.
   */
  async function loadFacts(input: DateStepInput): Promise<LoadFactsOutput> {
    if (!input.run) return facts(input.date);
    let result!: LoadFactsOutput;
    await recordStep(db, { ...input.run, date: input.date, step: 'facts' }, async () => {
      const r = (result = await facts(input.date));
      return {
        rowsRead: r.rowsRead,
        rowsInserted: r.rowsInserted,
        rowsUpdated: r.rowsUpdated,
        rowsUnchanged: r.rowsUnchanged,
        details: {
          distinct: r.rowsDistinct,
          duplicates: r.duplicates,
          crossDateDuplicates: r.crossDateDuplicates,
          needsReload: r.needsReload,
        },
      };
    });
    return result;
  }

  return { loadFacts };
}
