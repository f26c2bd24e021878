import type pg from 'pg';
import { type VolumeConfig, type VolumeDay, judgeVolume, volumeHistoryDays } from './volume';

/**
 * The data-quality checks of SPEC section 6 as a declarative registry: each entry names the check and the table it
 * looks at, its severity, the SQL it runs (values bound, never spliced) and how the row it returns is judged.
 * Adding a check is adding one entry to CHECKS. Thresholds come from DqConfig (Config.dq, read by lib/config.ts; the SPEC's defaults).
 */

type Queryable = Pick<pg.ClientBase, 'query'>;

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
  sql: string;
  params(ctx: CheckContext): unknown[];
  /** Optional second look, for figures one SQL statement cannot reach; its fields are merged into the row. */
  enrich?(client: Queryable, row: Row, ctx: CheckContext): Promise<Record<string, unknown>>;
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

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const pct = (ratio: number): string => `${(ratio * 100).toFixed(2).replace(/\.?0+$/, '')} %`;

/** The checks, in the order they run and are reported. */
export const CHECKS: CheckDefinition[] = [
  {
    name: 'freshness',
    table: 'warehouse.fact_events',
    severity: 'fail',
    dateScoped: true,
    // the newest fact overall, from user_activity's last_event_at index (fact_events has no index across dates),
    // and the newest fact of the date, from its partition
    sql: `
      with newest as (
          select
              (select max(ua.last_event_at) from warehouse.user_activity as ua) as newest_at,
              (select max(f.event_time) from warehouse.fact_events as f where f.date_key = $1) as date_newest_at
      )
      select
          n.newest_at,
          n.date_newest_at,
          extract(epoch from ($2::timestamptz - n.newest_at)) / 3600 as age_hours,
          extract(epoch from (($3::date + 1)::timestamp at time zone 'UTC' - n.date_newest_at)) / 3600 as hours_short
      from newest as n`,
    params: (ctx) => [ctx.dateKey, ctx.now.toISOString(), ctx.date],
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
    // fact rows of the date (its partition) and of the weeks before it (their user_days rows, which the fact loads
    // keep equal to them); a history day whose own latest volume check failed is anomalous (lib/volume.ts)
    sql: `
      with history_days as (
          select g::date as dt
          from generate_series($1::date - $2::int, $1::date, interval '1 day') as g
      ),
      day_counts as (
          select $3::int as date_key, count(*) as rows
          from warehouse.fact_events as f
          where f.date_key = $3
          union all
          select ud.date_key, sum(ud.events) as rows
          from warehouse.user_days as ud
          where ud.date_key = any (select to_char(hd.dt, 'YYYYMMDD')::int from history_days as hd where hd.dt < $1::date)
          group by ud.date_key
      ),
      latest_volume as (
          select distinct on (r.dt) r.dt, r.status
          from ops.dq_results as r
          where r.dt between $1::date - $2::int and $1::date - 1 and r.check_name = 'volume'
          order by r.dt, r.checked_at desc, r.dq_result_id desc
      )
      select
          coalesce(json_agg(json_build_object(
              'date', to_char(hd.dt, 'YYYY-MM-DD'),
              'rows', coalesce(dc.rows, 0),
              'anomalous', coalesce(lv.status = 'fail', false)
          ) order by hd.dt), '[]') as days
      from history_days as hd
      left join day_counts as dc on dc.date_key = to_char(hd.dt, 'YYYYMMDD')::int
      left join latest_volume as lv on lv.dt = hd.dt`,
    params: (ctx) => [ctx.date, volumeHistoryDays(ctx.config), ctx.dateKey],
    judge(row: { days: VolumeDay[] }, ctx) {
      return judgeVolume(row.days, ctx.date, ctx.config);
    },
  },
  {
    name: 'nulls',
    table: 'warehouse.fact_events',
    severity: 'fail',
    dateScoped: true,
    sql: `
      select
          count(*) as rows,
          count(*) filter (where f.event_id is null or f.event_time is null or f.user_key is null or f.event_type is null
              or (f.event_type = 'purchase' and f.amount is null)) as rows_with_nulls,
          count(*) filter (where f.event_id is null) as event_id,
          count(*) filter (where f.event_time is null) as event_time,
          count(*) filter (where f.user_key is null) as user_key,
          count(*) filter (where f.event_type is null) as event_type,
          count(*) filter (where f.event_type = 'purchase' and f.amount is null) as purchase_amount
      from warehouse.fact_events as f
      where f.date_key = $1`,
    params: (ctx) => [ctx.dateKey],
    judge(row, ctx) {
      const rows = num(row.rows);
      const bad = num(row.rows_with_nulls);
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
    // the date partition's primary key (event_id) makes duplicates impossible: when it is there and valid
    // the check reads the catalog only; when it was lost or disabled, the date's facts are counted by event_id
    sql: `
      with guard as (
          select exists (
              select
              from pg_inherits as h
              inner join pg_class as c on c.oid = h.inhrelid
              inner join pg_index as i on i.indrelid = c.oid
              inner join pg_attribute as a on a.attrelid = c.oid and a.attnum = i.indkey[0]
              where h.inhparent = 'warehouse.fact_events'::regclass
                  and c.relname = 'fact_events_' || $1::int
                  and i.indisunique and i.indisvalid and i.indisready
                  and a.attname = 'event_id'
          ) as by_key
      )
      select
          g.by_key,
          count(d.event_id) as duplicated_ids,
          coalesce(sum(d.copies - 1), 0) as extra_rows,
          (array_agg(d.event_id::text order by d.event_id) filter (where d.event_id is not null))[1:5] as examples
      from guard as g
      left join lateral (
          select f.event_id, count(*) as copies
          from warehouse.fact_events as f
          where f.date_key = $1 and not g.by_key
          group by f.event_id
          having count(*) > 1
      ) as d on true
      group by g.by_key`,
    params: (ctx) => [ctx.dateKey],
    judge(row, ctx) {
      const extra = num(row.extra_rows);
      return {
        ok: extra === 0,
        observed: extra,
        threshold: '0 duplicate event_id rows',
        details: extra
          ? `${num(row.duplicated_ids)} event_ids appear more than once, e.g. ${(row.examples ?? []).join(', ')}`
          : row.by_key
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
    // orphans among the date's facts; SCD2 shape of the whole user dimension (ordered by the (user_id, valid_from) index)
    sql: `
      with day_facts as (
          select f.user_key, f.device_key, f.date_key
          from warehouse.fact_events as f
          where f.date_key = $1
      ),
      orphans as (
          select
              count(*) filter (where du.user_key is null) as missing_user,
              count(*) filter (where dv.device_key is null) as missing_device,
              count(*) filter (where dd.date_key is null) as missing_date
          from day_facts as df
          left join warehouse.dim_user as du on du.user_key = df.user_key
          left join warehouse.dim_device as dv on dv.device_key = df.device_key
          left join warehouse.dim_date as dd on dd.date_key = df.date_key
      ),
      ordered_versions as (
          select
              du.user_id,
              du.valid_from,
              du.valid_to,
              lead(du.valid_from) over (partition by du.user_id order by du.valid_from, du.user_key) as next_valid_from
          from warehouse.dim_user as du
      ),
      scd2 as (
          select
              count(*) filter (where ov.next_valid_from is not null
                  and coalesce(ov.valid_to, 'infinity') > ov.next_valid_from) as overlaps,
              count(*) filter (where ov.next_valid_from is not null and ov.valid_to < ov.next_valid_from) as gaps
          from ordered_versions as ov
      ),
      currents as (
          select count(*) as users_without_one_current
          from (
              select du.user_id
              from warehouse.dim_user as du
              group by du.user_id
              having count(*) filter (where du.is_current) <> 1
          ) as u
      )
      select o.missing_user, o.missing_device, o.missing_date, s.overlaps, s.gaps, c.users_without_one_current
      from orphans as o cross join scd2 as s cross join currents as c`,
    params: (ctx) => [ctx.dateKey],
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
    sql: `
      select
          coalesce(sum(lf.row_count) filter (where lf.area = 'dead_letter'), 0) as dead,
          coalesce(sum(lf.row_count) filter (where lf.area = 'events'), 0) as landed
      from ops.lake_files as lf
      where lf.dt = $1::date`,
    params: (ctx) => [ctx.date],
    judge(row, ctx) {
      const dead = num(row.dead);
      const total = dead + num(row.landed);
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
    // records landed for the date (lake manifest) against fact rows. A producer retry lands the same event_id twice
    // and it becomes one fact; rows PostgreSQL refused were set aside. The date's last stage run recorded both
    // (ops.staged_dates), so each event_id counts once whatever the staging table still holds. Dates staged before
    // that table existed fall back to the staging table's repeated event_ids while it is there.
    sql: `
      select
          (select coalesce(sum(lf.row_count), 0) from ops.lake_files as lf where lf.area = 'events' and lf.dt = $1::date) as landed,
          (select count(*) from warehouse.fact_events as f where f.date_key = $2) as facts,
          sd.duplicates as staged_duplicates,
          sd.rows_set_aside,
          to_regclass('staging.events_' || $2::text) is not null as has_staging
      from (select) as one
      left join ops.staged_dates as sd on sd.dt = $1::date`,
    params: (ctx) => [ctx.date, ctx.dateKey],
    async enrich(client, row, ctx) {
      if (row.staged_duplicates !== null) return { duplicates: num(row.staged_duplicates) };
      return row.has_staging ? { duplicates: await stagingDuplicates(client, ctx.dateKey) } : {};
    },
    judge(row, ctx) {
      const setAside = num(row.rows_set_aside ?? 0);
      const expected = num(row.landed) - num(row.duplicates ?? 0) - setAside;
      const facts = num(row.facts);
      const tolerance = ctx.config.reconciliationTolerance;
      const dup =
        row.duplicates === undefined
          ? 'staging table gone: no duplicates subtracted'
          : `${num(row.duplicates)} repeated event_ids${setAside ? ` and ${setAside} rows set aside` : ''} subtracted`;
      if (num(row.landed) === 0 && facts === 0) {
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
        details: `${facts} fact rows; ${num(row.landed)} records landed, ${dup}; difference ${facts - expected}`,
      };
    },
  },
  {
    name: 'set_aside',
    table: 'ops.rejected_rows',
    severity: 'warn',
    dateScoped: true,
    // lake rows PostgreSQL refused while staging the date (or unreadable lake files): the date loaded without them
    sql: `
      select
          coalesce(sd.rows_set_aside, 0) as set_aside,
          (select count(*) from ops.rejected_rows as rr where rr.dt = $1::date and rr.row_number is null) as files,
          (select string_agg(distinct rr.reason, '; ') from (
              select r.reason from ops.rejected_rows as r where r.dt = $1::date order by r.rejected_row_id limit 3
          ) as rr) as reasons
      from (select) as one
      left join ops.staged_dates as sd on sd.dt = $1::date`,
    params: (ctx) => [ctx.date],
    judge(row) {
      const n = num(row.set_aside);
      const files = num(row.files);
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
    // every day the schedule should have run, from DQ_SCHEDULE_START or the first date a scheduled run loaded, up
    // to the day before the checked one, must have a successful whole run (history never meant to run is not a gap)
    sql: `
      with first_day as (
          select coalesce(
              $2::date,
              (select min(pr.dt) from ops.pipeline_runs as pr
               where pr.step = 'pipeline' and pr.details @> '{"scheduled": true}')
          ) as dt
      ),
      days as (
          select g::date as dt
          from first_day as fd
          cross join generate_series(fd.dt, $1::date - 1, interval '1 day') as g
      ),
      succeeded_days as (
          select distinct pr.dt
          from ops.pipeline_runs as pr
          where pr.step = 'pipeline' and pr.status = 'succeeded' and pr.dt < $1::date
      )
      select
          count(*) as days,
          count(*) filter (where sd.dt is null) as missing,
          coalesce(array_agg(to_char(d.dt, 'YYYY-MM-DD') order by d.dt) filter (where sd.dt is null), '{}') as missing_days,
          (select to_char(fd.dt, 'YYYY-MM-DD') from first_day as fd) as first_day
      from days as d
      left join succeeded_days as sd on sd.dt = d.dt`,
    params: (ctx) => [ctx.date, ctx.config.scheduleStart],
    judge(row, ctx) {
      const missing = num(row.missing);
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
          ? `no successful run on ${days.slice(0, 10).join(', ')}${days.length > 10 ? ` and ${days.length - 10} more` : ''} (of ${num(row.days)} days since ${row.first_day})`
          : `every one of ${num(row.days)} days since ${row.first_day} has a successful run`,
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

/** Repeated event_ids among the lake records of the date's staging table, when it exists (a transient table). */
async function stagingDuplicates(client: Queryable, dateKey: number): Promise<number | undefined> {
  const { rows } = await client.query<{ name: string | null }>(
    `select to_regclass('staging.events_' || $1::text)::text as name`,
    [dateKey],
  );
  const name = rows[0]?.name;
  if (!name) return undefined;
  // an identifier, not a value: the name to_regclass found for an integer date key, checked and quoted
  const { rows: counted } = await client.query<{ duplicates: string }>(
    `select (count(*) - count(distinct event_id)) as duplicates from staging.${quoteIdent(name.replace(/^staging\./, ''))}`,
  );
  return Number(counted[0].duplicates);
}

function quoteIdent(name: string): string {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`unexpected staging table name ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** Evaluates every check for the context; the SQL errors of a check propagate (a retry handles transient ones). */
export async function evaluateChecks(
  client: Queryable,
  ctx: CheckContext,
  checks: CheckDefinition[] = CHECKS,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    let row: any;
    try {
      const res = await client.query(check.sql, check.params(ctx));
      row = res.rows[0] ?? {};
      if (check.enrich) row = { ...row, ...(await check.enrich(client, row, ctx)) };
    } catch (err) {
      throw new Error(`check ${check.name} failed to run for ${ctx.date}: ${(err as Error).message}`, { cause: err });
    }
    const verdict = check.judge(row, ctx);
    results.push({
      check: check.name,
      table: check.table,
      status: verdict.ok === 'skip' ? 'skip' : verdict.ok ? 'pass' : check.severity,
      observed: verdict.observed,
      threshold: verdict.threshold,
      details: verdict.details,
    });
  }
  return results;
}

export function dateKeyOf(date: string): number {
  return Number(date.replaceAll('-', ''));
}
