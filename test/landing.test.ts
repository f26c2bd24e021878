import { afterEach, describe, expect, it } from 'vitest';
import { createLandActivities, type LandTuning, startLandingThreadsAhead } from '../activities/land';
import { spareLandingThreads, stopLandingThreads } from '../activities/landing/threads';
import { topicOffsets } from '../lib/kafka';
import { readLakeFile } from '../lib/lake';
import { produceEvents } from '../lib/produce';
import { createTestEnv, LAKE_KINDS, type LakeKind, lakeFiles, lakeOfEnv, type TestEnv } from './support';

/** Landing against the real broker and database: counts conserved, exactly once, late records, idempotent re-runs. */

const envs: TestEnv[] = [];
afterEach(async () => {
  while (envs.length > 0) await envs.pop()?.cleanup();
});

async function env(lake: LakeKind): Promise<TestEnv> {
  const e = await createTestEnv({ partitions: 4, lake });
  envs.push(e);
  return e;
}

function land(e: TestEnv, tuning: LandTuning = {}) {
  return createLandActivities({ config: e.config, pool: e.pool, db: e.db }, tuning).landEvents({});
}

async function highWatermarks(e: TestEnv): Promise<Map<number, number>> {
  const offsets = await topicOffsets(e.config, e.config.kafkaTopic);
  return new Map(offsets.map((o) => [o.partition, o.high]));
}

async function manifest(e: TestEnv) {
  return e.db.selectFrom('ops.lake_files').selectAll().orderBy('lake_file_id').execute();
}

/** (partition, offset) of every row in the committed lake files, per area and date. */
async function lakeRows(e: TestEnv) {
  const rows: { area: string; dt: string; partition: number; offset: number; reason: string | null }[] = [];
  for (const f of await manifest(e)) {
    const table = await readLakeFile(lakeOfEnv(e), f.path);
    expect(table.numRows).toBe(f.row_count);
    const partitions = table.getChild('kafka_partition')!.toArray() as Int32Array;
    const offsets = table.getChild('kafka_offset')!.toArray() as BigInt64Array;
    const reasons = f.area === 'dead_letter' ? table.getChild('reason')!.toArray() : null;
    for (let i = 0; i < table.numRows; i++) {
      rows.push({
        area: f.area,
        dt: f.dt,
        partition: partitions[i],
        offset: Number(offsets[i]),
        reason: reasons ? reasons[i] : null,
      });
    }
  }
  return rows;
}

function expectExactlyOnce(rows: { partition: number; offset: number }[], hw: Map<number, number>): void {
  for (const [partition, high] of hw) {
    const offsets = rows
      .filter((r) => r.partition === partition)
      .map((r) => r.offset)
      .sort((a, b) => a - b);
    expect(offsets.length, `partition ${partition}`).toBe(high);
    offsets.forEach((o, i) => expect(o).toBe(i));
  }
}

describe.each(LAKE_KINDS)('landing (%s lake)', (lake) => {
  it('lands every record once: per date, lake rows + dead letters = records produced; total = what the broker holds', async () => {
    const e = await env(lake);
    const produced = await produceEvents(e.config, {
      events: 50_000,
      days: 3,
      start: '2024-12-01',
      seed: 7,
      badRate: 0.02,
    });
    const out = await land(e);
    const hw = await highWatermarks(e);
    const total = [...hw.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(50_000);
    expect(out.recordsRead).toBe(total);
    expect(out.recordsLanded + out.recordsDeadLettered).toBe(total);
    expect(out.recordsDeadLettered).toBe(produced.bad);

    const rows = await lakeRows(e);
    expectExactlyOnce(rows, hw);
    const perDate = new Map<string, number>();
    for (const r of rows) perDate.set(r.dt, (perDate.get(r.dt) ?? 0) + 1);
    for (const [date, count] of Object.entries(produced.byDate)) expect(perDate.get(date), date).toBe(count);
    // records without a usable event_time are dead letters filed under their Kafka timestamp's date
    const undated = [...perDate].filter(([dt]) => !(dt in produced.byDate)).reduce((a, [, n]) => a + n, 0);
    expect(undated).toBe(produced.undated);
    for (const d of out.perDate) expect(d.landed + d.deadLettered).toBe(perDate.get(d.date));

    const dead = rows.filter((r) => r.area === 'dead_letter');
    expect(dead.length).toBe(produced.bad);
    for (const r of dead) expect(r.reason).toMatch(/\S/);

    const landings = await e.db.selectFrom('ops.landings').selectAll().execute();
    expect(landings).toHaveLength(1);
    expect(Number(landings[0].records_read)).toBe(
      Number(landings[0].records_landed) + Number(landings[0].records_dead_lettered),
    );
    expect(Number(landings[0].records_read)).toBe(total);
    const offsets = await e.db
      .selectFrom('ops.kafka_offsets')
      .selectAll()
      .where('topic', '=', e.config.kafkaTopic)
      .execute();
    for (const o of offsets) expect(Number(o.next_offset)).toBe(hw.get(o.partition));
  });

  it('partitions handed from the activity thread to a worker thread mid-way land exactly once', async () => {
    const e = await env(lake);
    await produceEvents(e.config, { events: 40_000, days: 2, start: '2024-12-01', seed: 13, badRate: 0.02 });
    const chunks: { partition: number; firstOffset: number }[][] = [];
    // the activity's thread lands all 4 partitions until it has read 2,000 records, then waits for the worker and
    // hands it 2 of them: that hand-over is the first commit, of those 2 partitions only
    const out = await land(e, {
      workers: 2,
      waitForWorkers: 2_000,
      beforeCommit: (files) => {
        chunks.push(files.map((f) => ({ partition: f.partition, firstOffset: f.firstOffset })));
      },
    });
    expect(out.recordsRead).toBe(40_000);
    const handedOver = new Set(chunks[0].map((f) => f.partition));
    expect(handedOver.size).toBe(2);
    // the worker landed the rest of them: later files of those partitions start past the hand-over's offsets
    const handOverEnd = Math.max(...chunks[0].map((f) => f.firstOffset));
    const later = chunks.slice(1).flat();
    expect(later.some((f) => handedOver.has(f.partition) && f.firstOffset > handOverEnd)).toBe(true);
    expect(later.some((f) => !handedOver.has(f.partition))).toBe(true);
    expectExactlyOnce(await lakeRows(e), await highWatermarks(e));
    const landings = await e.db.selectFrom('ops.landings').selectAll().execute();
    expect(Number(landings[0].records_read)).toBe(40_000);
  });

  it('a landing takes the thread started ahead, which lands its share exactly once', async () => {
    const e = await env(lake);
    await produceEvents(e.config, { events: 40_000, days: 2, start: '2024-12-01', seed: 17, badRate: 0.02 });
    try {
      await startLandingThreadsAhead();
      expect(spareLandingThreads()).toHaveLength(1);
      const chunks: number[][] = [];
      const out = await land(e, {
        workers: 2,
        beforeCommit: (files) => {
          chunks.push([...new Set(files.map((f) => f.partition))]);
        },
      });
      expect(out.recordsRead).toBe(40_000);
      // the thread was ready: it took half of the partitions before anything was read, so no hand-over was committed
      // and each thread committed its own partitions once, at its end
      expect(chunks).toHaveLength(2);
      expect(chunks.map((c) => c.length)).toEqual([2, 2]);
      expect(new Set(chunks.flat()).size).toBe(4);
      expectExactlyOnce(await lakeRows(e), await highWatermarks(e));
      // taken by the landing (and ended with it): none is left for the next landing
      expect(spareLandingThreads()).toEqual([]);
    } finally {
      await stopLandingThreads();
    }
  });

  it('a cap on buffered record bytes writes files early, every record still landed once', async () => {
    const e = await env(lake);
    await produceEvents(e.config, { events: 5_000, days: 2, start: '2024-12-01', seed: 5, badRate: 0.02 });
    // the topic holds every record once (one run read 6,899: this tells a producer that wrote some twice from a
    // landing that read some twice)
    const produced = [...(await highWatermarks(e)).values()].reduce((a, b) => a + b, 0);
    expect(produced, 'records in the topic after producing 5,000').toBe(5_000);
    // each buffered row counts its record's bytes plus 64: under a 20,000-byte cap no file can hold 313 rows, while
    // uncapped the 5,000 records of 4 partitions and 2 days fill files of about 625
    const out = await land(e, { workers: 1, maxBufferedBytes: 20_000 });
    expect(out.recordsRead).toBe(5_000);
    const files = await manifest(e);
    expect(files.length).toBeGreaterThan(16);
    for (const f of files) expect(f.row_count).toBeLessThan(313);
    expectExactlyOnce(await lakeRows(e), await highWatermarks(e));
  });

  it('landing twice in a row writes nothing the second time', async () => {
    const e = await env(lake);
    await produceEvents(e.config, { events: 5_000, days: 2, start: '2024-12-01', seed: 3, badRate: 0.02 });
    const first = await land(e);
    expect(first.recordsRead).toBe(5_000);
    const filesBefore = await lakeFiles(e);
    const manifestBefore = await manifest(e);

    const second = await land(e);
    expect(second).toEqual({
      recordsRead: 0,
      recordsLanded: 0,
      recordsDeadLettered: 0,
      files: 0,
      bytes: 0,
      perDate: [],
      reloadDates: [],
    });
    expect(await lakeFiles(e)).toEqual(filesBefore);
    expect(await manifest(e)).toEqual(manifestBefore);
    expect(await e.db.selectFrom('ops.landings').selectAll().execute()).toHaveLength(1);
  });

  it('a landing killed between writing files and committing them ends, once retried, with every record exactly once', async () => {
    const e = await env(lake);
    await produceEvents(e.config, { events: 30_000, days: 2, start: '2024-12-01', seed: 11, badRate: 0.02 });
    let commits = 0;
    const crash: LandTuning = {
      commitEvery: 10_000,
      maxRowsPerFile: 4_000,
      beforeCommit: () => {
        if (++commits === 2) throw new Error('simulated crash before commit');
      },
    };
    await expect(land(e, crash)).rejects.toThrow('simulated crash');
    const committed = new Set((await manifest(e)).map((f) => f.path));
    const debris = (await lakeFiles(e)).filter((f) => !committed.has(f));
    expect(committed.size).toBeGreaterThan(0);
    expect(debris.length).toBeGreaterThan(0);

    const retry = await land(e, { commitEvery: 10_000, maxRowsPerFile: 4_000 });
    const hw = await highWatermarks(e);
    expect(retry.recordsRead).toBeLessThan(30_000);
    expectExactlyOnce(await lakeRows(e), hw);
    const after = new Set((await manifest(e)).map((f) => f.path));
    expect((await lakeFiles(e)).filter((f) => !after.has(f))).toEqual([]);
    const landings = await e.db.selectFrom('ops.landings').select(['records_read']).execute();
    expect(landings.reduce((a, l) => a + Number(l.records_read), 0)).toBe(30_000);
  });

  it('late records for a loaded date land in its partition and mark it for re-load', async () => {
    const e = await env(lake);
    await produceEvents(e.config, { events: 4_000, days: 2, start: '2024-12-01', seed: 5, badRate: 0 });
    const first = await land(e);
    expect(first.reloadDates).toEqual([]);
    await e.db
      .insertInto('ops.date_loads')
      .values({ dt: '2024-12-01', first_loaded_at: new Date(), last_loaded_at: new Date() })
      .execute();
    const filesBefore = new Set((await manifest(e)).map((f) => f.path));

    const late = await produceEvents(e.config, { events: 300, days: 1, start: '2024-12-01', seed: 99, badRate: 0 });
    const second = await land(e);
    expect(second.recordsLanded).toBe(300);
    expect(second.reloadDates).toEqual(['2024-12-01']);
    const newFiles = (await manifest(e)).filter((f) => !filesBefore.has(f.path));
    expect(newFiles.every((f) => f.dt === '2024-12-01' && f.path.startsWith('events/dt=2024-12-01/'))).toBe(true);
    expect(newFiles.reduce((a, f) => a + f.row_count, 0)).toBe(late.byDate['2024-12-01']);
    const mark = await e.db
      .selectFrom('ops.date_loads')
      .selectAll()
      .where('dt', '=', '2024-12-01')
      .executeTakeFirstOrThrow();
    expect(mark.needs_reload).toBe(true);
    expect(mark.reload_reason).toMatch(/^300 late records landed/);
    const other = await e.db.selectFrom('ops.date_loads').selectAll().where('dt', '=', '2024-12-02').execute();
    expect(other).toEqual([]);
  });
});
