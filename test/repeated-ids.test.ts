import { randomUUID } from 'node:crypto';
import { Int32, Table, Utf8, vectorFromArray } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { RepeatedIds } from '../lib/repeated-ids';

/** The stage's fingerprint table (lib/repeated-ids.ts): what it calls candidates decides whether the SQL pass runs. */

/** The record batches of an event_id column of plain UTF-8, as the lake's Parquet decodes. */
function batchesOf(ids: string[]) {
  return new Table({ event_id: vectorFromArray(ids, new Utf8()) }).batches;
}

describe('repeated event_id candidates', () => {
  it('names every id that repeats, across batches, and nothing else among a million distinct ids', () => {
    const distinct = Array.from({ length: 1_000_000 }, () => randomUUID());
    const repeats = [distinct[5], distinct[999_999], distinct[777_777]];
    const table = new RepeatedIds(1000); // grows as it goes
    for (const batch of batchesOf(distinct.slice(0, 500_000))) table.addBatch(batch);
    for (const batch of batchesOf([...distinct.slice(500_000), ...repeats, repeats[0]])) table.addBatch(batch);
    // a million ids make about 116 collisions of a 32-bit fingerprint; of the 64-bit one, about 3 in 100 million
    expect(table.candidates()?.sort()).toEqual([...repeats, repeats[0]].sort());
  });

  it('gives up (null: check every row) when an event_id column is not plain text', () => {
    const table = new RepeatedIds(10);
    table.addBatch(new Table({ event_id: vectorFromArray([1, 1], new Int32()) }).batches[0]);
    expect(table.candidates()).toBeNull();
  });
});
