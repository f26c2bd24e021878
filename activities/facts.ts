import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import { dateLockId, lockDimUserShared, lockMidnights, withDateLock } from '../lib/locks';
import { recordStep } from '../lib/runs';
import { addDays } from '../lib/temporal';
import { factPartition } from '../warehouse/db';
import { bindStatement, runSqlFile, sqlStatements } from '../warehouse/sql';
import type { ActivityDeps, DateStepInput } from './deps';
import { setLoadSession } from './dimensions';
import { ensureStaged, filledStagingTable, stagingEventsTable, stagingFilesTable, stagingUsersTable } from './stage';
import { crossDateCandidates, neighbourDates } from './staging/filters';
import { lakeOf } from '../lib/lake-store';

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
  /**
   * The neighbouring dates with facts, each with how it was looked in for the date's event_ids: among the stage
   * run's candidates from its event_id filter, or by a join with every staged event_id (no filter, or it changed).
   */
  crossDateLookups: CrossDateLookups;
  /** ops.date_loads.needs_reload after the load: true when lake files landed for the date while it loaded. */
  needsReload: boolean;
  /** Why the date was staged again first (its unlogged staging did not match ops.date_stages); null when not. */
  restaged: string | null;
}

const NOT_NULL_VIOLATION = '23502';

/**
 * The statistics target of the ANALYZE after a date's first load: a sample of 9,000 rows. The default (100:
 * 30,000 rows, one per page at most) reads every page of a 1M-event partition, 0.55 s against 0.14 s, for
 * estimates the planner does not need finer: the marts and checks read one partition's event types, users and
 * devices.
 */
const PARTITION_STATISTICS_TARGET = 30;

/** How a neighbouring date was looked in for the date's event_ids, by its date (LoadFactsOutput.crossDateLookups). */
export type CrossDateLookups = Record<string, 'candidates' | 'join'>;

/**
 * The staged event_ids of the date that fact_events already holds under a neighbouring date, for each neighbour
 * whose partition exists: among the candidates the date's stage run found against the neighbour's event_id filter,
 * while that filter is unchanged (activities/staging/filters.ts), one primary-key probe each; else one merge join
 * of every staged event_id with the neighbour's primary key (warehouse/sql/fact_events_cross_date.sql). At 10M
 * events the join took 4.8-5.5 s of one core; the candidates, about 0.3 % of the staged ids, need no sort. The
 * planner settings the join needs are put back afterwards, since a re-load runs it inside its own transaction.
 */
async function crossDateIds(
  client: pg.ClientBase,
  date: string,
): Promise<{ ids: string[]; lookups: CrossDateLookups }> {
  const lookups: CrossDateLookups = {};
  const ids: string[] = [];
  for (const neighbour of neighbourDates(date)) {
    const name = await factPartition(client, dateLockId(neighbour));
    if (name === null) continue;
    const candidates = await crossDateCandidates(client, date, neighbour);
    let found: pg.QueryResult<{ event_id: string }>;
    if (candidates !== null) {
      lookups[neighbour] = 'candidates';
      found = await client.query(
        `select event_id from warehouse.${client.escapeIdentifier(name)} where event_id = any($1::uuid[])`,
        [candidates],
      );
    } else {
      lookups[neighbour] = 'join';
      found = await crossDateJoin(client, date, name);
    }
    for (const row of found.rows) ids.push(row.event_id);
  }
  // an event_id the two neighbours both hold is taken out once
  return { ids: [...new Set(ids)], lookups };
}

/** The merge join of every staged event_id of the date with the neighbour's primary key, planner settings put back. */
async function crossDateJoin(
  client: pg.ClientBase,
  date: string,
  neighbourTable: string,
): Promise<pg.QueryResult<{ event_id: string }>> {
  const { rows: before } = await client.query<{ hash: string; merge: string }>(
    `select current_setting('enable_hashjoin') as hash, current_setting('enable_mergejoin') as merge`,
  );
  await client.query(`select set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'on', true)`);
  const [found] = await runSqlFile(client, 'fact_events_cross_date', {
    identifiers: { events_table: stagingEventsTable(date), neighbour_table: neighbourTable },
  });
  await client.query(`select set_config('enable_hashjoin', $1, true), set_config('enable_mergejoin', $2, true)`, [
    before[0].hash,
    before[0].merge,
  ]);
  return found as pg.QueryResult<{ event_id: string }>;
}

/**
 * crossDateIds on a connection of its own, in a read-only transaction: a date's first fact load runs it while it
 * constrains and indexes its new partition and writes the user activity, so a merge join of the staged event_ids
 * with a neighbouring partition (a neighbour whose filter gives no candidates) takes the core those leave idle
 * instead of adding to the load. null when the pool has no connection to spare or the look-up failed (logged): the
 * load then looks in its own transaction.
 */
async function crossDateIdsAside(
  pool: pg.Pool,
  date: string,
): Promise<{ ids: string[]; lookups: CrossDateLookups } | null> {
  // never wait for a connection: the load holds one already, and on a pool with none to spare (a pool of one, or
  // every connection busy) it would wait for itself
  if (pool.idleCount === 0 && pool.totalCount >= (pool.options.max ?? 10)) return null;
  let client: pg.PoolClient | undefined;
  let failed: Error | undefined;
  try {
    client = await pool.connect();
    await client.query('begin read only');
    await setLoadSession(client);
    // one core: the load it runs beside has the other
    await client.query('set local max_parallel_workers_per_gather = 0');
    const found = await crossDateIds(client, date);
    await client.query('commit');
    return found;
  } catch (err) {
    failed = err as Error;
    console.warn(
      JSON.stringify({
        level: 'warn',
        msg: 'cross-date look-up beside the fact load failed',
        date,
        error: String(err),
      }),
    );
    return null;
  } finally {
    client?.release(failed); // a connection that failed mid-transaction is discarded, not reused
  }
}

/**
 * Takes the date's event_ids found under a neighbouring date out of its staging table, so that neither its facts
 * nor its user activity count them, and keeps the stage records in step: ops.date_stages' row count (or the next
 * load would stage the date again), and ops.staged_dates, which counts them as surplus records of an event_id
 * (their one fact is under the other date), so the reconciliation check still matches the landed records with the
 * facts. Returns the staged rows removed.
 */
async function removeCrossDate(client: pg.ClientBase, date: string, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const { rowCount } = await client.query(
    `delete from staging.${client.escapeIdentifier(stagingEventsTable(date))} where event_id = any($1::uuid[])`,
    [ids],
  );
  const removed = rowCount ?? 0;
  await client.query('update ops.date_stages set row_count = row_count - $2 where dt = $1::date', [date, removed]);
  await client.query(
    `update ops.staged_dates set duplicates = duplicates + $2, rows_staged = rows_staged - $2
     where dt = $1::date`,
    [date, removed],
  );
  return removed;
}

/** The date's bounds and key, as the SQL files under warehouse/sql/ take them. */
export function dateValues(date: string) {
  return {
    date,
    date_key: dateLockId(date),
    day_start: `${date}T00:00:00Z`,
    day_end: `${addDays(date, 1)}T00:00:00Z`,
  };
}

/**
 * Creates and attaches the date's empty fact partition unless it exists: for code that writes facts without a
 * load (test seeds, repairs). Loads create it themselves, filled before it is indexed.
 */
export async function ensureFactPartition(client: pg.ClientBase, dateKey: number): Promise<void> {
  if (await factPartition(client, dateKey)) return;
  await client.query('select warehouse.fact_partition_create($1::int)', [dateKey]);
  await client.query('select warehouse.fact_partition_attach($1::int)', [dateKey]);
}

/**
 * Rewrites the date's rows of warehouse.user_days and user_purchase_days from its facts, and user_activity for
 * its users (warehouse/sql/user_activity.sql), and marks the date's marts stale. The fact load calls it; so does
 * code that changes facts directly. `stagedUsers`, the date's staged users as the user dimension load counted them
 * (stagingUsersTable), gives the user_days rows without reading the facts again: only for a load whose facts are
 * the staged events one for one (a date's first load, before anything is taken out of them).
 */
export async function refreshUserActivity(
  client: pg.ClientBase,
  date: string,
  stagedUsers: string | null = null,
): Promise<void> {
  if (stagedUsers) {
    await runSqlFile(client, 'user_activity_days_staged', { identifiers: { users_table: stagedUsers } });
  } else {
    await runSqlFile(client, 'user_activity_days', { values: dateValues(date) });
  }
  await runSqlFile(client, 'user_activity', { values: dateValues(date) });
  // the date's marts now lag its facts (a mart refresh clears the mark). Written even when already set, so that a
  // refresh of the date under way from an older snapshot cannot clear it (see the dimension load)
  await client.query('update ops.date_loads set marts_stale = true where dt = $1::date', [date]);
}

/**
 * The identifiers and value fact_events.sql takes for the users whose versions it keys the date's events to: the
 * date's staged users as the user dimension load left them (stagingUsersTable), when it did and the table has rows;
 * otherwise every user (then users_table names the events table only so that the statement parses). The table only
 * exists for the staging the dimension load read: every stage run of the date drops it, and crash recovery empties
 * it with the staging table, which the load then stages again. The fact load's own cross-date removal only leaves
 * it naming users with no event left, whose versions are never matched.
 */
async function dayUsers(
  client: pg.ClientBase,
  date: string,
): Promise<{ identifiers: { users_table: string }; values: { all_users: boolean } }> {
  const users = stagingUsersTable(date);
  if (await filledStagingTable(client, users))
    return { identifiers: { users_table: users }, values: { all_users: false } };
  return { identifiers: { users_table: stagingEventsTable(date) }, values: { all_users: true } };
}

/** The counts user_activity_days_staged.sql reads from the staged users: each came with a version of the workers. */
const STAGED_USER_COUNTS = ['last_staged_at', 'page_views', 'add_to_carts', 'purchases'];

/**
 * The date's staged users with their counted events (stagingUsersTable), for refreshUserActivity: null when the
 * user dimension load left no such table for the date's staging, or left one without every count (a load older than
 * them, in a rolling upgrade of the workers).
 */
async function stagedUserCounts(client: pg.ClientBase, date: string): Promise<string | null> {
  const users = stagingUsersTable(date);
  if (!(await filledStagingTable(client, users))) return null;
  const { rows } = await client.query<{ counted: boolean }>(
    `select count(*) = cardinality($2::text[]) as counted
     from pg_attribute
     where attrelid = to_regclass($1) and attname = any($2::text[]) and not attisdropped`,
    [`staging.${client.escapeIdentifier(users)}`, STAGED_USER_COUNTS],
  );
  return rows[0].counted ? users : null;
}

/**
 * How keyedFacts writes the keyed rows: a date's first load as its new partition, a re-load as an unlogged scratch
 * table in staging.
 */
const KEYED_TABLE = {
  partition: 'create table warehouse.:"target_table" as',
  scratch: 'create unlogged table staging.:"target_table" with (autovacuum_enabled = false) as',
} as const;

/**
 * Writes the date's keyed facts (warehouse/sql/fact_events.sql) as the new table `target_table`, leaving out the
 * records of the lake files `skipFileIds`, and makes its user_key NOT NULL (on a partition, with the rest of what
 * attaching it needs: warehouse.fact_partition_constrain); a missing dim_user version (23502 on user_key) becomes
 * a non-retryable error. CREATE TABLE AS rather than INSERT ... SELECT: it may key the events with a parallel
 * worker while the leader writes them. `afterWrite` is called once the rows are written, before the constraints.
 */
async function keyedFacts(
  client: pg.ClientBase,
  date: string,
  identifiers: { events_table: string; target_table: string },
  skipFileIds: number[],
  into: keyof typeof KEYED_TABLE,
  afterWrite?: () => void,
): Promise<number> {
  await client.query('savepoint keyed_facts');
  try {
    const users = await dayUsers(client, date);
    const versions = `fact_versions_${dateLockId(date)}`;
    const vars = {
      identifiers: { ...identifiers, ...users.identifiers, day_versions_table: versions },
      values: { ...dateValues(date), ...users.values, loaded_file_ids: skipFileIds },
    };
    const escape = (id: string) => client.escapeIdentifier(id);
    const statements = sqlStatements('fact_events');
    for (const statement of statements.slice(0, -1)) await client.query(bindStatement(statement, vars, escape));
    // The Gather hands every keyed row to the leader, which writes it; at the default cost of a row handed over
    // (0.1) the planner keeps to one process. 1M events of a day: 3.04 s with a worker against 3.70 s without,
    // then 0.28 s for the constraints.
    await client.query('set local parallel_tuple_cost = 0.01');
    const written = await client.query(bindStatement(`${KEYED_TABLE[into]}\n${statements.at(-1)}`, vars, escape));
    await client.query('reset parallel_tuple_cost');
    afterWrite?.();
    await client.query(`drop table staging.${escape(versions)}`);
    if (into === 'partition') {
      await client.query('select warehouse.fact_partition_constrain($1::int)', [dateLockId(date)]);
    } else {
      await client.query(`alter table staging.${escape(identifiers.target_table)} alter column user_key set not null`);
    }
    await client.query('release savepoint keyed_facts');
    return written.rowCount ?? 0;
  } catch (err) {
    if ((err as { code?: string }).code !== NOT_NULL_VIOLATION) throw err;
    await client.query('rollback to savepoint keyed_facts');
    const { rows } = await client.query<{ n: number }>(
      `select count(*)::int as n from staging.${client.escapeIdentifier(identifiers.events_table)} as s
       where not exists (
         select from warehouse.dim_user as u
         where u.user_id = s.user_id and s.event_time >= u.valid_from and (u.valid_to is null or s.event_time < u.valid_to)
       )`,
    );
    throw ApplicationFailure.create({
      message: `${rows[0].n} staged events of ${date} have no dim_user version valid at their event_time: run loadUserDimension (or loadDimensions) for ${date} after its latest stageEvents, then loadFacts again`,
      type: 'DimensionsNotLoaded',
      nonRetryable: true,
    });
  }
}

/**
 * The lake files whose records a re-load of the date can skip: those its last fact load staged, when every one of
 * them is staged again (their facts are loaded, and dimension changes re-point them). None when the date has no
 * record of them, or a file it loaded is gone: then every record is compared.
 */
async function filesAlreadyLoaded(client: pg.ClientBase, date: string, stagedIds: number[]): Promise<number[]> {
  const { rows } = await client.query<{ ids: string[] | null }>(
    'select loaded_file_ids as ids from ops.date_loads where dt = $1::date',
    [date],
  );
  const loaded = (rows[0]?.ids ?? []).map(Number);
  const staged = new Set(stagedIds);
  return loaded.every((id) => staged.has(id)) ? loaded : [];
}

export function createFactActivities(deps: ActivityDeps) {
  const { pool, db, config } = deps;

  async function facts(date: string): Promise<LoadFactsOutput> {
    const output = await loadDate(date);
    if (output.rowsInserted + output.rowsUpdated > 0) await vacuumPartition(date);
    return output;
  }

  /**
   * VACUUM (ANALYZE) of the date's partition once its load committed (VACUUM cannot run in a transaction): a bulk
   * load leaves every row's hint bits unset and the visibility map empty, so otherwise the next reader (the marts)
   * dirties every page, counts read the heap instead of the primary key, and autovacuum does the same scan later,
   * likely while the next date loads. A failure leaves that to autovacuum and does not fail the load.
   * The statistics come from a sample of PARTITION_STATISTICS_TARGET x 300 rows.
   */
  async function vacuumPartition(date: string): Promise<void> {
    const client = await pool.connect();
    let failed: Error | undefined;
    try {
      await client.query("select set_config('default_statistics_target', $1, false)", [
        String(PARTITION_STATISTICS_TARGET),
      ]);
      await client.query(`vacuum (analyze) warehouse.${client.escapeIdentifier(`fact_events_${dateLockId(date)}`)}`);
      await client.query('reset default_statistics_target');
    } catch (err) {
      failed = err as Error;
      console.warn(
        JSON.stringify({ level: 'warn', msg: 'vacuum of the fact partition failed', date, error: String(err) }),
      );
    } finally {
      // a connection whose statistics target may still be set is discarded, not reused
      client.release(failed);
    }
  }

  async function loadDate(date: string): Promise<LoadFactsOutput> {
    const dateKey = dateLockId(date);
    const eventsTable = stagingEventsTable(date);
    return withDateLock(pool, date, async (client) => {
      await setLoadSession(client);
      // the staging table's rows, counted and checked against its stage run's record by ensureStaged
      const { restaged, baseFileIds, rows: rowsDistinct } = await ensureStaged(client, lakeOf(config), date);
      // Shared: fact loads of several dates run together, but never while a dim_user rebuild moves versions.
      await lockDimUserShared(client);
      // A neighbouring date's fact load that has not committed yet is waited for, so that the first of the two to
      // commit keeps an event_id sent on both dates, and the other one finds it there.
      await lockMidnights(client, date);
      const partition = await factPartition(client, dateKey);
      // A first load looks for the date's event_ids under the neighbouring dates on another connection (the look-up
      // reads staging as committed, so not after staging again in this transaction) and takes them out of the new
      // partition at the end; a re-load takes them out of staging before it compares anything.
      const aside = partition === null && restaged === null;
      let lookups: CrossDateLookups = {};
      let crossDate = 0;
      if (!aside) {
        const found = await crossDateIds(client, date);
        lookups = found.lookups;
        crossDate = await removeCrossDate(client, date, found.ids);
      }
      // The lake files the stage run read: their records, duplicates included, and whether files landed since.
      const { rows: files } = await client.query<{ ids: number[] | null; records: number }>(
        `select array_agg(lake_file_id) as ids, coalesce(sum(row_count), 0)::int as records
         from staging.${client.escapeIdentifier(stagingFilesTable(date))}`,
      );
      const stagedIds = (files[0].ids ?? []).map(Number);
      // the files the date's facts come from after this load: an incremental stage run's and those loaded before
      const loadedIds = [...(baseFileIds ?? []), ...stagedIds];

      let rowsInserted: number;
      let rowsUpdated = 0;
      let lookup: Promise<{ ids: string[]; lookups: CrossDateLookups } | null> | null = null;
      const skip = partition ? await filesAlreadyLoaded(client, date, stagedIds) : [];
      if (!partition) {
        // first load of the date: fill a plain table, index it in bulk, attach it as the date's partition
        const target = { events_table: eventsTable, target_table: `fact_events_${dateKey}` };
        // The look-up starts once the rows are written: beside the keying it took the core of its parallel worker;
        // beside the constraints, the indexes and the user activity, which leave a core idle most of the time, it
        // costs the load next to nothing.
        rowsInserted = await keyedFacts(client, date, target, [], 'partition', () => {
          lookup = crossDateIdsAside(pool, date);
        });
        await client.query('select warehouse.fact_partition_attach($1::int)', [dateKey]);
      } else if (skip.length === stagedIds.length || (baseFileIds !== null && rowsDistinct - crossDate === 0)) {
        // re-load with no new lake file, or an incremental stage run that found nothing new: every record is loaded
        rowsInserted = 0;
      } else {
        // re-load: key the records of the files not loaded yet into a scratch table, find the rows that are new
        // or differ in one join, write only those
        const identifiers = {
          events_table: eventsTable,
          facts_table: `facts_${dateKey}`,
          changes_table: `fact_changes_${dateKey}`,
        };
        await runSqlFile(client, 'fact_events_scratch', { identifiers });
        await keyedFacts(
          client,
          date,
          { events_table: eventsTable, target_table: identifiers.facts_table },
          skip,
          'scratch',
        );
        const values = { date_key: dateKey };
        await runSqlFile(client, 'fact_events_changes', { identifiers, values });
        const [updated] = await runSqlFile(client, 'fact_events_update', { identifiers, values });
        const [inserted] = await runSqlFile(client, 'fact_events_insert', { identifiers, values });
        await runSqlFile(client, 'fact_events_cleanup', { identifiers });
        rowsUpdated = updated.rowCount ?? 0;
        rowsInserted = inserted.rowCount ?? 0;
      }
      const { rows: activity } = await client.query<{ found: boolean }>(
        'select exists (select from warehouse.user_days where date_key = $1::int) as found',
        [dateKey],
      );
      // unchanged facts leave the date's activity rows as they are
      if (rowsInserted + rowsUpdated > 0 || !activity[0].found) {
        // a first load's facts are its staged events one for one until the cross-date ones are taken out below
        await refreshUserActivity(client, date, aside ? await stagedUserCounts(client, date) : null);
      }
      if (aside) {
        const found = (await lookup) ?? (await crossDateIds(client, date));
        const ids = found.ids;
        lookups = found.lookups;
        crossDate = await removeCrossDate(client, date, ids);
        if (ids.length > 0) {
          const removed = await client.query(
            `delete from warehouse.${client.escapeIdentifier(`fact_events_${dateKey}`)} where event_id = any($1::uuid[])`,
            [ids],
          );
          rowsInserted -= removed.rowCount ?? 0;
          // the activity rows just written counted them (usually none are found)
          await refreshUserActivity(client, date);
        }
      }

      // an incremental stage run that changed nothing leaves the date's marts as current as they were
      const factsChanged = baseFileIds === null || rowsInserted + rowsUpdated > 0;
      await runSqlFile(client, 'date_loads', {
        values: { date, staged_file_ids: loadedIds, facts_changed: factsChanged },
      });
      const { rows: marked } = await client.query<{ needs_reload: boolean }>(
        'select needs_reload from ops.date_loads where dt = $1::date',
        [date],
      );
      // the date's records and distinct event_ids: staging's, or after an incremental stage run the counts it kept
      // for every file of the date (ops.staged_dates), so a re-load reports the date's facts as unchanged
      let records = files[0].records;
      let distinct = rowsDistinct;
      if (baseFileIds !== null) {
        const { rows: counts } = await client.query<{ rows_read: string; rows_staged: string }>(
          'select rows_read, rows_staged from ops.staged_dates where dt = $1::date',
          [date],
        );
        records = Number(counts[0].rows_read);
        // rows_staged no longer holds this run's cross-date duplicates (counted above as surplus records)
        distinct = Number(counts[0].rows_staged) + crossDate;
      }
      return {
        date,
        rowsRead: records,
        rowsDistinct: distinct,
        rowsInserted,
        rowsUpdated,
        rowsUnchanged: distinct - crossDate - rowsInserted - rowsUpdated,
        duplicates: records - distinct,
        crossDateDuplicates: crossDate,
        crossDateLookups: lookups,
        needsReload: marked[0].needs_reload,
        restaged,
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
          crossDateLookups: r.crossDateLookups,
          needsReload: r.needsReload,
          ...(r.restaged ? { restaged: r.restaged } : {}),
        },
      };
    });
    return result;
  }

  return { loadFacts };
}
