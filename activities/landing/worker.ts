import { parentPort, workerData } from 'node:worker_threads';
import { lakeOf } from '../../lib/lake-store';
import type { PartitionPlan } from './plan';
import { type ChunkCommit, Landing } from './buffers';
import { consume } from './read';
import type { LandMainMessage, LandThreadOptions, LandWorkerData, LandWorkerMessage } from './threads';
import { warmUpLanding } from './warm-up';

/**
 * A landing worker thread (started by activities/landing/threads.ts): once its modules are loaded (and, for a thread
 * started ahead of a landing, once it has warmed up) it says it is ready, is handed its landing and its share of the
 * partitions, and lands them — fetch, validate, write Parquet files to the lake —
 * sending each chunk to the activity's thread, which commits it in PostgreSQL and answers; the worker reads on only
 * once its chunk is committed.
 */

const port = parentPort;
if (port === null)
  throw new Error('activities/landing/worker.ts runs as a worker thread of activities/landing/threads.ts');
const options = (workerData ?? {}) as LandThreadOptions;
const send = (m: LandWorkerMessage): void => port.postMessage(m);

const waiting = new Map<number, () => void>();
let seq = 0;
port.on('message', (m: LandMainMessage) => {
  if (m.type === 'start') {
    land(m.data, m.plans).catch((err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      send({ type: 'error', message: e.message, stack: e.stack });
    });
    return;
  }
  const resolve = waiting.get(m.id);
  waiting.delete(m.id);
  resolve?.();
});

const commitChunk = (chunk: ChunkCommit): Promise<void> =>
  new Promise((resolve) => {
    const id = seq++;
    waiting.set(id, resolve);
    send({ type: 'commit', id, chunk });
  });

async function land(data: LandWorkerData, plans: PartitionPlan[]): Promise<void> {
  const landing = new Landing(lakeOf(data.lake), data.topic, plans, data.tuning, data.nowMs, commitChunk);
  await consume({
    kafka: data.kafka,
    requestTimeoutMs: data.tuning.requestTimeoutMs,
    topic: data.topic,
    plans,
    landing,
    maxRecords: Number.POSITIVE_INFINITY,
    commitEvery: data.tuning.commitEvery,
    onProgress: () => send({ type: 'progress', uncommitted: landing.uncommitted }),
  });
  send({ type: 'done' });
  port?.close();
}

if (options.warmUp === true) warmUpLanding();
send({ type: 'ready' });
