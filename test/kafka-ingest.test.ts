import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLandActivities, type LandTuning } from '../activities/land';
import { type KafkaConnection, topicOffsets } from '../lib/kafka';
import { readEventFile } from '../lib/lake';
import { type Compression, eventValues, produceIndependently, type ProduceStep } from './independent-producer';
import { PRIVATE_SASL_USER, type PrivateBroker, startPrivateBroker } from './private-broker';
import { createTestEnv, type TestEnv } from './support';

/**
 * Ingestion of what real producers write, written here by librdkafka (not the landing's client): every codec,
 * transactions committed and aborted with other records interleaved, a broker killed or hung mid-landing, SASL_SSL.
 */

const envs: TestEnv[] = [];
afterEach(async () => {
  while (envs.length > 0) await envs.pop()?.cleanup();
});

async function env(kafka?: KafkaConnection, partitions = 4): Promise<TestEnv> {
  const e = await createTestEnv({ partitions, kafka });
  envs.push(e);
  return e;
}

function land(e: TestEnv, tuning: LandTuning = {}, maxRecords?: number) {
  return createLandActivities({ config: e.config, pool: e.pool, db: e.db }, tuning).landEvents({ maxRecords });
}

/** Every committed lake row: area, partition, offset, event_id. */
async function lakeRows(e: TestEnv) {
  const rows: { area: string; partition: number; offset: number; eventId: string | null }[] = [];
  const files = await e.db.selectFrom('ops.lake_files').selectAll().execute();
  for (const f of files) {
    const table = await readEventFile(path.join(e.config.lakeDir, f.path));
    const partitions = table.getChild('kafka_partition')!.toArray() as Int32Array;
    const offsets = table.getChild('kafka_offset')!.toArray() as BigInt64Array;
    const ids = table.getChild('event_id')!;
    for (let i = 0; i < table.numRows; i++) {
      rows.push({ area: f.area, partition: partitions[i], offset: Number(offsets[i]), eventId: ids.get(i) as string });
    }
  }
  return rows;
}

async function committedOffsets(e: TestEnv): Promise<Map<number, number>> {
  const rows = await e.db
    .selectFrom('ops.kafka_offsets')
    .select(['partition', 'next_offset'])
    .where('topic', '=', e.config.kafkaTopic)
    .execute();
  return new Map(rows.map((r) => [r.partition, Number(r.next_offset)]));
}

async function endOffsets(e: TestEnv): Promise<Map<number, number>> {
  return new Map((await topicOffsets(e.config, e.config.kafkaTopic)).map((o) => [o.partition, o.high]));
}

/** Every offset of every partition in the lake exactly once. */
async function expectEveryOffsetOnce(e: TestEnv): Promise<void> {
  const rows = await lakeRows(e);
  for (const [partition, high] of await endOffsets(e)) {
    const offsets = rows
      .filter((r) => r.partition === partition)
      .map((r) => r.offset)
      .sort((a, b) => a - b);
    expect(offsets, `partition ${partition}`).toEqual(Array.from({ length: high }, (_, i) => i));
  }
}

const sorted = (xs: (string | null)[]) => [...xs].sort();

describe('ingestion from an independent producer', () => {
  it('lands a batch of each codec (gzip, snappy, lz4, zstd) completely', async () => {
    const e = await env();
    const codecs: Compression[] = ['gzip', 'snappy', 'lz4', 'zstd'];
    const produced = codecs.map((compression, i) => ({ compression, ...eventValues(500, 100 + i) }));
    await produceIndependently(
      e.config,
      e.config.kafkaTopic,
      produced.map((p, partition) => ({ kind: 'plain', partition, compression: p.compression, values: p.values })),
    );
    const out = await land(e);
    expect(out.recordsRead).toBe(2000);
    expect(out.recordsLanded).toBe(2000);
    const rows = await lakeRows(e);
    produced.forEach((p, partition) => {
      const landed = rows.filter((r) => r.partition === partition);
      expect(sorted(landed.map((r) => r.eventId)), p.compression).toEqual(sorted(p.ids));
    });
    await expectEveryOffsetOnce(e);
  });

  it('lands committed transactions and interleaved plain records, never aborted ones; counts conserved per partition', async () => {
    const e = await env(undefined, 2);
    const expected = new Map<number, string[]>();
    const aborted: string[] = [];
    const steps: ProduceStep[] = [];
    let seed = 200;
    for (const [partition, compression] of [
      [0, 'gzip'],
      [1, 'zstd'],
    ] as const) {
      expected.set(partition, []);
      for (const kind of ['commit', 'abort', 'commit', 'abort', 'commit'] as const) {
        const txn = eventValues(10, seed++);
        const plain = eventValues(1, seed++);
        steps.push({ kind, partition, compression, values: txn.values, interleave: plain.values });
        expected.get(partition)!.push(...plain.ids, ...(kind === 'commit' ? txn.ids : []));
        if (kind === 'abort') aborted.push(...txn.ids);
      }
    }
    await produceIndependently(e.config, e.config.kafkaTopic, steps);

    // a first landing stops part-way (inside the transactions); the second resumes from ops.kafka_offsets
    const first = await land(e, { commitEvery: 4 }, 12);
    const second = await land(e, { commitEvery: 4 });
    const rows = await lakeRows(e);
    for (const [partition, ids] of expected) {
      const landed = rows.filter((r) => r.partition === partition);
      expect(sorted(landed.map((r) => r.eventId)), `partition ${partition}`).toEqual(sorted(ids));
      expect(new Set(landed.map((r) => r.offset)).size).toBe(landed.length);
    }
    expect(rows.filter((r) => aborted.includes(r.eventId ?? ''))).toEqual([]);
    // read = landed + dead-lettered, per landing and in total; aborted records and markers are passed, not read
    for (const out of [first, second]) expect(out.recordsRead).toBe(out.recordsLanded + out.recordsDeadLettered);
    expect(first.recordsRead + second.recordsRead).toBe(2 * 35);
    const landings = await e.db.selectFrom('ops.landings').selectAll().execute();
    for (const l of landings) {
      expect(Number(l.records_read)).toBe(Number(l.records_landed) + Number(l.records_dead_lettered));
    }
    // offsets moved past the markers and aborted records: the next landing has nothing to read
    expect(await committedOffsets(e)).toEqual(await endOffsets(e));
    const third = await land(e);
    expect(third.recordsRead).toBe(0);
  });
});

describe('a private broker', () => {
  let broker: PrivateBroker;
  let plaintext: KafkaConnection;
  beforeAll(async () => {
    broker = await startPrivateBroker();
    plaintext = { kafkaBrokers: [broker.plaintext], kafkaSsl: false, kafkaSslCa: null, kafkaSasl: null };
  }, 180_000);
  afterAll(async () => {
    await broker?.stop();
  });

  async function produce(e: TestEnv, events: number, seed: number, compression: Compression = 'lz4'): Promise<void> {
    const { values } = eventValues(events, seed);
    const perPartition = Math.ceil(values.length / 4);
    await produceIndependently(
      e.config,
      e.config.kafkaTopic,
      [0, 1, 2, 3].map((partition) => ({
        kind: 'plain',
        partition,
        compression,
        values: values.slice(partition * perPartition, (partition + 1) * perPartition),
      })),
    );
  }

  it('killed mid-landing and started again: the retried landing ends with every offset landed exactly once', async () => {
    const e = await env(plaintext);
    // 25 MB uncompressed: several fetch rounds, so reading still needs the broker when it is killed at the second commit
    await produce(e, 60_000, 300, 'none');
    let commits = 0;
    const killing: LandTuning = {
      commitEvery: 4_000,
      beforeCommit: async () => {
        if (++commits === 2) await broker.kill();
      },
    };
    await expect(land(e, killing)).rejects.toThrow();
    expect(commits).toBeGreaterThanOrEqual(2);
    await broker.start();
    const retry = await land(e, { commitEvery: 4_000 });
    expect(retry.recordsRead).toBeGreaterThan(0);
    expect(retry.recordsRead).toBeLessThan(60_000);
    await expectEveryOffsetOnce(e);
    const landings = await e.db.selectFrom('ops.landings').select(['records_read']).execute();
    expect(landings.reduce((a, l) => a + Number(l.records_read), 0)).toBe(60_000);
  }, 180_000);

  it('a broker that stops answering fails the landing by the request timeout; once it answers, the retry lands the rest', async () => {
    const e = await env(plaintext);
    // 25 MB uncompressed: several fetch rounds (2 MB per partition each), so reading goes on after the broker stops
    // answering at the first commit
    await produce(e, 60_000, 400, 'none');
    let commits = 0;
    const hanging: LandTuning = {
      commitEvery: 2_000,
      workers: 1,
      requestTimeoutMs: 1_500,
      beforeCommit: () => {
        if (++commits === 1) broker.pause();
      },
    };
    try {
      await expect(land(e, hanging)).rejects.toThrow(/time(d)? ?out/i);
    } finally {
      broker.resume();
    }
    await land(e);
    await expectEveryOffsetOnce(e);
  }, 180_000);

  it('lands through the SASL_SSL listener with SCRAM; wrong credentials fail non-retryably, naming the variables', async () => {
    const secure = (password: string, mechanism: 'scram-sha-256' | 'scram-sha-512' | 'plain'): KafkaConnection => ({
      kafkaBrokers: [broker.saslSsl],
      kafkaSsl: true,
      kafkaSslCa: broker.caFile,
      kafkaSasl: { mechanism, username: PRIVATE_SASL_USER, password },
    });
    const e = await env(secure(broker.saslPassword, 'scram-sha-512'));
    const { ids } = eventValues(1_000, 500);
    await produce(e, 1_000, 500);
    const out = await land(e);
    expect(out.recordsLanded).toBe(1_000);
    expect(sorted((await lakeRows(e)).map((r) => r.eventId))).toEqual(sorted(ids));
    for (const mechanism of ['scram-sha-256', 'plain'] as const) {
      const again = createLandActivities({
        config: { ...e.config, ...secure(broker.saslPassword, mechanism) },
        pool: e.pool,
        db: e.db,
      });
      expect((await again.landEvents({})).recordsRead, mechanism).toBe(0);
    }

    const wrongPassword = 'not-the-password-' + Date.now();
    const wrong = createLandActivities({
      config: { ...e.config, ...secure(wrongPassword, 'scram-sha-256') },
      pool: e.pool,
      db: e.db,
    });
    const failure = await wrong.landEvents({}).then(
      () => null,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect((failure as ApplicationFailure).nonRetryable).toBe(true);
    expect((failure as ApplicationFailure).message).toMatch(/KAFKA_SASL_PASSWORD/);
    expect((failure as ApplicationFailure).message).not.toContain(wrongPassword);
  }, 180_000);
});
