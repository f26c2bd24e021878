import { randomUUID } from 'node:crypto';
import { Int32, Table, Utf8, vectorFromArray } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { IdFilter, StagedIdFilters } from '../lib/id-filter';
import { RepeatedIds } from '../lib/repeated-ids';

/**
 * The event_id filter a stage run keeps for its date (lib/id-filter.ts), fed as the stage feeds it: through the
 * fingerprints lib/repeated-ids.ts takes of each record batch. A neighbour's load looks for an event_id only where
 * the filter does not rule it out, so an id it was given must never test negative.
 */

function batchesOf(ids: string[]) {
  return new Table({ event_id: vectorFromArray(ids, new Utf8()) }).batches;
}

/** Runs the ids through a stage run's fingerprinting with `filters`; returns what it built. */
function stage(ids: string[], filters: StagedIdFilters): StagedIdFilters | null {
  const repeated = new RepeatedIds(ids.length, filters);
  for (const batch of batchesOf(ids)) repeated.addBatch(batch);
  return repeated.filtersBuilt();
}

describe('event_id filters', () => {
  const n = 200_000;
  const staged = Array.from({ length: n }, () => randomUUID());
  const own = IdFilter.forIds(n);
  stage(staged, new StagedIdFilters(own, []));
  // the filter as ops.event_id_filters stores it and a neighbour's stage run reads it back
  const stored = IdFilter.fromBytes(own.toBytes())!;
  const neighbour = { date: '2024-12-05', generation: 1, filter: stored };

  it('holds every id it was given: a neighbour staging the same ids finds all of them as candidates', () => {
    const built = stage(staged, new StagedIdFilters(null, [neighbour]))!;
    expect(built.candidates[0]!.length).toBe(n);
    expect(new Set(built.candidates[0])).toEqual(new Set(staged));
  });

  it('rules out almost every other id, and names the few it cannot among them', () => {
    const others = Array.from({ length: n }, () => randomUUID());
    const mixed = [...others.slice(0, n / 2), staged[7], ...others.slice(n / 2), staged[n - 1]];
    const built = stage(mixed, new StagedIdFilters(null, [neighbour]))!;
    const found = built.candidates[0]!;
    expect(found).toContain(staged[7]);
    expect(found).toContain(staged[n - 1]);
    // sized at 16 bits per id: about 0.3 % false positives (600 of 200,000); 1 % would mean a broken filter
    expect(found.length - 2).toBeLessThan(n / 100);
  });

  it("gives up a neighbour's candidates past the limit, as from a filter sized for few ids that took many more", () => {
    // a date's first lake file staged alone (10 ids), the rest added later: the filter rules out almost nothing
    const small = IdFilter.forIds(10);
    stage(staged, new StagedIdFilters(small, []));
    const others = Array.from({ length: 20_000 }, () => randomUUID());
    const saturated = { date: '2024-12-06', generation: 2, filter: small };
    const built = stage(others, new StagedIdFilters(null, [neighbour, saturated], 1_000))!;
    // the healthy filter's few candidates are kept, the saturated one's are not (its look-up is the join)
    expect(built.candidates[0]!.length).toBeLessThan(1_000);
    expect(built.candidates[1]).toBeNull();
  });

  it('round-trips through its stored bytes, and refuses bytes that are not whole blocks', () => {
    expect(stored.blocks).toBe(own.blocks);
    expect(Buffer.from(stored.toBytes())).toEqual(Buffer.from(own.toBytes()));
    expect(IdFilter.fromBytes(new Uint8Array(63))).toBeNull();
    expect(IdFilter.fromBytes(new Uint8Array(0))).toBeNull();
  });

  it('is not built when a batch has no readable event_id column: the date then keeps no filter', () => {
    const repeated = new RepeatedIds(10, new StagedIdFilters(IdFilter.forIds(10), [neighbour]));
    repeated.addBatch(new Table({ event_id: vectorFromArray([1, 2], new Int32()) }).batches[0]);
    expect(repeated.filtersBuilt()).toBeNull();
  });
});
