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

/**
 * The records side of a landing over some partitions: open buffers, files written since the last commit, counts.
 * Runs in the activity's thread or in a landing worker thread; `commitChunk` records a chunk in PostgreSQL
 * (in the activity's thread, see Committer) and resolves once it is committed.
 */
export class Landing {
  private readonly buffers = new Map<string, { area: LakeArea; dt: string; rows: Buffer_; bytes: number }>();
  private buffered = 0;
  private bufferedBytes = 0;
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
    private readonly lake: LakeLocation,
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

  private buffer(area: LakeArea, dt: string, partition: number, bytes: number): Buffer_ {
    const key = `${area}|${dt}|${partition}`;
    let b = this.buffers.get(key);
    if (b === undefined) {
      const rows = area === 'events' ? new EventRows(this.topic, partition) : new DeadLetterRows(this.topic, partition);
      b = { area, dt, rows, bytes: 0 };
      this.buffers.set(key, b);
    }
    b.bytes += bytes;
    return b.rows;
  }

  /** Validates one record and buffers it; returns the buffer when it must be written now. */
  add(partition: number, offset: number, timestampMs: number, value: Buffer): Buffer_ | null {
    const parsed = parseEvent(value, this.now);
    // what a row holds is at most its record's bytes (its text, or the raw record of a dead letter) and some numbers
    const bytes = value.length + ROW_OVERHEAD_BYTES;
    let target: Buffer_;
    if (parsed.ok) {
      target = this.buffer('events', this.day(parsed.event.event_time_us / 1000), partition, bytes);
      (target as EventRows).push(parsed.event, offset, timestampMs);
      this.chunkLanded++;
    } else {
      const timeMs = parsed.eventTime?.getTime() ?? null;
      const usable = timeMs !== null && timeMs <= this.nowMs + MAX_FUTURE_MS;
      target = this.buffer('dead_letter', this.day(usable ? timeMs : timestampMs), partition, bytes);
      (target as DeadLetterRows).push(parsed.reason, value, offset, timestampMs, parsed.eventId ?? null, timeMs);
      this.chunkDead++;
    }
    this.chunkRead++;
    this.buffered++;
    this.bufferedBytes += bytes;
    this.next.set(partition, offset + 1);
    if (target.length >= this.tuning.maxRowsPerFile) return target;
    if (this.buffered >= this.tuning.maxBufferedRows || this.bufferedBytes >= this.tuning.maxBufferedBytes)
      return this.largest();
    return null;
  }

  /** The buffer holding the most bytes. */
  private largest(): Buffer_ {
    let best: { rows: Buffer_; bytes: number } | null = null;
    for (const b of this.buffers.values()) if (best === null || b.bytes > best.bytes) best = b;
    return (best as { rows: Buffer_ }).rows;
  }

  /** Writes one buffer as a Parquet file (locally temp name, fsync, rename; on S3 its final key) and forgets its rows. */
  async flush(rows: Buffer_): Promise<void> {
    for (const [key, b] of this.buffers) {
      if (b.rows !== rows) continue;
      this.buffers.delete(key);
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
