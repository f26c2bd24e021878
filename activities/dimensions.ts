import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { dateLockId, lockDimUserExclusive, withDateLock } from '../lib/locks';
import { recordStep } from '../lib/runs';
import { runSqlFile } from '../warehouse/sql';
import type { ActivityDeps, DateStepInput } from './deps';
import { ensureStaged, filledStagingTable, stagingDevicesTable, stagingEventsTable, stagingUsersTable } from './stage';
import { lakeOf } from '../lib/lake-store';

export interface LoadDeviceDimensionOutput {
  date: string;
  /** Why the date was staged again first (its unlogged staging did not match ops.date_stages); null when not. */
  restaged: string | null;
  /** Distinct device triples in the date's staged events (the unknown member included when used). */
  devicesRead: number;
  devicesInserted: number;
}

export interface LoadUserDimensionOutput {
  date: string;
  /** Why the date was staged again first (its unlogged staging did not match ops.date_stages); null when not. */
  restaged: string | null;
  /** Users with events in the date's staged events. Versions are rebuilt for those with new changes, no version yet, or an earlier first event. */
  usersTouched: number;
  /** Attribute events (user_signup, profile_update, plan_change) staged for the date, and new to the change log. */
  changesRead: number;
  changesInserted: number;
  versionsInserted: number;
  versionsUpdated: number;
  versionsDeleted: number;
  versionsUnchanged: number;
  /** Facts of other dates moved to another version because a version boundary moved. */
  factsRepointed: number;
}

export interface LoadDimensionsOutput {
  date: string;
  device: LoadDeviceDimensionOutput;
  user: LoadUserDimensionOutput;
  /**
   * The activity's attempt (1 outside Temporal). From the second on, an earlier attempt may have committed version
   * changes and died before reporting them: this one then finds nothing left to change, and the counts above do not
   * say what the date's load changed.
   */
  attempt: number;
}

/** The attempt of the running activity; 1 when called directly (scripts, tests). */
function activityAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

/**
 * Session settings of the dimension and fact statements, for the current transaction: sorts and hashes of a day's
 * rows stay in memory, and no merge joins. Joining a day's events to the day's user versions, the planner picks a
 * merge join once the day passes a few million events, which sorts every event on disk: measured at 10M events,
 * 17.8 s against 5.6 s for the hash join on the versions (EXPLAIN ANALYZE in the issue 7 note). A day's loads join
 * a big side to a smaller one, which a hash join does in one pass over each.
 *
 * No JIT compilation either: the statements' estimated costs (hash joins over the day's staged events) pass
 * jit_above_cost, and compiling took longer than running: the versions table of a re-load that rebuilt no user
 * spent 4.4 s in JIT for 5 ms of execution, and JIT made the day's first scans slower, not faster.
 *
 * A small statistics sample, as the stage's: the loads analyze their scratch tables (the day's users, their change
 * log, versions, moves) only so that joins are planned on their row counts and key distributions. The default
 * sample (30,000 rows, every column) took 100-160 ms per table on day 2 of 1M events, five tables in all; with 3,000
 * rows 10-15 ms. The fact partition's own statistics come from the VACUUM (ANALYZE) after the load commits, with the
 * default sample.
 */
export async function setLoadSession(client: pg.ClientBase): Promise<void> {
  await client.query(
    `set local work_mem = '256MB'; set local enable_mergejoin = off; set local jit = off;
     set local default_statistics_target = 10`,
  );
}

const NO_USER_CHANGES = {
  usersTouched: 0,
  changesRead: 0,
  changesInserted: 0,
  versionsInserted: 0,
  versionsUpdated: 0,
  versionsDeleted: 0,
  versionsUnchanged: 0,
  factsRepointed: 0,
};

export function createDimensionActivities(deps: ActivityDeps) {
  const { pool, db, config } = deps;

  async function deviceDimension(date: string): Promise<LoadDeviceDimensionOutput> {
    return withDateLock(pool, date, async (client) => {
      await setLoadSession(client);
      const { table, restaged, rows } = await ensureStaged(client, lakeOf(config), date);
      // nothing staged (an incremental stage run found nothing new): no device to add
      if (rows === 0) return { date, restaged, devicesRead: 0, devicesInserted: 0 };
      const devices = stagingDevicesTable(date);
      const fromStage = await filledStagingTable(client, devices);
      const [result] = await runSqlFile(client, 'dim_device', {
        identifiers: { events_table: table, devices_table: fromStage ? devices : table },
        values: { from_stage: fromStage },
      });
      return { date, restaged, devicesRead: result.rows[0].count_read, devicesInserted: result.rows[0].count_inserted };
    });
  }

  async function userDimension(date: string): Promise<LoadUserDimensionOutput> {
    const suffix = dateLockId(date);
    const identifiers = {
      events_table: stagingEventsTable(date),
      versions_table: `user_versions_${suffix}`,
      desired_table: `user_desired_${suffix}`,
      moved_table: `user_moved_${suffix}`,
      changes_table: `user_changes_${suffix}`,
      users_table: stagingUsersTable(date),
      history_table: `user_history_${suffix}`,
      existing_table: `user_existing_${suffix}`,
    };
    return withDateLock(pool, date, async (client) => {
      await setLoadSession(client);
      const { restaged, rows } = await ensureStaged(client, lakeOf(config), date);
      // nothing staged: no change, no user whose versions could move
      if (rows === 0) return { date, restaged, ...NO_USER_CHANGES };
      await lockDimUserExclusive(client);
      const changes = (await runSqlFile(client, 'user_changes', { identifiers, values: { date } })).at(-1)!;
      await runSqlFile(client, 'dim_user_versions', { identifiers });
      const { rows: sizes } = await client.query<{ users: number; versions: number }>(
        // versions: the rebuilt users' desired versions, plus the kept versions of the staged users not rebuilt
        `select (select count(*) from staging.${client.escapeIdentifier(identifiers.users_table)})::int as users,
           ((select count(*) from staging.${client.escapeIdentifier(identifiers.versions_table)})
            + (select count(*) from warehouse.dim_user
               inner join staging.${client.escapeIdentifier(identifiers.users_table)} as staged_users using (user_id)
               where not staged_users.is_rebuilt))::int as versions`,
      );
      const applied = await runSqlFile(client, 'dim_user_apply', { identifiers });
      const count = (command: string) => applied.find((r) => r.command === command)?.rowCount ?? 0;
      const [repointed] = await runSqlFile(client, 'dim_user_repoint_facts', { identifiers });
      await runSqlFile(client, 'dim_user_cleanup', { identifiers });
      const versionsInserted = count('INSERT');
      const versionsUpdated = count('UPDATE');
      if (versionsInserted + versionsUpdated + count('DELETE') + repointed.rows[0].count_repointed > 0) {
        // a version's range or attributes moved: the marts of any date with facts of these users may lag. Every
        // row is written, already stale or not: a refresh of a date under way from an older snapshot then fails to
        // clear the mark (a serialization failure, and it starts again) instead of clearing this load's mark with
        // marts built before it (rows locked in date order, as the mart refresh does, so the two never deadlock)
        await client.query(
          `update ops.date_loads set marts_stale = true
           where dt in (select dt from ops.date_loads order by dt for update)`,
        );
      }
      return {
        date,
        restaged,
        usersTouched: sizes[0].users,
        changesRead: changes.rows[0].count_read,
        changesInserted: changes.rows[0].count_inserted,
        versionsInserted,
        versionsUpdated,
        versionsDeleted: count('DELETE'),
        versionsUnchanged: sizes[0].versions - versionsInserted - versionsUpdated,
        factsRepointed: repointed.rows[0].count_repointed,
      };
    });
  }

  /**
   * Adds the device triples of the date's staged events to dim_device. Grain: one row per (device_type, os,
   * browser). Idempotent: only triples not yet present are inserted.
   */
  async function loadDeviceDimension(input: DateStepInput): Promise<LoadDeviceDimensionOutput> {
    if (!input.run) return deviceDimension(input.date);
    let result!: LoadDeviceDimensionOutput;
    await recordStep(db, { ...input.run, date: input.date, step: 'dim_device' }, async () => {
      const r = (result = await deviceDimension(input.date));
      return {
        rowsRead: r.devicesRead,
        rowsInserted: r.devicesInserted,
        rowsUnchanged: r.devicesRead - r.devicesInserted,
      };
    });
    return result;
  }

  /**
   * SCD Type-2 load of dim_user for the users with events on the date: adds their attribute events to the
   * change log, rebuilds each user's versions from it (set-based), applies the difference to dim_user and
   * re-points facts whose version moved. Grain: one row per user version. Idempotent and order-independent:
   * the versions are a pure function of the change log and the user's earliest event, so a re-load changes
   * nothing and dates loaded in any order end in the same rows.
   */
  async function loadUserDimension(input: DateStepInput): Promise<LoadUserDimensionOutput> {
    if (!input.run) return userDimension(input.date);
    let result!: LoadUserDimensionOutput;
    await recordStep(db, { ...input.run, date: input.date, step: 'dim_user' }, async () => {
      const r = (result = await userDimension(input.date));
      return {
        rowsRead: r.usersTouched,
        rowsInserted: r.versionsInserted,
        rowsUpdated: r.versionsUpdated,
        rowsUnchanged: r.versionsUnchanged,
        details: {
          changesRead: r.changesRead,
          changesInserted: r.changesInserted,
          versionsDeleted: r.versionsDeleted,
          factsRepointed: r.factsRepointed,
        },
      };
    });
    return result;
  }

  /**
   * The dimensions step of the daily pipeline: dim_device, then dim_user (each in its own transaction under the
   * date lock). Grain and idempotency as in loadDeviceDimension and loadUserDimension. Recorded as step
   * "dimensions", with rows counting dim_user versions.
   */
  async function loadDimensions(input: DateStepInput): Promise<LoadDimensionsOutput> {
    const run = async () => {
      const device = await deviceDimension(input.date);
      const user = await userDimension(input.date);
      return { date: input.date, device, user, attempt: activityAttempt() };
    };
    if (!input.run) return run();
    let result!: LoadDimensionsOutput;
    await recordStep(db, { ...input.run, date: input.date, step: 'dimensions' }, async () => {
      const r = (result = await run());
      return {
        rowsRead: r.user.usersTouched,
        rowsInserted: r.user.versionsInserted + r.device.devicesInserted,
        rowsUpdated: r.user.versionsUpdated,
        rowsUnchanged: r.user.versionsUnchanged,
        details: { device: r.device, user: r.user },
      };
    });
    return result;
  }

  return { loadDeviceDimension, loadUserDimension, loadDimensions };
}
