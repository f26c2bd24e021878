import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { Kafka, logLevel } from 'kafkajs';
import { sql } from 'kysely';
import type pg from 'pg';
import { MAX_FUTURE_MS, parseEvent } from '../lib/events';
import { type FetchedPartition, PartitionReader } from '../lib/kafka-wire';
import {
  DeadLetterRows,
  EventRows,
  LAKE_AREAS,
  type LakeArea,
  lakeFilePath,
  toParquet,
  writeLakeFile,
} from '../lib/lake';
import { tryLockLanding, unlockLanding } from '../lib/locks';
import { recordStep } from '../lib/runs';
import type { Db } from '../warehouse/db';
import type { ActivityDeps, RunRef } from './deps';

/**
 * Landing: Kafka → lake, exactly once with respect to Kafka offsets.
 * Files are written under a temporary name and renamed; then one PostgreSQL transaction records them in
 * ops.lake_files and advances ops.kafka_offsets. Anything in the lake the manifest does not know is debris of an
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

export interface LandDateCounts {
  date: string;
  landed: number;
  deadLettered: number;
  files: number;
  bytes: number;
}

export interface LandEventsOutput {
  recordsRead: number;
  recordsLanded: number;
  recordsDeadLettered: number;
  files: number;
  bytes: number;
  perDate: LandDateCounts[];
  /** Dates already loaded into the warehouse that received records: marked needs_reload in ops.date_loads. */
  reloadDates: string[];
}

/** A file written to the lake and not yet committed. */
export interface WrittenFile {
  path: string;
  area: LakeArea;
  dt: string;
  partition: number;
  firstOffset: number;
  lastOffset: number;
  rows: number;
  bytes: number;
}

/** Knobs for tests and benchmarks; the defaults are what production runs with. */
export interface LandTuning {
  /** Commit (files + offsets) after about this many records, so a long landing makes durable progress. */
  commitEvery?: number;
  /** Row cap of one Parquet file; bounds the memory of writers and readers. */
  maxRowsPerFile?: number;
  /** Rows buffered across all open files before the largest is written early; bounds the landing's memory. */
  maxBufferedRows?: number;
  /** Called after a chunk's files are renamed into place, before its transaction: tests throw here to simulate a crash. */
  beforeCommit?: (files: WrittenFile[]) => void | Promise<void>;
  /** The clock that bounds event_time in the future. */
  now?: () => Date;
  /**
   * Worker threads that land partitions in parallel, each owning a share of them (fetch, validate, write Parquet);
   * the activity's thread commits their chunks. 0 or 1 lands in the activity's thread, as do small landings and
   * landings capped by maxRecords.
   */
  workers?: number;
}

const DEFAULTS = { commitEvery: 500_000, maxRowsPerFile: 100_000, maxBufferedRows: 150_000, workers: 2 };
/** Below this many records to land, starting worker threads costs more than it saves. */
const MIN_PARALLEL_RECORDS = 20_000;
const FETCH = { maxBytes: 8 << 20, maxBytesPerPartition: 2 << 20, maxWaitMs: 250 };
const EMPTY = Buffer.alloc(0);

// --- Temporal context, optional so scripts and tests can call the activity directly ------------------

function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

// --- ops bookkeeping ---------------------------------------------------------------------------------

/** Holds the landing lock of a topic for the whole landing: one landing at a time may touch the lake and offsets. */
async function acquireLandingLock(pool: pg.Pool, topic: string, onWait: () => void): Promise<pg.PoolClient> {
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

async function releaseLandingLock(client: pg.PoolClient, topic: string): Promise<void> {
  try {
    await unlockLanding(client, topic);
    client.release();
  } catch (err) {
    client.release(err as Error); // the session (and its lock) ends with the discarded connection
  }
}

/** Removes lake files (and temp files) that ops.lake_files does not list. Returns how many were removed. */
export async function removeDebris(db: Db, lakeDir: string): Promise<number> {
  const found: string[] = [];
  for (const area of LAKE_AREAS) {
    const areaDir = path.join(lakeDir, area);
    const partitions = await readdir(areaDir, { withFileTypes: true }).catch(() => []);
    for (const p of partitions) {
      if (!p.isDirectory()) continue;
      for (const f of await readdir(path.join(areaDir, p.name))) found.push(`${area}/${p.name}/${f}`);
    }
  }
  const known = new Set<string>();
  for (let i = 0; i < found.length; i += 5000) {
    const rows = await db
      .selectFrom('ops.lake_files')
      .select('path')
      .where('path', 'in', found.slice(i, i + 5000))
      .execute();
    for (const r of rows) known.add(r.path);
  }
  const debris = found.filter((f) => !known.has(f));
  for (const f of debris) await rm(path.join(lakeDir, f), { force: true });
  return debris.length;
}

async function committedOffsets(db: Db, topic: string): Promise<Map<number, number>> {
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
  /** High watermark at the landing's start: land up to, not including, this offset. */
  end: number;
}

async function planPartitions(kafka: Kafka, topic: string, committed: Map<number, number>): Promise<PartitionPlan[]> {
  const admin = kafka.admin();
  await admin.connect();
  let offsets: { partition: number; high: string; low: string }[];
  try {
    offsets = await admin.fetchTopicOffsets(topic);
  } catch (err) {
    throw new Error(
      `cannot read the offsets of Kafka topic "${topic}": does it exist (make up creates "events"), and is KAFKA_BROKERS right?`,
      {
        cause: err,
      },
    );
  } finally {
    await admin.disconnect();
  }
  return offsets
    .map((o) => {
      const start = committed.get(o.partition) ?? 0;
      const low = Number(o.low);
      const end = Number(o.high);
      if (start > end) {
        throw ApplicationFailure.nonRetryable(
          `ops.kafka_offsets says partition ${o.partition} of "${topic}" is landed up to ${start}, but the broker's high watermark is ${end}: the topic was recreated. Check the lake, then delete the topic's rows from ops.kafka_offsets to land it again from the start.`,
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

// --- the landing of one run --------------------------------------------------------------------------

type Buffer_ = EventRows | DeadLetterRows;

/** One chunk to commit: the files written since the last commit and the offsets to advance to. */
export interface ChunkCommit {
  files: WrittenFile[];
  /** [partition, next offset] for each partition that moved past its committed offset. */
  advanced: [number, number][];
  read: number;
  landed: number;
  dead: number;
}

export type LandingTuning = Required<Omit<LandTuning, 'beforeCommit' | 'now'>>;

/**
 * The records side of a landing over some partitions: open buffers, files written since the last commit, counts.
 * Runs in the activity's thread or in a landing worker thread; `commitChunk` records a chunk in PostgreSQL
 * (in the activity's thread, see Committer) and resolves once it is committed.
 */
export class Landing {
  private readonly buffers = new Map<string, { area: LakeArea; dt: string; rows: Buffer_ }>();
  private buffered = 0;
  private pending: WrittenFile[] = [];
  private chunkRead = 0;
  private chunkLanded = 0;
  private chunkDead = 0;
  private readonly dayNames = new Map<number, string>();
  /** Next offset to land per partition, as far as read. */
  readonly next = new Map<number, number>();
  /** Next offset per partition as committed in ops. */
  private readonly committed = new Map<number, number>();
  private readonly now: Date;

  constructor(
    private readonly lakeDir: string,
    private readonly topic: string,
    plans: PartitionPlan[],
    private readonly tuning: LandingTuning,
    private readonly nowMs: number,
    private readonly commitChunk: (chunk: ChunkCommit) => Promise<void>,
  ) {
    this.now = new Date(nowMs);
    for (const p of plans) {
      this.next.set(p.partition, p.start);
      this.committed.set(p.partition, p.start);
    }
  }

  get uncommitted(): number {
    return this.chunkRead;
  }

  private day(ms: number): string {
    const d = Math.floor(ms / 86_400_000);
    let name = this.dayNames.get(d);
    if (name === undefined) {
      name = new Date(d * 86_400_000).toISOString().slice(0, 10);
      this.dayNames.set(d, name);
    }
    return name;
  }

  private buffer(area: LakeArea, dt: string, partition: number): Buffer_ {
    const key = `${area}|${dt}|${partition}`;
    let b = this.buffers.get(key);
    if (b === undefined) {
      const rows = area === 'events' ? new EventRows(this.topic, partition) : new DeadLetterRows(this.topic, partition);
      b = { area, dt, rows };
      this.buffers.set(key, b);
    }
    return b.rows;
  }

  /** Validates one record and buffers it; returns the buffer when it must be written now. */
  add(partition: number, offset: number, timestampMs: number, value: Buffer): Buffer_ | null {
    const parsed = parseEvent(value, this.now);
    let target: Buffer_;
    if (parsed.ok) {
      target = this.buffer('events', this.day(parsed.event.event_time_us / 1000), partition);
      (target as EventRows).push(parsed.event, offset, timestampMs);
      this.chunkLanded++;
    } else {
      const timeMs = parsed.eventTime?.getTime() ?? null;
      const usable = timeMs !== null && timeMs <= this.nowMs + MAX_FUTURE_MS;
      target = this.buffer('dead_letter', this.day(usable ? timeMs : timestampMs), partition);
      (target as DeadLetterRows).push(parsed.reason, value, offset, timestampMs, parsed.eventId ?? null, timeMs);
      this.chunkDead++;
    }
    this.chunkRead++;
    this.buffered++;
    this.next.set(partition, offset + 1);
    if (target.length >= this.tuning.maxRowsPerFile) return target;
    if (this.buffered >= this.tuning.maxBufferedRows) return this.largest();
    return null;
  }

  private largest(): Buffer_ {
    let best: Buffer_ | null = null;
    for (const b of this.buffers.values()) if (best === null || b.rows.length > best.length) best = b.rows;
    return best as Buffer_;
  }

  /** Writes one buffer as a Parquet file (temp name, fsync, rename) and forgets its rows. */
  async flush(rows: Buffer_): Promise<void> {
    for (const [key, b] of this.buffers) {
      if (b.rows !== rows) continue;
      this.buffers.delete(key);
      const relPath = lakeFilePath(b.area, b.dt, rows.partition, rows.firstOffset, rows.lastOffset);
      const bytes = toParquet(rows.toTable());
      await writeLakeFile(this.lakeDir, relPath, bytes);
      this.buffered -= rows.length;
      this.pending.push({
        path: relPath,
        area: b.area,
        dt: b.dt,
        partition: rows.partition,
        firstOffset: rows.firstOffset,
        lastOffset: rows.lastOffset,
        rows: rows.length,
        bytes: bytes.length,
      });
      return;
    }
  }

  /**
   * Writes every open buffer, then has the files recorded and the offsets advanced in one transaction.
   * `ends` moves a partition's offset past what was read when it was read to the end (e.g. over a gap).
   */
  async commit(ends: Map<number, number> = new Map()): Promise<void> {
    for (const b of [...this.buffers.values()]) await this.flush(b.rows);
    const advanced = [...this.next]
      .map(([p, n]) => [p, Math.max(n, ends.get(p) ?? n)] as [number, number])
      .filter(([p, n]) => n > (this.committed.get(p) ?? 0));
    if (advanced.length === 0) return;
    await this.commitChunk({
      files: this.pending,
      advanced,
      read: this.chunkRead,
      landed: this.chunkLanded,
      dead: this.chunkDead,
    });
    for (const [p, n] of advanced) this.committed.set(p, n);
    this.pending = [];
    this.chunkRead = this.chunkLanded = this.chunkDead = 0;
  }
}

/**
 * The PostgreSQL side of a landing, in the activity's thread: records each chunk (files + offsets + reload marks)
 * in one transaction, one chunk at a time, and sums up the output.
 */
class Committer {
  private landingId: number | null = null;
  private readonly startedAt = new Date();
  /** Next offset per partition as committed in ops. */
  private readonly committed = new Map<number, number>();
  private readonly perDate = new Map<string, LandDateCounts>();
  private readonly reload = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  readonly out: LandEventsOutput = {
    recordsRead: 0,
    recordsLanded: 0,
    recordsDeadLettered: 0,
    files: 0,
    bytes: 0,
    perDate: [],
    reloadDates: [],
  };

  constructor(
    private readonly db: Db,
    private readonly topic: string,
    plans: PartitionPlan[],
    private readonly beforeCommit: LandTuning['beforeCommit'],
  ) {
    for (const p of plans) this.committed.set(p.partition, p.start);
  }

  /** Commits chunks one after the other, whichever thread they come from. */
  commit(chunk: ChunkCommit): Promise<void> {
    const run = this.queue.then(() => this.commitNow(chunk));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async commitNow(chunk: ChunkCommit): Promise<void> {
    await this.beforeCommit?.(chunk.files);
    const marked = await this.db.transaction().execute(async (trx) => {
      const landingId = await this.recordLanding(trx, chunk);
      if (chunk.files.length > 0)
        await trx
          .insertInto('ops.lake_files')
          .values(chunk.files.map((f) => this.manifestRow(f, landingId)))
          .execute();
      for (const [partition, nextOffset] of chunk.advanced) await this.advanceOffset(trx, partition, nextOffset);
      return this.markReloads(trx, landingId, chunk.files);
    });
    for (const [p, n] of chunk.advanced) this.committed.set(p, n);
    this.count(chunk, marked);
  }

  private manifestRow(f: WrittenFile, landingId: number) {
    return {
      landing_id: landingId,
      path: f.path,
      area: f.area,
      dt: f.dt,
      topic: this.topic,
      partition: f.partition,
      first_offset: f.firstOffset,
      last_offset: f.lastOffset,
      row_count: f.rows,
      bytes: f.bytes,
    };
  }

  /** One ops.landings row per landing run, its counts growing with each committed chunk. */
  private async recordLanding(trx: Db, chunk: ChunkCommit): Promise<number> {
    if (this.landingId === null) {
      const row = await trx
        .insertInto('ops.landings')
        .values({
          topic: this.topic,
          started_at: this.startedAt,
          records_read: chunk.read,
          records_landed: chunk.landed,
          records_dead_lettered: chunk.dead,
        })
        .returning('landing_id')
        .executeTakeFirstOrThrow();
      return Number(row.landing_id);
    }
    await trx
      .updateTable('ops.landings')
      .set({
        records_read: sql`records_read + ${chunk.read}`,
        records_landed: sql`records_landed + ${chunk.landed}`,
        records_dead_lettered: sql`records_dead_lettered + ${chunk.dead}`,
        committed_at: sql`now()`,
      })
      .where(sql<boolean>`landing_id = ${this.landingId}`)
      .execute();
    return this.landingId;
  }

  /** Advances a partition's offset only from where this landing found it: a concurrent landing makes it fail. */
  private async advanceOffset(trx: Db, partition: number, nextOffset: number): Promise<void> {
    const expected = this.committed.get(partition) ?? 0;
    const result = await trx
      .insertInto('ops.kafka_offsets')
      .values({ topic: this.topic, partition, next_offset: nextOffset })
      .onConflict((oc) =>
        oc
          .columns(['topic', 'partition'])
          .doUpdateSet({ next_offset: nextOffset, updated_at: sql`now()` })
          .where('ops.kafka_offsets.next_offset', '=', String(expected)),
      )
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0) !== 1) {
      throw new Error(
        `partition ${partition} of "${this.topic}" moved from offset ${expected} during this landing: another landing ran concurrently; this one rolls back and its files are removed by the next landing`,
      );
    }
  }

  /** Dates already loaded that receive records in this chunk are marked for re-load. */
  private async markReloads(trx: Db, landingId: number, files: WrittenFile[]): Promise<string[]> {
    const byDate = new Map<string, { landed: number; dead: number }>();
    for (const f of files) {
      const c = byDate.get(f.dt) ?? { landed: 0, dead: 0 };
      if (f.area === 'events') c.landed += f.rows;
      else c.dead += f.rows;
      byDate.set(f.dt, c);
    }
    const marked: string[] = [];
    for (const [dt, c] of byDate) {
      const rows = await trx
        .updateTable('ops.date_loads')
        .set({
          needs_reload: true,
          reload_reason: `${c.landed} late records landed (${c.dead} dead-lettered) by landing ${landingId}`,
          marked_at: new Date(),
        })
        .where('dt', '=', dt)
        .where('last_loaded_at', 'is not', null)
        .returning('dt')
        .execute();
      if (rows.length > 0) marked.push(dt);
    }
    this.landingId = landingId;
    return marked;
  }

  /** Adds the committed chunk to the output and starts a new chunk. */
  private count(chunk: ChunkCommit, marked: string[]): void {
    const o = this.out;
    o.recordsRead += chunk.read;
    o.recordsLanded += chunk.landed;
    o.recordsDeadLettered += chunk.dead;
    for (const f of chunk.files) {
      o.files++;
      o.bytes += f.bytes;
      const d = this.perDate.get(f.dt) ?? { date: f.dt, landed: 0, deadLettered: 0, files: 0, bytes: 0 };
      if (f.area === 'events') d.landed += f.rows;
      else d.deadLettered += f.rows;
      d.files++;
      d.bytes += f.bytes;
      this.perDate.set(f.dt, d);
    }
    for (const dt of marked) this.reload.add(dt);
    o.perDate = [...this.perDate.values()].sort((a, b) => a.date.localeCompare(b.date));
    o.reloadDates = [...this.reload].sort();
  }
}

// --- reading Kafka -----------------------------------------------------------------------------------

export interface ConsumeArgs {
  brokers: string[];
  topic: string;
  plans: PartitionPlan[];
  landing: Landing;
  maxRecords: number;
  commitEvery: number;
  onProgress: () => void;
}

/**
 * Reads every planned partition from its start to its end offset through `landing`, committing in chunks.
 * Fetches straight from the partition leaders (lib/kafka-wire), no consumer group: offsets live in ops. The next
 * fetch of a leader is sent before the records of the previous one are processed, so the broker works meanwhile.
 */
export async function consume(args: ConsumeArgs): Promise<void> {
  const { brokers, topic, plans, landing, maxRecords, commitEvery, onProgress } = args;
  const ends = new Map(plans.map((p) => [p.partition, p.end]));
  const open = new Set(plans.filter((p) => p.start < p.end).map((p) => p.partition));
  if (open.size === 0 || maxRecords <= 0) return;
  const position = new Map(plans.map((p) => [p.partition, p.start]));
  let read = 0;
  const reader = await PartitionReader.connect(brokers, topic, [...open]);
  const pending = new Set<Promise<unknown>>();
  try {
    const leaders = reader.groups([...open]).map((g) => ({ ...g, next: null as Promise<FetchedPartition[]> | null }));
    const fire = (g: (typeof leaders)[number]): void => {
      const positions = g.partitions
        .filter((p) => open.has(p))
        .map((p) => ({ partition: p, offset: position.get(p) ?? 0 }));
      if (positions.length === 0) {
        g.next = null;
        return;
      }
      const next = reader.fetch(g.connection, positions, FETCH);
      // awaited below, or abandoned when the landing stops early; held only until settled (it holds the records)
      const settled: Promise<unknown> = next.then(
        () => pending.delete(settled),
        () => pending.delete(settled),
      );
      pending.add(settled);
      g.next = next;
    };
    for (const g of leaders) fire(g);
    while (open.size > 0 && read < maxRecords) {
      for (const g of leaders) {
        if (g.next === null) continue;
        const fetched = await g.next;
        for (const f of fetched) {
          position.set(f.partition, Math.max(position.get(f.partition) ?? 0, f.nextOffset));
          // done when read to the end; the batch's last offset also covers a gap (e.g. transaction markers) at the end
          if (f.nextOffset >= (ends.get(f.partition) ?? 0)) open.delete(f.partition);
        }
        fire(g);
        for (const f of fetched) {
          const partition = f.partition;
          const end = ends.get(partition) ?? 0;
          for (const r of f.records) {
            if (r.offset < (landing.next.get(partition) ?? 0) || r.offset >= end) continue;
            const full = landing.add(partition, r.offset, r.timestampMs, r.value ?? EMPTY);
            if (full !== null) await landing.flush(full);
            if (++read >= maxRecords) break;
            if (landing.uncommitted >= commitEvery) await landing.commit();
          }
          if (read >= maxRecords) break;
        }
        onProgress();
        if (read >= maxRecords) break;
      }
    }
  } finally {
    reader.close();
    await Promise.all(pending);
  }
  // partitions read to their end are committed at their end (past any gap of compacted or aborted records)
  await landing.commit(read >= maxRecords ? new Map() : ends);
}

// --- landing in worker threads ------------------------------------------------------------------------

/** What a landing worker is given (workerData); its partitions are `plans`. */
export interface LandWorkerData {
  brokers: string[];
  topic: string;
  lakeDir: string;
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
function workerGroups(plans: PartitionPlan[], workers: number, maxRecords: number): PartitionPlan[][] | null {
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

/**
 * The worker's entry, beside this file: compiled (dist/activities/land-worker.js) when this process runs from dist/;
 * the TypeScript source through tsx's CommonJS hook under vitest or `node --import tsx` (development only).
 */
const WORKER_SOURCE = __filename.endsWith('.js')
  ? `require(${JSON.stringify(path.join(__dirname, 'land-worker.js'))});`
  : `require('tsx/cjs'); require(${JSON.stringify(path.join(__dirname, 'land-worker.ts'))});`;

/**
 * Lands `groups` of partitions in parallel: the first in this thread, the others in worker threads
 * (activities/land-worker.ts). Each group writes its files
 * and sends each chunk (files + offsets) here, where `committer` records it in PostgreSQL one chunk at a time, so
 * exactly-once holds per partition as in a single-threaded landing. Any failure stops every worker; files written
 * and not committed are debris that the next landing removes.
 */
async function landInWorkers(
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
      const landing = new Landing(shared.lakeDir, shared.topic, groups[0], shared.tuning, shared.nowMs, (chunk) =>
        committer.commit(chunk),
      );
      local = consume({
        brokers: shared.brokers,
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
        const w = new Worker(WORKER_SOURCE, { eval: true, workerData: data });
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

// --- the activity ------------------------------------------------------------------------------------

export function createLandActivities(deps: ActivityDeps, tuning: LandTuning = {}) {
  const { config, pool, db } = deps;
  const settings = { ...DEFAULTS, ...tuning };

  async function land(input: LandEventsInput): Promise<LandEventsOutput> {
    const ctx = activityContext();
    const topic = config.kafkaTopic;
    const kafka = new Kafka({ clientId: 'nightshift-land', brokers: config.kafkaBrokers, logLevel: logLevel.ERROR });
    const lock = await acquireLandingLock(pool, topic, () => ctx?.heartbeat({ waitingForLock: true }));
    try {
      await removeDebris(db, config.lakeDir);
      const plans = await planPartitions(kafka, topic, await committedOffsets(db, topic));
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
        workers: settings.workers,
      };
      if (groups === null) {
        const landing = new Landing(config.lakeDir, topic, plans, tuned, now.getTime(), (chunk) =>
          committer.commit(chunk),
        );
        await consume({
          brokers: config.kafkaBrokers,
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
          maxRowsPerFile: Math.max(
            1,
            Math.min(settings.maxRowsPerFile, Math.ceil(settings.maxBufferedRows / groups.length)),
          ),
        };
        await landInWorkers(
          groups,
          { brokers: config.kafkaBrokers, topic, lakeDir: config.lakeDir, tuning: share, nowMs: now.getTime() },
          committer,
          (n) => {
            uncommitted = n;
            onProgress();
          },
        );
      }
      return committer.out;
    } finally {
      await releaseLandingLock(lock, topic);
    }
  }

  return {
    /**
     * Lands everything new in the topic (up to the high watermarks seen at its start) into the lake: valid events
     * under events/dt=…, rejected records with their reason under dead_letter/dt=…. Grain: one Kafka record → one
     * lake row. Idempotent: offsets and files commit together, so a retry resumes after the last commit, lands
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
