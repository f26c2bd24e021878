import { EventScan } from '../../lib/event-bytes';
import { MAX_FUTURE_MS, parseEvent } from '../../lib/events';
import { DeadLetterRows, EventRows, type LakeArea, lakeFilePath, toParquet, writeLakeFile } from '../../lib/lake';
import type { LakeLocation } from '../../lib/lake-store';
import type { PartitionPlan } from './plan';

/** The records side of a landing: validation, per-file row buffers, Parquet files written and not yet committed. */

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

/** The landing's knobs (see LandTuning in activities/land.ts). */
export interface LandingTuning {
  commitEvery: number;
  maxRowsPerFile: number;
  maxBufferedRows: number;
  maxBufferedBytes: number;
  workers: number;
  requestTimeoutMs: number;
}

type Buffer_ = EventRows | DeadLetterRows;

/** A buffered row's bytes beyond its record's: offsets, times, the amount, validity bits. */
const ROW_OVERHEAD_BYTES = 64;

/** One chunk to commit: the files written since the last commit and the offsets to advance to. */
export interface ChunkCommit {
  files: WrittenFile[];
  /** [partition, next offset] for each partition that moved past its committed offset. */
  advanced: [number, number][];
  read: number;
  landed: number;
  dead: number;
}

/** A buffer of rows bound for one file: one area, date and partition. */
interface OpenFile {
  area: LakeArea;
  dt: string;
  rows: Buffer_;
  bytes: number;
}

/** Where a partition stands in a landing: offsets, open files by UTC day, records read since its last commit. */
interface PartitionState {
  /** Next offset to land, as far as read. */
  next: number;
  /** Next offset as committed in ops. */
  committed: number;
  /** The plan's end: land up to, not including, this offset. */
  end: number;
  events: Map<number, OpenFile>;
  deadLetters: Map<number, OpenFile>;
  read: number;
  landed: number;
  dead: number;
}

/**
 * The records side of a landing over some partitions: open buffers, files written since the last commit, counts.
 * Runs in the activity's thread or in a landing worker thread; `commitChunk` records a chunk in PostgreSQL
 * (in the activity's thread, see Committer) and resolves once it is committed. `release` commits some partitions
 * and gives them up, for a worker thread to land the rest of them.
 */
export class Landing {
  private readonly files = new Map<Buffer_, OpenFile>();
  private readonly partitions = new Map<number, PartitionState>();
  private buffered = 0;
  private bufferedBytes = 0;
  private pending: WrittenFile[] = [];
  private chunkRead = 0;
  private totalRead = 0;
  /** The transaction of the last chunk handed over by commitSoon, until the next commit awaits it. */
  private inFlight: Promise<void> | null = null;
  private readonly dayNames = new Map<number, string>();
  private readonly now: Date;
  /** The fast path's scan, reused record after record. */
  private readonly scan = new EventScan();

  constructor(
    private readonly lake: LakeLocation,
    private readonly topic: string,
    plans: PartitionPlan[],
    private readonly tuning: LandingTuning,
    private readonly nowMs: number,
    private readonly commitChunk: (chunk: ChunkCommit) => Promise<void>,
  ) {
    this.now = new Date(nowMs);
    for (const p of plans) {
      this.partitions.set(p.partition, {
        next: p.start,
        committed: p.start,
        end: p.end,
        events: new Map(),
        deadLetters: new Map(),
        read: 0,
        landed: 0,
        dead: 0,
      });
    }
  }

  /** Records read and not yet committed. */
  get uncommitted(): number {
    return this.chunkRead;
  }

  /** Records read by this landing in all. */
  get recordsRead(): number {
    return this.totalRead;
  }

  /** The next offset to land of a partition this landing holds (as far as read), or null. */
  nextOffset(partition: number): number | null {
    return this.partitions.get(partition)?.next ?? null;
  }

  /** What is left to land of the partitions this landing holds, from the next offset to read. */
  remaining(): PartitionPlan[] {
    return [...this.partitions].map(([partition, s]) => ({ partition, start: s.next, end: s.end }));
  }

  private day(d: number): string {
    let name = this.dayNames.get(d);
    if (name === undefined) {
      name = new Date(d * 86_400_000).toISOString().slice(0, 10);
      this.dayNames.set(d, name);
    }
    return name;
  }

  private buffer(state: PartitionState, area: LakeArea, ms: number, partition: number, bytes: number): Buffer_ {
    const d = Math.floor(ms / 86_400_000);
    const byDay = area === 'events' ? state.events : state.deadLetters;
    let b = byDay.get(d);
    if (b === undefined) {
      const rows = area === 'events' ? new EventRows(this.topic, partition) : new DeadLetterRows(this.topic, partition);
      b = { area, dt: this.day(d), rows, bytes: 0 };
      byDay.set(d, b);
      this.files.set(rows, b);
    }
    b.bytes += bytes;
    return b.rows;
  }

  /** Validates one record and buffers it; returns the buffer when it must be written now. */
  add(partition: number, offset: number, timestampMs: number, value: Buffer): Buffer_ | null {
    const state = this.partitions.get(partition);
    if (state === undefined) throw new Error(`partition ${partition} is not part of this landing`);
    // what a row holds is at most its record's bytes (its text, or the raw record of a dead letter) and some numbers
    const bytes = value.length + ROW_OVERHEAD_BYTES;
    let target: Buffer_;
    const scan = this.scan;
    if (scan.read(value, this.nowMs)) {
      target = this.buffer(state, 'events', scan.eventTimeUs / 1000, partition, bytes);
      (target as EventRows).pushScanned(value, scan, offset, timestampMs);
      state.landed++;
      return this.added(state, offset, bytes, target);
    }
    const parsed = parseEvent(value, this.now);
    if (parsed.ok) {
      target = this.buffer(state, 'events', parsed.event.event_time_us / 1000, partition, bytes);
      (target as EventRows).push(parsed.event, offset, timestampMs);
      state.landed++;
    } else {
      const timeMs = parsed.eventTime?.getTime() ?? null;
      const usable = timeMs !== null && timeMs <= this.nowMs + MAX_FUTURE_MS;
      target = this.buffer(state, 'dead_letter', usable ? timeMs : timestampMs, partition, bytes);
      (target as DeadLetterRows).push(parsed.reason, value, offset, timestampMs, parsed.eventId ?? null, timeMs);
      state.dead++;
    }
    return this.added(state, offset, bytes, target);
  }

  /** Counts a record buffered in `target`; returns the buffer to write now, if any. */
  private added(state: PartitionState, offset: number, bytes: number, target: Buffer_): Buffer_ | null {
    state.read++;
    this.chunkRead++;
    this.totalRead++;
    this.buffered++;
    this.bufferedBytes += bytes;
    state.next = offset + 1;
    if (target.length >= this.tuning.maxRowsPerFile) return target;
    if (this.buffered >= this.tuning.maxBufferedRows || this.bufferedBytes >= this.tuning.maxBufferedBytes)
      return this.largest();
    return null;
  }

  /** The buffer holding the most bytes. */
  private largest(): Buffer_ {
    let best: OpenFile | null = null;
    for (const b of this.files.values()) if (best === null || b.bytes > best.bytes) best = b;
    return (best as OpenFile).rows;
  }

  /** Writes one buffer as a Parquet file (locally temp name, fsync, rename; on S3 its final key) and forgets its rows. */
  async flush(rows: Buffer_): Promise<void> {
    const b = this.files.get(rows);
    if (b === undefined) return;
    this.files.delete(rows);
    const state = this.partitions.get(rows.partition) as PartitionState;
    const byDay = b.area === 'events' ? state.events : state.deadLetters;
    for (const [d, f] of byDay) if (f === b) byDay.delete(d);
    const relPath = lakeFilePath(b.area, b.dt, rows.partition, rows.firstOffset, rows.lastOffset);
    const bytes = toParquet(rows.toTable());
    await writeLakeFile(this.lake, relPath, bytes);
    this.buffered -= rows.length;
    this.bufferedBytes -= b.bytes;
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
  }

  /**
   * Writes every open buffer, then has the files recorded and the offsets advanced in one transaction.
   * `ends` moves a partition's offset past what was read when it was read to the end (e.g. over a gap).
   */
  async commit(ends: Map<number, number> = new Map()): Promise<void> {
    await this.commitSome(ends, null, false);
  }

  /**
   * As commit, but returns once the chunk is handed over for its transaction, so that reading goes on meanwhile: at
   * most one chunk is in flight (the next commit waits for it), and its failure fails the next commit.
   */
  async commitSoon(): Promise<void> {
    await this.commitSome(new Map(), null, true);
  }

  /** `only` limits the commit to some partitions: the others keep their buffers and written files for a later one. */
  private async commitSome(
    ends: Map<number, number>,
    only: ReadonlySet<number> | null,
    background: boolean,
  ): Promise<void> {
    const included = (p: number): boolean => only === null || only.has(p);
    for (const b of [...this.files.values()]) if (included(b.rows.partition)) await this.flush(b.rows);
    // chunks commit one at a time and in order
    const previous = this.inFlight;
    this.inFlight = null;
    if (previous !== null) await previous;
    const advanced: [number, number][] = [];
    let read = 0;
    let landed = 0;
    let dead = 0;
    for (const [p, s] of this.partitions) {
      if (!included(p)) continue;
      const n = Math.max(s.next, ends.get(p) ?? s.next);
      if (n > s.committed) advanced.push([p, n]);
      read += s.read;
      landed += s.landed;
      dead += s.dead;
    }
    if (advanced.length === 0) return;
    const files = this.pending.filter((f) => included(f.partition));
    this.pending = this.pending.filter((f) => !included(f.partition));
    for (const [p, s] of this.partitions) {
      if (!included(p)) continue;
      s.read = s.landed = s.dead = 0;
    }
    this.chunkRead -= read;
    const committed = this.commitChunk({ files, advanced, read, landed, dead }).then(() => {
      for (const [p, n] of advanced) {
        const s = this.partitions.get(p);
        if (s !== undefined) s.committed = n;
      }
    });
    if (!background) return committed;
    committed.catch(() => undefined); // awaited by the next commit, which fails with it
    this.inFlight = committed;
  }
  /**
   * Commits `partitions` as far as read and gives them up: returns what is left of them to land (from the committed
   * offset to the plan's end), for another thread's landing to take on.
   */
  async release(partitions: number[]): Promise<PartitionPlan[]> {
    await this.commitSome(new Map(), new Set(partitions), false);
    const plans: PartitionPlan[] = [];
    for (const p of partitions) {
      const s = this.partitions.get(p);
      if (s === undefined) continue;
      plans.push({ partition: p, start: s.committed, end: s.end });
      this.partitions.delete(p);
    }
    return plans;
  }
}
