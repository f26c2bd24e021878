import type pg from 'pg';
import { ApplicationFailure } from '@temporalio/common';
import { type KafkaConnection, topicOffsets } from '../../lib/kafka';
import { tryLockLanding, unlockLanding } from '../../lib/locks';
import type { Db } from '../../warehouse/db';

/** Planning a landing: the topic's landing lock, and per partition the offsets to land from and up to. */

/** Holds the landing lock of a topic for the whole landing: one landing at a time may touch the lake and offsets. */
export async function acquireLandingLock(pool: pg.Pool, topic: string, onWait: () => void): Promise<pg.PoolClient> {
  const client = await pool.connect();
  try {
    for (;;) {
      if (await tryLockLanding(client, topic)) return client;
      onWait();
      await new Promise((r) => setTimeout(r, 1000));
    }
  } catch (err) {
    client.release();
    throw err;
  }
}

export async function releaseLandingLock(client: pg.PoolClient, topic: string): Promise<void> {
  try {
    await unlockLanding(client, topic);
    client.release();
  } catch (err) {
    client.release(err as Error); // the session (and its lock) ends with the discarded connection
  }
}

export async function committedOffsets(db: Db, topic: string): Promise<Map<number, number>> {
  const rows = await db
    .selectFrom('ops.kafka_offsets')
    .select(['partition', 'next_offset'])
    .where('topic', '=', topic)
    .execute();
  return new Map(rows.map((r) => [r.partition, Number(r.next_offset)]));
}

export interface PartitionPlan {
  partition: number;
  /** First offset to land. */
  start: number;
  /** Last stable offset at the landing's start: land up to, not including, this offset. */
  end: number;
}

/**
 * Per partition: from the offset ops.kafka_offsets says is next, up to the offset a read_committed reader may read
 * now (the last stable offset). Fails non-retryably when the topic was recreated or retention deleted unlanded records.
 */
export async function planPartitions(
  conn: KafkaConnection,
  topic: string,
  committed: Map<number, number>,
): Promise<PartitionPlan[]> {
  const offsets = await topicOffsets(conn, topic).catch((err: unknown) => {
    if (err instanceof ApplicationFailure) throw err;
    throw new Error(
      `cannot read the offsets of Kafka topic "${topic}": does it exist (make up creates "events"), and is KAFKA_BROKERS right?`,
      { cause: err },
    );
  });
  if (offsets.length === 0) {
    throw new Error(`Kafka topic "${topic}" has no partitions: does it exist (make up creates "events")?`);
  }
  return offsets
    .map((o) => {
      const start = committed.get(o.partition) ?? 0;
      const low = o.low;
      const end = o.high;
      if (start > end) {
        throw ApplicationFailure.nonRetryable(
          `ops.kafka_offsets says partition ${o.partition} of "${topic}" is landed up to ${start}, but the broker's last offset is ${end}: the topic was recreated. Check the lake, then delete the topic's rows from ops.kafka_offsets to land it again from the start.`,
          'OffsetsAheadOfBroker',
        );
      }
      if (start < low && start < end) {
        throw ApplicationFailure.nonRetryable(
          `offsets ${start}..${low - 1} of partition ${o.partition} of "${topic}" were deleted by Kafka retention before they were landed: they are lost. To accept the loss, set next_offset to ${low} in ops.kafka_offsets for this partition.`,
          'OffsetsLostToRetention',
        );
      }
      return { partition: o.partition, start, end };
    })
    .sort((a, b) => a.partition - b.partition);
}
