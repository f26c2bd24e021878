import { Consumer, FetchIsolationLevels } from '@platformatic/kafka';
import { type KafkaConnection, kafkaClientOptions, kafkaError } from '../../lib/kafka';
import type { Landing } from './buffers';
import type { PartitionPlan } from './plan';

/**
 * The Kafka read loop of a landing, through @platformatic/kafka: fetches with read_committed isolation straight from
 * the partition leaders, no consumer group (offsets live in ops.kafka_offsets). The client decodes and decompresses
 * the record batches (gzip, snappy, lz4, zstd), follows leader changes, retries and times out requests.
 */

const FETCH = { maxBytes: 8 << 20, maxBytesPerPartition: 2 << 20, maxWaitMs: 250 };
/** Record batch attributes (Kafka's RecordBatch format). */
const IS_TRANSACTIONAL = 0x10;
const IS_CONTROL = 0x20;
const EMPTY = Buffer.alloc(0);

type FetchResponse = Awaited<ReturnType<Consumer['fetch']>>;
type FetchedPartition = FetchResponse['responses'][number]['partitions'][number];
type Batch = NonNullable<FetchedPartition['records']>[number];

/**
 * The data batches a read_committed reader delivers, by the rule of Kafka's own consumer: a transactional batch is
 * skipped while its producer has an aborted transaction open (from that transaction's first offset, as listed by the
 * broker, up to the producer's abort marker); control batches (commit and abort markers) are never delivered.
 * The client filters aborted batches too, but keeps one aborted range per producer and fetch, so when two aborted
 * transactions of one producer arrive in one response it lets the first through: this applies the full rule.
 */
export function committedBatches(batches: Batch[], aborted: FetchedPartition['abortedTransactions']): Batch[] {
  const pending = [...(aborted ?? [])].sort((a, b) =>
    a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0,
  );
  const abortedProducers = new Set<bigint>();
  const out: Batch[] = [];
  for (const b of batches) {
    const last = b.firstOffset + BigInt(b.lastOffsetDelta);
    while (pending.length > 0 && pending[0].firstOffset <= last) abortedProducers.add(pending.shift()!.producerId);
    if ((b.attributes & IS_CONTROL) !== 0) {
      // control record key: int16 version, int16 type (0 = abort, 1 = commit)
      if (b.records[0]?.key?.readInt16BE(2) === 0) abortedProducers.delete(b.producerId);
      continue;
    }
    if ((b.attributes & IS_TRANSACTIONAL) !== 0 && abortedProducers.has(b.producerId)) continue;
    out.push(b);
  }
  return out;
}

export interface ConsumeArgs {
  kafka: KafkaConnection;
  requestTimeoutMs: number;
  topic: string;
  plans: PartitionPlan[];
  landing: Landing;
  maxRecords: number;
  commitEvery: number;
  onProgress: () => void;
  /**
   * Called before the first fetch and between fetches: may give partitions away to another thread, taking them out of `open` (the partitions
   * still to read) and committing them through `landing.release`.
   */
  handOver?: (open: Set<number>) => Promise<void>;
}

/**
 * Reads every planned partition from its start to its end offset through `landing`, committing in chunks. The next
 * fetch of a leader is sent before the records of the previous one are processed, so the broker works meanwhile.
 * Offsets of aborted records and transaction markers are passed over: counted neither read nor landed, they are
 * committed with the partition's end (or with the next landed record).
 */
export async function consume(args: ConsumeArgs): Promise<void> {
  const { kafka, topic, plans, landing, maxRecords, commitEvery, onProgress } = args;
  const ends = new Map(plans.map((p) => [p.partition, p.end]));
  const open = new Set(plans.filter((p) => p.start < p.end).map((p) => p.partition));
  if (open.size === 0 || maxRecords <= 0) return;
  const position = new Map(plans.map((p) => [p.partition, p.start]));
  let read = 0;
  const consumer = new Consumer({
    ...kafkaClientOptions(kafka, 'nightshift-land', { requestTimeoutMs: args.requestTimeoutMs }),
    groupId: 'nightshift-land',
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
  });
  const pending = new Set<Promise<unknown>>();
  try {
    const metadata = await consumer.metadata({ topics: [topic] });
    const topicMetadata = metadata.topics.get(topic);
    if (topicMetadata === undefined) throw new Error(`Kafka topic "${topic}" has no metadata: does it exist?`);
    const byLeader = new Map<number, number[]>();
    for (const p of open) {
      const leader = topicMetadata.partitions[p].leader;
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), p]);
    }
    const leaders = [...byLeader].map(([node, partitions]) => ({
      node,
      partitions,
      next: null as Promise<FetchResponse> | null,
    }));
    const fire = (g: (typeof leaders)[number]): void => {
      const wanted = g.partitions.filter((p) => open.has(p));
      if (wanted.length === 0) {
        g.next = null;
        return;
      }
      const next = consumer.fetch({
        node: g.node,
        topics: [
          {
            topicId: topicMetadata.id,
            partitions: wanted.map((p) => ({
              partition: p,
              fetchOffset: BigInt(position.get(p) ?? 0),
              partitionMaxBytes: FETCH.maxBytesPerPartition,
              currentLeaderEpoch: -1,
              lastFetchedEpoch: -1,
            })),
          },
        ],
        maxBytes: FETCH.maxBytes,
        maxWaitTime: FETCH.maxWaitMs,
        minBytes: 1,
        isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      });
      // awaited below, or abandoned when the landing stops early; held only until settled (it holds the records)
      const settled: Promise<unknown> = next.then(
        () => pending.delete(settled),
        () => pending.delete(settled),
      );
      pending.add(settled);
      g.next = next;
    };
    // a worker thread ready at once (started ahead) takes its partitions before anything is read
    if (args.handOver !== undefined) await args.handOver(open);
    for (const g of leaders) fire(g);
    while (open.size > 0 && read < maxRecords) {
      for (const g of leaders) {
        if (g.next === null) continue;
        const response = await g.next;
        const fetched: { partition: number; batches: Batch[] }[] = [];
        for (const t of response.responses) {
          for (const f of t.partitions) {
            const batches = f.records ?? [];
            // a fetch session may return partitions this landing does not read (any more)
            if (!open.has(f.partitionIndex) || batches.length === 0) continue;
            const last = batches[batches.length - 1];
            const nextOffset = Number(last.firstOffset) + last.lastOffsetDelta + 1;
            position.set(f.partitionIndex, Math.max(position.get(f.partitionIndex) ?? 0, nextOffset));
            // done when read to the end; the last batch also covers a gap (e.g. transaction markers) at the end
            if (nextOffset >= (ends.get(f.partitionIndex) ?? 0)) open.delete(f.partitionIndex);
            fetched.push({ partition: f.partitionIndex, batches: committedBatches(batches, f.abortedTransactions) });
          }
        }
        fire(g);
        for (const { partition, batches } of fetched) {
          const end = ends.get(partition) ?? 0;
          for (const b of batches) {
            const firstOffset = Number(b.firstOffset);
            const firstTimestamp = Number(b.firstTimestamp);
            // records before the next offset to land were landed already (a batch starts before the fetch offset)
            const from = landing.nextOffset(partition) ?? end;
            for (const r of b.records) {
              const offset = firstOffset + r.offsetDelta;
              if (offset < from || offset >= end) continue;
              const full = landing.add(partition, offset, firstTimestamp + Number(r.timestampDelta), r.value ?? EMPTY);
              if (full !== null) await landing.flush(full);
              if (++read >= maxRecords) break;
              if (landing.uncommitted >= commitEvery) await landing.commitSoon();
            }
            if (read >= maxRecords) break;
          }
          if (read >= maxRecords) break;
        }
        onProgress();
        if (read >= maxRecords) break;
        if (args.handOver !== undefined && open.size > 0) await args.handOver(open);
      }
    }
  } catch (err) {
    throw kafkaError(err, kafka, `reading topic "${topic}"`);
  } finally {
    await Promise.all(pending);
    await consumer.close(true).catch(() => undefined);
  }
  // partitions read to their end are committed at their end (past aborted records and markers, or a compacted gap)
  await landing.commit(read >= maxRecords ? new Map() : ends);
}
