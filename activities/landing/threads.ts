import type { Worker } from 'node:worker_threads';
import type { KafkaConnection } from '../../lib/kafka';
import { type LakeSettings, lakeOf } from '../../lib/lake-store';
import { startWorkerThread } from '../../lib/worker-thread';
import { type ChunkCommit, Landing, type LandingTuning } from './buffers';
import type { Committer } from './commit';
import type { PartitionPlan } from './plan';
import { consume } from './read';
import { warmUpLanding } from './warm-up';

/**
 * Landing in worker threads: the activity's thread starts landing every partition at once while the worker threads
 * start up (loading their modules takes about a CPU-second), and hands each worker a share of its partitions as soon
 * as that worker is ready; from then on each thread reads, validates and writes its own partitions. A process that
 * lands (the Temporal worker) starts its landing threads ahead, when it boots (startLandingThreads): its first landing
 * then takes threads that are loaded and warmed up, and shares its partitions before the first fetch.
 */

/** Below this many records to land, starting worker threads costs more than it saves. */
const MIN_PARALLEL_RECORDS = 20_000;

/** What a landing worker thread is started with (workerData). */
export interface LandThreadOptions {
  /** Warm up (activities/landing/warm-up.ts) before saying it is ready: a thread started ahead of a landing. */
  warmUp?: boolean;
}

/** What a landing worker is given for one landing, with its partitions, in the 'start' message. */
export interface LandWorkerData {
  kafka: KafkaConnection;
  topic: string;
  /** Plain data: the thread opens its own store (and S3 client). */
  lake: LakeSettings;
  tuning: LandingTuning;
  nowMs: number;
}

/** Messages from the activity's thread to a landing worker. */
export type LandMainMessage =
  { type: 'start'; data: LandWorkerData; plans: PartitionPlan[] } | { type: 'committed'; id: number };

/** Messages from a landing worker to the activity's thread. */
export type LandWorkerMessage =
  | { type: 'ready' }
  | { type: 'commit'; id: number; chunk: ChunkCommit }
  | { type: 'progress'; uncommitted: number }
  | { type: 'done' }
  | { type: 'error'; message: string; stack?: string };

/** `plans` split into up to `count` groups of about equal records to land, the largest partitions first. */
function split(plans: PartitionPlan[], count: number): PartitionPlan[][] {
  const open = plans.filter((p) => p.start < p.end).sort((a, b) => b.end - b.start - (a.end - a.start));
  const groups = Array.from({ length: Math.min(count, open.length) }, () => ({
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

/** The partitions with records to land, split into up to `workers` groups of about equal records; null: land in this thread. */
export function workerGroups(plans: PartitionPlan[], workers: number, maxRecords: number): PartitionPlan[][] | null {
  const open = plans.filter((p) => p.start < p.end);
  const total = open.reduce((n, p) => n + p.end - p.start, 0);
  if (workers <= 1 || open.length < 2 || Number.isFinite(maxRecords) || total < MIN_PARALLEL_RECORDS) return null;
  return split(open, workers);
}

/** Starts a landing worker thread (activities/landing/worker.ts). */
function startLandingWorker(options: LandThreadOptions): Worker {
  return startWorkerThread(__filename, 'worker', options);
}

/** A landing thread started ahead of a landing, waiting for one. */
interface Spare {
  thread: Worker;
  /** Resolves once it is warmed up and waits for its landing; rejects if it fails first. */
  ready: Promise<void>;
  isReady: boolean;
}

/** Threads started ahead (startLandingThreads), taken by the next landings in this process. */
const spares: Spare[] = [];

function startSpare(): Spare {
  const thread = startLandingWorker({ warmUp: true });
  // an idle spare does not keep the process alive; a landing that takes it refs it again
  thread.unref();
  const spare: Spare = { thread, ready: Promise.resolve(), isReady: false };
  const forget = (): void => {
    const i = spares.indexOf(spare);
    if (i !== -1) spares.splice(i, 1);
  };
  spare.ready = new Promise<void>((resolve, reject) => {
    thread.on('message', (m: LandWorkerMessage) => {
      if (m.type !== 'ready') return;
      spare.isReady = true;
      resolve();
    });
    thread.once('error', (err) => {
      forget();
      reject(err);
    });
    thread.once('exit', (code) => {
      forget();
      reject(new Error(`landing thread exited with code ${code} before its landing`));
    });
  });
  spare.ready.catch(() => undefined); // a landing that takes it sees the failure through its own listeners
  spares.push(spare);
  return spare;
}

/**
 * Starts `count` landing threads ahead of the landings of this process (with `workers: 2`, one), each loading its
 * modules and warming up, and resolves once they are ready; also warms this thread up, which lands too. The next
 * landing takes these threads instead of starting its own, and ends them as it ends those (later landings start
 * theirs): an idle thread holds 70-90 MiB, which the worker's peak memory, reached after its landing, cannot spare.
 */
export async function startLandingThreads(count: number): Promise<void> {
  while (spares.length < count) startSpare();
  warmUpLanding();
  await Promise.all(spares.map((s) => s.ready));
}

/** The thread ids of the landing threads started ahead and not yet taken by a landing. */
export function spareLandingThreads(): number[] {
  return spares.map((s) => s.thread.threadId);
}

/** Stops the threads started ahead that no landing took (a worker shutting down; tests). */
export async function stopLandingThreads(): Promise<void> {
  await Promise.all(spares.splice(0).map((s) => s.thread.terminate()));
}

/** Takes a spare thread if there is one (ready or still starting), else starts a thread. */
function takeThread(): { thread: Worker; isReady: boolean } {
  const spare = spares.shift();
  if (spare === undefined) return { thread: startLandingWorker({}), isReady: false };
  spare.thread.ref();
  return { thread: spare.thread, isReady: spare.isReady };
}

/** A landing worker as the activity's thread sees it. */
interface WorkerState {
  thread: Worker;
  /** Resolves once the worker has loaded its modules and waits for its partitions (or once the landing failed). */
  ready: Promise<void>;
  setReady: () => void;
  isReady: boolean;
  /** Its partitions, once handed over; null while it waits. */
  plans: PartitionPlan[] | null;
  done: boolean;
  uncommitted: number;
}

/**
 * Lands `groups` of partitions in parallel (their number is the number of threads): the activity's thread starts
 * on all of them while groups.length - 1 worker threads (activities/landing/worker.ts) start, and gives each worker,
 * once it is ready, a share of the partitions it has not finished: it commits them as far as read (Landing.release)
 * and the worker lands the rest. Each thread writes its files and sends each chunk (files + offsets) here, where
 * `committer` records it in PostgreSQL one chunk at a time, so exactly-once holds per partition as in a
 * single-threaded landing. Any failure stops every worker; files written and not committed are debris that the next
 * landing removes. `waitForWorkers` (tests): after that many records the activity's thread waits for the workers
 * rather than landing on alone, so that the hand-over happens whatever the machine's speed.
 */
export async function landInWorkers(
  groups: PartitionPlan[][],
  shared: LandWorkerData,
  committer: Committer,
  onUncommitted: (records: number) => void,
  waitForWorkers: number = Number.POSITIVE_INFINITY,
): Promise<void> {
  const workers: WorkerState[] = [];
  let failed = false;
  let local: Promise<unknown> = Promise.resolve();
  let localUncommitted = 0;
  const progress = (): void => {
    onUncommitted(workers.reduce((a, w) => a + w.uncommitted, localUncommitted));
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let localDone = false;
      const fail = (err: unknown): void => {
        if (failed) return;
        failed = true;
        for (const w of workers) w.setReady(); // nothing waits on a worker any more
        reject(err);
      };
      // done when this thread is, and every worker that was handed partitions (the others are stopped)
      const finished = (): void => {
        if (localDone && workers.every((w) => w.plans === null || w.done)) resolve();
      };
      for (let i = 1; i < groups.length; i++) {
        const taken = takeThread();
        const thread = taken.thread;
        let setReady = (): void => undefined;
        const ready = new Promise<void>((r) => (setReady = r));
        const state: WorkerState = {
          thread,
          ready,
          setReady,
          isReady: false,
          plans: null,
          done: false,
          uncommitted: 0,
        };
        workers.push(state);
        if (taken.isReady) {
          // a spare that said it was ready before this landing took it
          state.isReady = true;
          setReady();
        }
        thread.on('message', (m: LandWorkerMessage) => {
          if (failed) return;
          if (m.type === 'ready') {
            state.isReady = true;
            setReady();
          } else if (m.type === 'commit') {
            committer.commit(m.chunk).then(() => {
              if (!failed) thread.postMessage({ type: 'committed', id: m.id } satisfies LandMainMessage);
            }, fail);
          } else if (m.type === 'progress') {
            state.uncommitted = m.uncommitted;
            try {
              progress();
            } catch (err) {
              fail(err);
            }
          } else if (m.type === 'done') {
            state.done = true;
            state.uncommitted = 0;
            finished();
          } else {
            fail(Object.assign(new Error(m.message), { stack: m.stack }));
          }
        });
        thread.on('error', fail);
        thread.on('exit', (code) => {
          if (code !== 0) fail(new Error(`landing worker ${i} exited with code ${code}`));
        });
      }

      const landing = new Landing(
        lakeOf(shared.lake),
        shared.topic,
        groups.flat(),
        shared.tuning,
        shared.nowMs,
        (chunk) => committer.commit(chunk),
      );
      /** Gives each ready worker its share of what this thread has not landed yet. */
      const handOver = async (open: Set<number>): Promise<void> => {
        const waiting = workers.filter((w) => w.plans === null);
        if (waiting.length === 0) return;
        if (!waiting.some((w) => w.isReady) && landing.recordsRead >= waitForWorkers) await waiting[0].ready;
        for (const w of waiting) {
          if (!w.isReady || failed) continue;
          const left = landing.remaining().filter((p) => open.has(p.partition));
          const shares = split(left, workers.filter((x) => x.plans === null).length + 1);
          if (shares.length < 2) return; // one partition left: nothing to share
          const partitions = shares[shares.length - 1].map((p) => p.partition);
          for (const p of partitions) open.delete(p);
          w.plans = await landing.release(partitions);
          w.thread.postMessage({ type: 'start', data: shared, plans: w.plans } satisfies LandMainMessage);
        }
      };
      local = consume({
        kafka: shared.kafka,
        requestTimeoutMs: shared.tuning.requestTimeoutMs,
        topic: shared.topic,
        plans: groups.flat(),
        landing,
        maxRecords: Number.POSITIVE_INFINITY,
        commitEvery: shared.tuning.commitEvery,
        onProgress: () => {
          if (failed) throw new Error('landing stopped: another partition group failed');
          localUncommitted = landing.uncommitted;
          progress();
        },
        handOver,
      }).then(() => {
        localDone = true;
        finished();
      }, fail);
    });
  } finally {
    failed = true;
    await Promise.all([...workers.map((w) => w.thread.terminate()), local]);
  }
}
