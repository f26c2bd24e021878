import type pg from 'pg';
import { factPartition } from '../warehouse/db';
import { CHECKS_SQL_DIR, runSqlFile } from '../warehouse/sql';
import { type VolumeConfig, type VolumeDay, judgeVolume, volumeHistoryDays } from './volume';

/**
 * The data-quality checks of SPEC section 6 as a declarative registry: each entry names the check and the table it
 * looks at, its severity and how the row its SQL returns is judged against the thresholds (pass, warn, fail, skip).
 * The SQL is warehouse/checks/<name>.sql, run by warehouse/sql.ts with the named values of checkValues bound as
 * parameters (each file also runs as it is in psql; its header says how). Adding a check is adding one entry to
 * CHECKS and its .sql file. Thresholds come from DqConfig (Config.dq, read by lib/config.ts; the SPEC's defaults).
 */

type Queryable = Pick<pg.ClientBase, 'query' | 'escapeIdentifier'>;

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';
export type Severity = 'warn' | 'fail';

export interface DqConfig extends VolumeConfig {
  /** freshness (scheduled run): newest event_time younger than this. DQ_FRESHNESS_MAX_AGE_HOURS, default 24. */
  freshnessMaxAgeHours: number;
  /** freshness (backfilled date): the date's newest event within this many hours of its end. DQ_FRESHNESS_LAST_HOURS, default 1. */
  freshnessLastHours: number;
  /** nulls: allowed share of fact rows with a null critical column. DQ_NULL_MAX_RATIO, default 0. */
  nullMaxRatio: number;
  /** dead letters: dead-lettered share of the date's records must stay below this. DQ_DEAD_LETTER_MAX_RATIO, default 0.01. */
  deadLetterMaxRatio: number;
  /** reconciliation: allowed absolute difference between fact rows and distinct landed records. DQ_RECONCILIATION_TOLERANCE, default 0. */
  reconciliationTolerance: number;
  /** schedule gaps: allowed days without a successful run. DQ_SCHEDULE_GAPS_MAX, default 0. */
  scheduleGapsMax: number;
  /** schedule gaps: the first day the schedule should have run. DQ_SCHEDULE_START (YYYY-MM-DD); default the first date a scheduled run loaded. */
  scheduleStart: string | null;
}

export const DQ_DEFAULTS: DqConfig = {
  freshnessMaxAgeHours: 24,
  freshnessLastHours: 1,
  volumeTolerance: 0.2,
  volumeMinHistoryDays: 3,
  nullMaxRatio: 0,
  deadLetterMaxRatio: 0.01,
  reconciliationTolerance: 0,
  scheduleGapsMax: 0,
  scheduleStart: null,
  volumeWeeks: 8,
  volumeMinWeeks: 3,
  volumeMadK: 4,
  volumeMinBand: 0.1,
  volumeFloorRows: 100,
};

/** What a check's evaluation is about. */
export interface CheckContext {
  /** The date checked, YYYY-MM-DD. */
  date: string;
  /** The date as warehouse.dim_date.date_key, e.g. 20241217. */
  dateKey: number;
  /** The scheduled daily run (freshness against the clock) rather than a backfill of a past date. */
  scheduled: boolean;
  /** The clock the scheduled freshness rule compares with. */
  now: Date;
  config: DqConfig;
}

/** A check's verdict before severity applies: ok, not ok, or skipped. */
export interface Verdict {
  ok: boolean | 'skip';
  observed: number | null;
  /** What the observed value was compared with, in words: the expectation. */
  threshold: string;
  details: string;
}

export interface CheckDefinition<Row = any> {
  name: string;
  table: string;
  /** The status a failed rule gets. */
  severity: Severity;
  /** True when the check is about the date's own data (not the whole warehouse's). */
  dateScoped: boolean;
  /** What judge receives: the SQL's first row (default), or all its rows. */
  result?: 'row' | 'rows';
  /** Optional second look, for figures one SQL statement cannot reach; its fields are merged into the row. */
  enrich?(client: Queryable, row: Row, ctx: CheckContext): Promise<Record<string, unknown>>;
  /** The further warehouse/checks/ files enrich runs, beside the check's own <name>.sql. */
  enrichSql?: string[];
  /**
   * Further warehouse/checks/ files of a check judged on its first row, each run as a statement of its own when
   * checks run side by side (evaluateChecks), on whichever connection is free; their first rows are merged into the
   * check's row before it is judged. A part takes a scan the check's own SQL would otherwise add to the longest
   * check.
   */
  parts?: string[];
  /**
   * One of the longest checks, started before the others when checks run side by side (evaluateChecks): started last,
   * it would leave a connection idle while it ran.
   */
  longest?: boolean;
  judge(row: Row, ctx: CheckContext): Verdict;
}

export interface CheckResult {
  check: string;
  table: string;
  status: CheckStatus;
  observed: number | null;
  threshold: string;
  details: string;
}

const STAGING_DUPLICATES_SQL = 'reconciliation_staging_duplicates';

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const pct = (ratio: number): string => `${(ratio * 100).toFixed(2).replace(/\.?0+$/, '')} %`;

/** The checks, in the order they run and are reported. */
export const CHECKS: CheckDefinition[] = [
  {
    name: 'freshness',
    table: 'warehouse.fact_events',
    severity: 'fail',
    dateScoped: true,
    judge(row, ctx) {
      if (ctx.scheduled) {
        const limit = ctx.config.freshnessMaxAgeHours;
        if (row.newest_at === null) {
          return { ok: false, observed: null, threshold: `< ${limit} h old`, details: 'no facts loaded at all' };
        }
        const age = round(num(row.age_hours), 2);
        return {
          ok: age < limit,
          observed: age,
          threshold: `newest event_time < ${limit} h old`,
          details: `newest event_time ${new Date(row.newest_at).toISOString()} is ${age} h old`,
        };
      }
      const limit = ctx.config.freshnessLastHours;
      if (row.date_newest_at === null) {
        return {
          ok: false,
          observed: null,
          threshold: `data within ${limit} h of the end of ${ctx.date}`,
          details: `no facts for ${ctx.date}`,
        };
      }
      const short = round(num(row.hours_short), 2);
      return {
        ok: short <= limit,
        observed: short,
        threshold: `newest event of the date within ${limit} h of its end`,
        details: `the date's newest event_time ${new Date(row.date_newest_at).toISOString()} is ${short} h before the end of ${ctx.date}`,
      };
    },
  },
  {
    name: 'volume',
    table: 'warehouse.fact_events',
    severity: 'fail',
    dateScoped: true,
    // the date's rows and its history's, each day marked when its own volume was anomalous (lib/volume.ts)
    result: 'rows',
    judge(rows: { date: string; count_rows: string | number; is_anomalous: boolean }[], ctx) {
      const days: VolumeDay[] = rows.map((r) => ({ date: r.date, rows: num(r.count_rows), anomalous: r.is_anomalous }));
      return judgeVolume(days, ctx.date, ctx.config);
    },
  },
  {
    name: 'nulls',
    table: 'warehouse.fact_events',
    severity: 'fail',
    dateScoped: true,
    // a scan of the date's facts: 0.3-0.45 s on a 1M-event date
    longest: true,
    judge(row, ctx) {
      const rows = num(row.count_rows);
      const bad = num(row.count_rows_with_nulls);
      const ratio = rows ? bad / rows : 0;
      const columns = ['event_id', 'event_time', 'user_key', 'event_type', 'purchase_amount'].filter(
        (c) => num(row[c]) > 0,
      );
      return {
        ok: ratio <= ctx.config.nullMaxRatio,
        observed: round(ratio, 6),
        threshold: `<= ${pct(ctx.config.nullMaxRatio)} of rows with a null in event_id, event_time, user_key, event_type (amount on purchases)`,
        details: columns.length
          ? `${bad} of ${rows} rows: ${columns.map((c) => `${c} ${num(row[c])}`).join(', ')}`
          : `no nulls in ${rows} rows`,
      };
    },
  },
  {
    name: 'uniqueness',
    table: 'warehouse.fact_events',
    severity: 'fail',
    dateScoped: true,
    judge(row, ctx) {
      const extra = num(row.count_extra_rows);
      return {
        ok: extra === 0,
        observed: extra,
        threshold: '0 duplicate event_id rows',
        details: extra
          ? `${num(row.count_duplicated_ids)} event_ids appear more than once, e.g. ${(row.examples ?? []).join(', ')}`
          : row.is_by_key
            ? `every event_id once: fact_events_${ctx.dateKey} has its valid primary key (event_id)`
            : 'every event_id once (counted: the date has no valid primary key on event_id)',
      };
    },
  },
  {
    name: 'integrity',
    table: 'warehouse.fact_events, warehouse.dim_user',
    severity: 'fail',
    dateScoped: false,
    // on a 1M-event date 0.5-0.6 s alone, 0.7-1.0 s on the next day (twice the users), against 0.35-0.45 (nulls and
    // the device part each), 0.1 (reconciliation), 0.1 (volume), 0.02 each other
    longest: true,
    // the facts whose device row is missing: a scan of the date's facts, beside the user look-ups
    parts: ['integrity_devices'],
    judge(row) {
      const parts: [string, number][] = [
        ['facts with a missing dim_user row', num(row.missing_user)],
        ['facts with a missing dim_device row', num(row.missing_device)],
        ['facts with a missing dim_date row', num(row.missing_date)],
        ['overlapping dim_user versions', num(row.overlaps)],
        ['gaps between dim_user versions', num(row.gaps)],
        ['users without exactly one current version', num(row.users_without_one_current)],
      ];
      const total = parts.reduce((a, [, n]) => a + n, 0);
      const found = parts.filter(([, n]) => n > 0);
      return {
        ok: total === 0,
        observed: total,
        threshold: '0 orphan facts, 0 overlapping or gapped SCD2 versions, 1 current version per user',
        details: found.length
          ? found.map(([what, n]) => `${n} ${what}`).join('; ')
          : 'no orphans; SCD2 ranges well-formed',
      };
    },
  },
  {
    name: 'dead_letters',
    table: 'ops.lake_files',
    severity: 'fail',
    dateScoped: true,
    judge(row, ctx) {
      const dead = num(row.count_dead);
      const total = dead + num(row.count_landed);
      const limit = ctx.config.deadLetterMaxRatio;
      if (total === 0)
        return {
          ok: 'skip',
          observed: null,
          threshold: `< ${pct(limit)} of the date's records`,
          details: 'no records landed for the date',
        };
      const ratio = dead / total;
      return {
        ok: ratio < limit,
        observed: round(ratio, 6),
        threshold: `< ${pct(limit)} of the date's records`,
        details: `${dead} of ${total} records dead-lettered (${pct(ratio)})`,
      };
    },
  },
  {
    name: 'reconciliation',
    table: 'ops.lake_files, warehouse.fact_events',
    severity: 'fail',
    dateScoped: true,
    enrichSql: [STAGING_DUPLICATES_SQL],
    async enrich(client, row, ctx) {
      if (row.staged_duplicates !== null) return { duplicates: num(row.staged_duplicates) };
      return row.has_staging ? { duplicates: await stagingDuplicates(client, ctx.dateKey) } : {};
    },
    judge(row, ctx) {
      const setAside = num(row.rows_set_aside ?? 0);
      const expected = num(row.count_landed) - num(row.duplicates ?? 0) - setAside;
      const facts = num(row.count_facts);
      const tolerance = ctx.config.reconciliationTolerance;
      const dup =
        row.duplicates === undefined
          ? 'staging table gone: no duplicates subtracted'
          : `${num(row.duplicates)} repeated event_ids${setAside ? ` and ${setAside} rows set aside` : ''} subtracted`;
      if (num(row.count_landed) === 0 && facts === 0) {
        return {
          ok: 'skip',
          observed: 0,
          threshold: 'facts = distinct records landed',
          details: 'nothing landed and nothing loaded for the date',
        };
      }
      return {
        ok: Math.abs(facts - expected) <= tolerance,
        observed: facts,
        threshold: `= ${expected} distinct records landed${tolerance ? ` (± ${tolerance})` : ''}`,
        details: `${facts} fact rows; ${num(row.count_landed)} records landed, ${dup}; difference ${facts - expected}`,
      };
    },
  },
  {
    name: 'set_aside',
    table: 'ops.rejected_rows',
    severity: 'warn',
    dateScoped: true,
    judge(row) {
      const n = num(row.count_set_aside);
      const files = num(row.count_files);
      return {
        ok: n === 0,
        observed: n,
        threshold: '0 lake rows set aside (ops.rejected_rows)',
        details: n
          ? `${n} lake rows set aside${files ? ` (${files} unreadable files)` : ''}, see ops.rejected_rows: ${row.reasons ?? ''}`
          : 'every lake row staged',
      };
    },
  },
  {
    name: 'schedule_gaps',
    table: 'ops.pipeline_runs',
    severity: 'warn',
    dateScoped: false,
    judge(row, ctx) {
      const missing = num(row.count_missing);
      const days: string[] = row.missing_days ?? [];
      const limit = ctx.config.scheduleGapsMax;
      const threshold = `<= ${limit} days without a successful run since the schedule started`;
      if (!row.first_day) {
        return {
          ok: 'skip',
          observed: null,
          threshold,
          details: 'no scheduled run recorded yet and no DQ_SCHEDULE_START: no day was due',
        };
      }
      return {
        ok: missing <= limit,
        observed: missing,
        threshold,
        details: missing
          ? `no successful run on ${days.slice(0, 10).join(', ')}${days.length > 10 ? ` and ${days.length - 10} more` : ''} (of ${num(row.count_days)} days since ${row.first_day})`
          : `every one of ${num(row.count_days)} days since ${row.first_day} has a successful run`,
      };
    },
  },
];

export function dateScopedCheckNames(checks: CheckDefinition[] = CHECKS): string[] {
  return checks.filter((c) => c.dateScoped).map((c) => c.name);
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Repeated event_ids among the records of the date's staging table; undefined when the table is gone. */
async function stagingDuplicates(client: Queryable, dateKey: number): Promise<number | undefined> {
  try {
    const [{ rows }] = await runSqlFile(
      client,
      STAGING_DUPLICATES_SQL,
      { identifiers: { staging_table: `events_${dateKey}` } },
      CHECKS_SQL_DIR,
    );
    return num(rows[0].duplicates);
  } catch (err) {
    // dropped since the check saw it (undefined_table): as if it had not been there
    if ((err as { code?: string }).code === '42P01') return undefined;
    throw err;
  }
}

/**
 * Where the checks read the date's facts (:"facts_table" in warehouse/checks/*.sql): the date's partition, named, once
 * it has one, so that a count or a group by user_key reads the partition's user_key index alone; through
 * fact_events the date_key filter would send every entry of that index to the heap (a group by user_key of 1M facts:
 * 0.13 s by the partition's index, 0.22 s by a scan of the partition, 1.6 s by its index through fact_events).
 * Before the date's first load, fact_events itself with the date_key filter, which finds nothing.
 */
export interface FactsSource {
  table: string;
  /** True when table is the date's partition: every row is the date's, so the SQL's date_key filter is bound off. */
  partition: boolean;
}

export async function factsSource(client: Pick<pg.ClientBase, 'query'>, dateKey: number): Promise<FactsSource> {
  const partition = await factPartition(client, dateKey);
  return partition === null ? { table: 'fact_events', partition: false } : { table: partition, partition: true };
}

/** The named values the checks' SQL binds (:'date' and so on in warehouse/checks/*.sql). */
export function checkValues(ctx: CheckContext, facts: FactsSource): Record<string, unknown> {
  return {
    date: ctx.date,
    date_key: ctx.dateKey,
    now: ctx.now.toISOString(),
    history_days: volumeHistoryDays(ctx.config),
    schedule_start: ctx.config.scheduleStart,
    facts_partition: facts.partition,
  };
}

/** Every file of warehouse/checks/ the checks run: each check's own, its parts and those its enrich step reads. */
export function checkSqlFiles(checks: CheckDefinition[] = CHECKS): string[] {
  return checks.flatMap((c) => [c.name, ...(c.parts ?? []), ...(c.enrichSql ?? [])]);
}

/** A statement evaluateChecks runs: a check's own SQL (with its enrich step) or one of its parts. */
export interface CheckUnit {
  /** The check's index in the list. */
  check: number;
  /** The part's file (CheckDefinition.parts); null: the check's own <name>.sql. */
  part: string | null;
}

/** Runs one unit of a check for the context: its row; its SQL errors propagate, named with the check and the date. */
async function runCheckUnit(
  client: Queryable,
  ctx: CheckContext,
  check: CheckDefinition,
  part: string | null,
  facts: FactsSource,
): Promise<any> {
  try {
    const vars = { values: checkValues(ctx, facts), identifiers: { facts_table: facts.table } };
    const res = (await runSqlFile(client, part ?? check.name, vars, CHECKS_SQL_DIR)).at(-1)!;
    if (part !== null) return res.rows[0] ?? {};
    const row = check.result === 'rows' ? res.rows : (res.rows[0] ?? {});
    return check.enrich ? { ...row, ...(await check.enrich(client, row, ctx)) } : row;
  } catch (err) {
    throw new Error(`check ${check.name} failed to run for ${ctx.date}: ${(err as Error).message}`, { cause: err });
  }
}

/** The check's result from its row (its parts' rows merged in). */
function judgeCheck(check: CheckDefinition, row: any, ctx: CheckContext): CheckResult {
  const verdict = check.judge(row, ctx);
  return {
    check: check.name,
    table: check.table,
    status: verdict.ok === 'skip' ? 'skip' : verdict.ok ? 'pass' : check.severity,
    observed: verdict.observed,
    threshold: verdict.threshold,
    details: verdict.details,
  };
}

/**
 * The connections evaluateChecks runs checks on at once. The checks only read, each on its own, and three of them
 * scan the date's facts (nulls, integrity, the counts of volume and reconciliation), one CPU each; integrity takes
 * the longest, so two connections cut less than half: a 1M-event date's checks took 0.88-0.90 s against
 * 1.04-1.11 s on one (make bench, 2 cores). With integrity's device scan run as a part on the other connection,
 * the next day's (twice the users) took 0.92-1.09 s against 1.05-1.46 s, the first day's 0.83-1.00 against
 * 0.90-1.16 s (five alternating runs each on a kept bench database).
 */
export const CHECK_CONNECTIONS = 2;

/**
 * The checks' connections plan without parallel workers while they run the checks: the checks already run side by
 * side, so a worker per query only takes a share of the same cores. The nine checks of a kept 1M-event date took
 * 0.50 s against 0.59 s with workers, of the next day (twice the users) 0.72 against 0.92 s (medians of ten,
 * alternating, 2 cores). Nor JIT compilation, as the loads (activities/dimensions.ts setLoadSession): at 10M events
 * a day the integrity check's cost passes jit_above_cost, and compiling its 57 functions made it slower, 3.79-4.17 s
 * against 3.61-3.69 s without (day 2, psql, three alternating runs); at 1M no check's cost reaches it. Both are put
 * back before the connection returns to the pool.
 */
const CHECK_SESSION = 'set max_parallel_workers_per_gather = 0; set jit = off';
const CHECK_SESSION_BACK = 'reset max_parallel_workers_per_gather; reset jit';

/**
 * The units of `checks` in the order evaluateChecks starts them: the `longest` checks' own SQL, then every check's
 * parts, then the other checks, each group in list order. A 1M-event date's checks on two connections: the longest
 * two (nulls, and integrity without its device scan) start side by side, the device part follows nulls, and the
 * short ones fill in after whichever ends first.
 */
export function checkStartOrder(checks: readonly CheckDefinition[]): CheckUnit[] {
  const own = (i: number): CheckUnit => ({ check: i, part: null });
  const indexes = checks.map((_, i) => i);
  return [
    ...indexes.filter((i) => checks[i].longest).map(own),
    ...indexes.flatMap((i) => (checks[i].parts ?? []).map((part) => ({ check: i, part }))),
    ...indexes.filter((i) => !checks[i].longest).map(own),
  ];
}

/** Puts the connection's parallel workers and JIT back and returns it to the pool; one that cannot is discarded. */
async function releaseWithSettingsBack(client: pg.PoolClient): Promise<void> {
  try {
    await client.query(CHECK_SESSION_BACK);
    client.release();
  } catch (err) {
    client.release(err as Error);
  }
}

/**
 * Evaluates every check for the context, on up to `connections` connections of the pool at once, each taking the
 * next unit (checkStartOrder); each check is judged once its units have run, and the results come in list order. The
 * SQL errors of a check propagate (a retry handles transient ones), and once one has, no further unit starts.
 */
export async function evaluateChecks(
  pool: Pick<pg.Pool, 'connect'>,
  ctx: CheckContext,
  checks: CheckDefinition[] = CHECKS,
  connections: number = CHECK_CONNECTIONS,
): Promise<CheckResult[]> {
  // each check's row, and its parts' rows, as they come
  const rows: any[] = new Array(checks.length);
  const partRows: Record<string, unknown>[][] = checks.map(() => []);
  const units = checkStartOrder(checks);
  let next = 0;
  let failed = false;
  // looked up once, by the first runner connected
  let facts: Promise<FactsSource> | undefined;
  const runner = async () => {
    let client: pg.PoolClient | undefined;
    try {
      // a connection that cannot be had stops the other runners too
      client = await pool.connect();
      await client.query(CHECK_SESSION);
      facts ??= factsSource(client, ctx.dateKey);
      const source = await facts;
      while (!failed && next < units.length) {
        const { check, part } = units[next++];
        const row = await runCheckUnit(client, ctx, checks[check], part, source);
        if (part === null) rows[check] = row;
        else partRows[check].push(row);
      }
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      if (client) await releaseWithSettingsBack(client);
    }
  };
  const settled = await Promise.allSettled(
    Array.from({ length: Math.max(1, Math.min(connections, checks.length)) }, runner),
  );
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  return checks.map((check, i) =>
    judgeCheck(check, partRows[i].length === 0 ? rows[i] : Object.assign({}, rows[i], ...partRows[i]), ctx),
  );
}

export function dateKeyOf(date: string): number {
  return Number(date.replaceAll('-', ''));
}
