import { Context } from '@temporalio/activity';
import { kafkaConnection, REQUEST_TIMEOUT_MS } from '../lib/kafka';
import { lakeOf } from '../lib/lake-store';
import { recordStep } from '../lib/runs';
import type { ActivityDeps, RunRef } from './deps';
import { type LandingTuning, Landing, type WrittenFile } from './landing/buffers';
import { Committer, type LandDateCounts, type LandEventsOutput } from './landing/commit';
import { removeDebris } from './landing/debris';
import { acquireLandingLock, committedOffsets, planPartitions, releaseLandingLock } from './landing/plan';
import { consume } from './landing/read';
import { landInWorkers, startLandingThreads, workerGroups } from './landing/threads';

export type { LandDateCounts, LandEventsOutput, WrittenFile };

/**
 * Landing: Kafka → lake, exactly once with respect to Kafka offsets. This file orchestrates the steps under
 * activities/landing/: plan (lock, offsets), debris (cleanup), buffers (validation, Parquet files), read (the Kafka
 * read loop), commit (PostgreSQL), threads (worker threads).
 * Files are written whole (locally under a temporary name, then renamed; on S3 at their final key); then one
 * PostgreSQL transaction records them in ops.lake_files and advances ops.kafka_offsets. Anything in the lake the manifest does not know is debris of an
 * interrupted landing and is removed when the next landing starts.
 */

export interface LandEventsInput {
  /** The pipeline date, only for ops.pipeline_runs bookkeeping (landing itself is not per date). */
  date?: string;
  /** The run, for ops.pipeline_runs; with `date`, the step is recorded as "land". */
  run?: RunRef;
  /** Stop after this many records (tests); the rest waits for the next landing. */
  maxRecords?: number;
}

/** Knobs for tests and benchmarks; the defaults are what production runs with. */
export interface LandTuning {
  /** Commit (files + offsets) after about this many records, so a long landing makes durable progress. */
  commitEvery?: number;
  /** Row cap of one Parquet file; bounds the memory of writers and readers. */
  maxRowsPerFile?: number;
  /** Rows buffered across all open files before the largest is written early; bounds the landing's memory. */
  maxBufferedRows?: number;
  /**
   * Bytes of records buffered across all open files (their raw size, which bounds what their rows hold) before the
   * largest is written early: bounds the landing's memory when records are large.
   */
  maxBufferedBytes?: number;
  /** Called after a chunk's files are renamed into place, before its transaction: tests throw here to simulate a crash. */
  beforeCommit?: (files: WrittenFile[]) => void | Promise<void>;
  /** The clock that bounds event_time in the future. */
  now?: () => Date;
  /**
   * Threads that land partitions in parallel, each owning a share of them (fetch, validate, write Parquet): the
   * activity's thread lands all of them while the workers - 1 worker threads start, then hands each its share; it
   * commits every thread's chunks. 0 or 1 lands in the activity's thread, as do small landings and landings capped by
   * maxRecords.
   */
  workers?: number;
  /** A Kafka request unanswered this long fails (then the client retries it a few times). */
  requestTimeoutMs?: number;
  /**
   * With worker threads, the activity's thread lands every partition until a worker is ready to take its share;
   * after this many records it waits for them instead (tests: so that the hand-over happens on any machine).
   */
  waitForWorkers?: number;
}

const DEFAULTS = {
  commitEvery: 500_000,
  maxRowsPerFile: 100_000,
  maxBufferedRows: 150_000,
  maxBufferedBytes: 48 << 20,
  workers: 2,
  requestTimeoutMs: REQUEST_TIMEOUT_MS,
  waitForWorkers: Number.POSITIVE_INFINITY,
};

/**
 * Starts this process's landing threads ahead of its first landing (the default `workers` less the activity's
 * thread) and warms them and this thread up, resolving once they are ready: the Temporal worker calls it when it
 * boots, so that its first landing does not wait for a thread to load its modules (see startLandingThreads).
 */
export function startLandingThreadsAhead(): Promise<void> {
  return startLandingThreads(Math.max(0, DEFAULTS.workers - 1));
}

// --- Temporal context, optional so scripts and tests can call the activity directly ------------------

function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

// --- the activity ------------------------------------------------------------------------------------

export function createLandActivities(deps: ActivityDeps, tuning: LandTuning = {}) {
  const { config, pool, db } = deps;
  const settings = { ...DEFAULTS, ...tuning };

  async function land(input: LandEventsInput): Promise<LandEventsOutput> {
    const ctx = activityContext();
    const topic = config.kafkaTopic;
    const lock = await acquireLandingLock(pool, topic, () => ctx?.heartbeat({ waitingForLock: true }));
    try {
      const lake = lakeOf(config);
      await removeDebris(db, lake);
      const plans = await planPartitions(config, topic, await committedOffsets(db, topic));
      const now = (tuning.now ?? (() => new Date()))();
      const committer = new Committer(db, topic, plans, settings.beforeCommit);
      const maxRecords = input.maxRecords ?? Number.POSITIVE_INFINITY;
      let lastBeat = 0;
      let uncommitted = 0;
      const onProgress = (): void => {
        if (ctx === null || Date.now() - lastBeat < 2000) return;
        lastBeat = Date.now();
        if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
        ctx.heartbeat({ recordsCommitted: committer.out.recordsRead, recordsUncommitted: uncommitted });
      };
      const groups = workerGroups(plans, settings.workers, maxRecords);
      const tuned: LandingTuning = {
        commitEvery: settings.commitEvery,
        maxRowsPerFile: settings.maxRowsPerFile,
        maxBufferedRows: settings.maxBufferedRows,
        maxBufferedBytes: settings.maxBufferedBytes,
        workers: settings.workers,
        requestTimeoutMs: settings.requestTimeoutMs,
      };
      if (groups === null) {
        const landing = new Landing(lake, topic, plans, tuned, now.getTime(), (chunk) => committer.commit(chunk));
        await consume({
          kafka: config,
          requestTimeoutMs: settings.requestTimeoutMs,
          topic,
          plans,
          landing,
          maxRecords,
          commitEvery: settings.commitEvery,
          onProgress: () => {
            uncommitted = landing.uncommitted;
            onProgress();
          },
        });
      } else {
        // each worker buffers and commits in proportion to its share of the partitions, so that memory stays as bounded
        // as a single-threaded landing's (each worker also holds its own heap and Parquet writer)
        const share: LandingTuning = {
          ...tuned,
          commitEvery: Math.max(1, Math.ceil(settings.commitEvery / groups.length)),
          maxBufferedRows: Math.max(1, Math.ceil(settings.maxBufferedRows / groups.length)),
          maxBufferedBytes: Math.max(1, Math.ceil(settings.maxBufferedBytes / groups.length)),
          maxRowsPerFile: Math.max(
            1,
            Math.min(settings.maxRowsPerFile, Math.ceil(settings.maxBufferedRows / groups.length)),
          ),
        };
        await landInWorkers(
          groups,
          {
            kafka: kafkaConnection(config),
            topic,
            lake: { lakeDir: config.lakeDir, lakeS3: config.lakeS3 },
            tuning: share,
            nowMs: now.getTime(),
          },
          committer,
          (n) => {
            uncommitted = n;
            onProgress();
          },
          settings.waitForWorkers,
        );
      }
      return committer.out;
    } finally {
      await releaseLandingLock(lock, topic);
    }
  }

  return {
    /**
     * Lands everything new in the topic (read_committed, up to the last stable offsets seen at its start) into the
     * lake: valid events under events/dt=…, rejected records with their reason under dead_letter/dt=…. Grain: one
     * delivered Kafka record → one lake row (transaction markers and aborted records are passed over). Idempotent: offsets and files commit together, so a retry resumes after the last commit, lands
     * nothing twice, and removes the files of an interrupted attempt; a second landing with nothing new writes nothing.
     */
    async landEvents(input: LandEventsInput = {}): Promise<LandEventsOutput> {
      if (input.run === undefined || input.date === undefined) return land(input);
      const key = { workflowId: input.run.workflowId, runId: input.run.runId, date: input.date, step: 'land' };
      const result = await recordStep(db, key, async () => {
        const output = await land(input);
        return {
          rowsRead: output.recordsRead,
          rowsInserted: output.recordsLanded,
          details: {
            deadLettered: output.recordsDeadLettered,
            files: output.files,
            bytes: output.bytes,
            reloadDates: output.reloadDates,
          },
          output,
        };
      });
      return result.output;
    },
  };
}
