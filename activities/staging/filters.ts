import type pg from 'pg';
import { dateLockId } from '../../lib/locks';
import { addDays } from '../../lib/temporal';
import { factPartition } from '../../warehouse/db';
import type { FilterJob, FilterResult } from './messages';

/**
 * The event_id filters of the dates (ops.event_id_filters, lib/id-filter.ts) as stage runs keep them, and the
 * look-up candidates the fact loads read. Every event_id a date's facts can hold must test positive in its filter,
 * or a neighbour's load would miss it: the facts come only from staging, and every stage run of the date adds the
 * event_ids it stages, in the transaction that records the run (ops.date_stages).
 */

/** The dates whose filters a stage run of `date` checks its event_ids against. */
export function neighbourDates(date: string): [string, string] {
  return [addDays(date, -1), addDays(date, 1)];
}

/**
 * What a stage run of `date` builds while it fingerprints its event_ids: the date's filter, added to when it has one;
 * a new one when the date has no facts yet; none when it has facts but no filter (loaded before filters were kept,
 * or after a run that could not fingerprint every event_id): such a filter could miss their event_ids. And the
 * candidates against each neighbour's filter, as it stands now. A run with no lake file to stage (`staging` false)
 * reads no filter's bits (a 10M-event date's is 20 MB): it finds no candidate and adds nothing.
 */
export async function filterJob(
  client: pg.ClientBase,
  date: string,
  expectedRows: number,
  staging: boolean,
): Promise<FilterJob> {
  const { rows } = await client.query<{ date: string; bits: Buffer | null; generation: string }>(
    `select to_char(dt, 'YYYY-MM-DD') as date, case when $2 then bits end as bits, generation
     from ops.event_id_filters
     where dt = any($1::date[])`,
    [[date, ...neighbourDates(date)], staging],
  );
  const neighbours = rows
    .filter((r) => r.date !== date)
    .map((r) => ({ date: r.date, generation: Number(r.generation), bytes: new Uint8Array(r.bits ?? []) }));
  if (!staging) return { own: null, neighbours };
  const own = rows.find((r) => r.date === date);
  if (own) return { own: { bytes: new Uint8Array(own.bits!) }, neighbours };
  const loaded = (await factPartition(client, dateLockId(date))) !== null;
  return { own: loaded ? null : { ids: expectedRows }, neighbours };
}

/**
 * Records what a stage run built, in its transaction: the date's filter (with a new generation, so candidates found
 * against the old one are not used) and its candidates against each neighbour. `result` null means the run staged
 * event_ids it could not fingerprint: the date's filter is dropped, and its loads look up by the join. `staged`
 * false (no lake file to stage) leaves the filter as it is.
 */
export async function recordFilters(
  client: pg.ClientBase,
  date: string,
  job: FilterJob,
  result: FilterResult | null,
  staged: boolean,
): Promise<void> {
  await client.query('delete from ops.cross_date_candidates where dt = $1::date', [date]);
  if (result === null) {
    if (staged) await client.query('delete from ops.event_id_filters where dt = $1::date', [date]);
    return;
  }
  if (staged && result.own !== null) {
    await client.query(
      `insert into ops.event_id_filters (dt, bits) values ($1::date, $2)
       on conflict (dt) do update
       set bits = excluded.bits, generation = nextval('ops.event_id_filter_generations'), updated_at = now()`,
      [date, Buffer.from(result.own.buffer, result.own.byteOffset, result.own.byteLength)],
    );
  }
  for (const [i, neighbour] of job.neighbours.entries()) {
    // none kept (too many, or a filter that did not decode): the load looks there by the join
    if (result.candidates[i] === null) continue;
    await client.query(
      `insert into ops.cross_date_candidates (dt, neighbour_dt, neighbour_generation, event_ids)
       values ($1::date, $2::date, $3, $4::uuid[])`,
      [date, neighbour.date, neighbour.generation, result.candidates[i]],
    );
  }
}

/**
 * The staged event_ids of `date` that the neighbour's facts may hold, when its last stage run found them against the
 * neighbour's filter as it still is; null when it did not (no filter then, or the filter changed since): the load
 * must then look at every staged event_id.
 */
export async function crossDateCandidates(
  client: pg.ClientBase,
  date: string,
  neighbour: string,
): Promise<string[] | null> {
  const { rows } = await client.query<{ event_ids: string[] }>(
    `select candidates.event_ids
     from ops.cross_date_candidates as candidates
     inner join ops.event_id_filters as filters
         on filters.dt = candidates.neighbour_dt
         and filters.generation = candidates.neighbour_generation
     where candidates.dt = $1::date and candidates.neighbour_dt = $2::date`,
    [date, neighbour],
  );
  return rows[0]?.event_ids ?? null;
}
