import { ApplicationFailure } from '@temporalio/common';
import { lockDimUserShared, withDateLock } from '../lib/locks';
import { recordStep } from '../lib/runs';
import { runSqlFile } from '../warehouse/sql';
import type { ActivityDeps, DateStepInput } from './deps';
import { requireStaged, setLoadSession } from './dimensions';

export interface LoadFactsOutput {
  date: string;
  /** Staged lake records of the date, duplicates included. */
  rowsRead: number;
  /** Distinct event_ids among them: the fact rows the date has. */
  rowsDistinct: number;
  rowsInserted: number;
  rowsUpdated: number;
  rowsUnchanged: number;
  /** Records dropped as duplicates of an event_id (producer retries). */
  duplicates: number;
  /** ops.date_loads.needs_reload after the load: true when lake files landed for the date while it loaded. */
  needsReload: boolean;
}

const NOT_NULL_VIOLATION = '23502';

export function createFactActivities(deps: ActivityDeps) {
  const { pool, db } = deps;

  async function facts(date: string): Promise<LoadFactsOutput> {
    return withDateLock(pool, date, async (client) => {
      await setLoadSession(client);
      const table = await requireStaged(client, date);
      // Shared: fact loads of several dates run together, but never while a dim_user rebuild moves versions.
      await lockDimUserShared(client);
      let counts: { count_read: number; count_distinct: number; count_inserted: number; count_updated: number };
      try {
        const [result] = await runSqlFile(client, 'fact_events', { identifiers: { events_table: table } });
        counts = result.rows[0];
      } catch (err) {
        if ((err as { code?: string; column?: string }).code === NOT_NULL_VIOLATION && (err as { column?: string }).column === 'user_key') {
          throw ApplicationFailure.create({
            message: `staged events of ${date} have users with no dim_user version valid at their event_time: run loadUserDimension (or loadDimensions) for ${date} after its latest stageEvents, then loadFacts again`,
            type: 'DimensionsNotLoaded',
            nonRetryable: true,
            cause: err as Error,
          });
        }
        throw err;
      }
      const { rows: files } = await client.query<{ ids: number[] | null }>(
        `select array_agg(distinct lake_file_id) as ids from staging.${client.escapeIdentifier(table)}`,
      );
      await runSqlFile(client, 'date_loads', { values: { date, staged_file_ids: (files[0].ids ?? []).map(Number) } });
      const { rows: marked } = await client.query<{ needs_reload: boolean }>(
        'select needs_reload from ops.date_loads where dt = $1::date',
        [date],
      );
      const rowsInserted = counts.count_inserted;
      const rowsUpdated = counts.count_updated;
      return {
        date,
        rowsRead: counts.count_read,
        rowsDistinct: counts.count_distinct,
        rowsInserted,
        rowsUpdated,
        rowsUnchanged: counts.count_distinct - rowsInserted - rowsUpdated,
        duplicates: counts.count_read - counts.count_distinct,
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
        details: { distinct: r.rowsDistinct, duplicates: r.duplicates, needsReload: r.needsReload },
      };
    });
    return result;
  }

  return { loadFacts };
}
