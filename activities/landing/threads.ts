import type { Worker } from 'node:worker_threads';
import type { KafkaConnection } from '../../lib/kafka';
import { type LakeSettings, lakeOf } from '../../lib/lake-store';
import { startWorkerThread } from '../../lib/worker-thread';
import { type ChunkCommit, Landing, type LandingTuning } from './buffers';
import type { Committer } from './commit';
import type { PartitionPlan } from './plan';
import { consume } from './read';

/** Landing in worker threads: partitions split into groups, each read, validated and written by its own thread. */

/** Below this many records to land, starting worker threads costs more than it saves. */
const MIN_PARALLEL_RECORDS = 20_000;

/** What a landing worker is given (workerData); its partitions are `plans`. */
export interface LandWorkerData {
  kafka: KafkaConnection;
  topic: string;
  /** Plain data: the thread opens its own store (and S3 client). */
  lake: LakeSettings;
  tuning: LandingTuning;
  nowMs: number;
  plans: PartitionPlan[];
}

/** Messages from a landing worker to the activity's thread. */
export type LandWorkerMessage =
  | { type: 'commit'; id: number; chunk: ChunkCommit }
  | { type: 'progress'; uncommitted: number }
  | { type: 'done' }
  | { type: 'error'; message: string; stack?: string };

/** The partitions with records to land, split into up to `workers` groups of about equal records; null: land in this thread. */
export function workerGroups(plans: PartitionPlan[], workers: number, maxRecords: number): PartitionPlan[][] | null {
  const open = plans.filter((p) => p.start < p.end).sort((a, b) => b.end - b.start - (a.end - a.start));
  const total = open.reduce((n, p) => n + p.end - p.start, 0);
  if (workers <= 1 || open.length < 2 || Number.isFinite(maxRecords) || total < MIN_PARALLEL_RECORDS) return null;
  const groups = Array.from({ length: Math.min(workers, open.length) }, () => ({
    records: 0,
    plans: [] as PartitionPlan[],
  }));
  for (const p of open) {
    const g = groups.reduce((a, b) => (b.records < a.records ? b : a));
    g.plans.push(p);
    g.records += p.end - p.start;
  }
  return groups.map((g) => g.plans.sort((a, b) => a.partition - b.partition));
}

/** Starts a landing worker thread (activities/landing/worker.ts). */
function startLandingWorker(data: LandWorkerData): Worker {
  return startWorkerThread(__filename, 'worker', data);
}

/**
 * Lands `groups` of partitions in parallel: the first in this thread, the others in worker threads
 * (activities/landing/worker.ts). Each group writes its files
 * and sends each chunk (files + offsets) here, where `committer` records it in PostgreSQL one chunk at a time, so
 * exactly-once holds per partition as in a single-threaded landing. Any failure stops every worker; files written
 * and not committed are debris that the next landing removes.
 */
export async function landInWorkers(
  groups: PartitionPlan[][],
  shared: Omit<LandWorkerData, 'plans'>,
  committer: Committer,
  onUncommitted: (records: number) => void,
): Promise<void> {
  const workers: Worker[] = [];
  const uncommitted = groups.map(() => 0);
  let failed = false;
  let local: Promise<unknown> = Promise.resolve();
  const progress = (i: number, records: number): void => {
    uncommitted[i] = records;
    onUncommitted(uncommitted.reduce((a, b) => a + b, 0));
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let done = 0;
      const fail = (err: unknown): void => {
        if (failed) return;
        failed = true;
        reject(err);
      };
      const finished = (): void => {
        if (++done === groups.length) resolve();
      };
      // the first group lands in this thread (one heap and one Parquet writer fewer), the others in workers
      const landing = new Landing(lakeOf(shared.lake), shared.topic, groups[0], shared.tuning, shared.nowMs, (chunk) =>
        committer.commit(chunk),
      );
      local = consume({
        kafka: shared.kafka,
        requestTimeoutMs: shared.tuning.requestTimeoutMs,
        topic: shared.topic,
        plans: groups[0],
        landing,
        maxRecords: Number.POSITIVE_INFINITY,
        commitEvery: shared.tuning.commitEvery,
        onProgress: () => {
          if (failed) throw new Error('landing stopped: another partition group failed');
          progress(0, landing.uncommitted);
        },
      }).then(finished, fail);
      groups.slice(1).forEach((plans, k) => {
        const i = k + 1;
        const data: LandWorkerData = { ...shared, plans };
        const w = startLandingWorker(data);
        workers.push(w);
        w.on('message', (m: LandWorkerMessage) => {
          if (failed) return;
          if (m.type === 'commit') {
            committer.commit(m.chunk).then(() => {
              if (!failed) w.postMessage({ type: 'committed', id: m.id });
            }, fail);
          } else if (m.type === 'progress') {
            try {
              progress(i, m.uncommitted);
            } catch (err) {
              fail(err);
            }
          } else if (m.type === 'done') {
            finished();
          } else {
            fail(Object.assign(new Error(m.message), { stack: m.stack }));
          }
        });
        w.on('error', fail);
        w.on('exit', (code) => {
          if (code !== 0)
            fail(
              new Error(
                `landing worker for partitions ${plans.map((p) => p.partition).join(',')} exited with code ${code}`,
              ),
            );
        });
      });
    });
  } finally {
    failed = true;
    await Promise.all([...workers.map((w) => w.terminate()), local]);
  }
}
