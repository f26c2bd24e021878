import { execFileSync } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import type pg from 'pg';
import { log } from './measure';

/**
 * Settling the machine before a measured path, as the 24 hours between two daily runs do in production: PostgreSQL
 * writes its dirty buffers out (CHECKPOINT) and the kernel its dirty pages (sync), so a path does not pay for the
 * write-back of what ran before it. On this one machine that is a lot: the Kafka broker's logs, the spools, the lake
 * and the warehouse all share its disk and page cache. Measured at 10M events a day in a steady world: run
 * back to back, day 2 took 1.19 x day 1 (run BC); settled, with the page cache dropped as well, 1.00 x (run BD).
 * Settling also leaves the memory as such a server has it, in use by the page cache (fillFreeMemory), unless
 * --cold, whose point is a page cache emptied.
 */

export type SettleMode = 'off' | 'settle' | 'cold';

export interface SettleReport {
  mode: SettleMode;
  /** Times the machine was settled, and their total seconds (outside every measured stage). */
  count: number;
  seconds: number;
  /** Whether PostgreSQL ran the CHECKPOINTs: false when the role may not (it needs pg_checkpoint or superuser). */
  checkpoint: boolean;
  /**
   * GiB of free memory (MemFree) after each settle, with what it preceded, and the GiB of it the settle filled with
   * page cache first (fillFreeMemory; 0 with --cold); null where /proc/meminfo is unreadable.
   */
  free: { before: string; gib: number | null; filledGiB: number }[];
}

/**
 * MemFree in GiB. On a virtual machine that returns free memory to its host (free page reporting, as here), the
 * first write into such memory costs a fault on the host: 4 GiB written into the page cache took 8.3 s from
 * returned memory against 1.0 s from memory just freed. A path that starts with much memory free pays that in
 * its writes (in a 10M day 1 whose fact partition's CREATE TABLE AS took 15 s, a fifth of the machine's time went
 * to the kernel's copy into new page-cache pages, against a fiftieth on day 2), so the figure goes with each
 * path's timing.
 */
function freeGiB(): number | null {
  try {
    const kib = /^MemFree:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
    return kib === undefined ? null : Number(kib) / 1024 / 1024;
  } catch {
    return null;
  }
}

const DROP_CACHES = '/proc/sys/vm/drop_caches';

const GIB = 1024 ** 3;
/** The free memory a settle leaves (fillFreeMemory): about what day 2 of a 10M run starts with (0.2-0.4 GiB). */
const KEEP_FREE_GIB = 0.5;
const BALLAST_CHUNK = 8 * 1024 * 1024;

export class Settler {
  private count = 0;
  private seconds = 0;
  private checkpoint = true;
  private readonly free: { before: string; gib: number | null; filledGiB: number }[] = [];
  /** Bytes of the ballast file read into the page cache so far. */
  private ballastBytes = 0;

  /** `ballast`: a file of the run's work folder that fillFreeMemory grows (sparse: it takes no disk space). */
  constructor(
    readonly mode: SettleMode,
    private readonly ballast: string,
  ) {}

  /** Fails early, before any event is generated, when --cold cannot drop the page cache (it needs root). */
  static check(mode: SettleMode): void {
    if (mode !== 'cold') return;
    try {
      accessSync(DROP_CACHES, constants.W_OK);
    } catch (err) {
      throw new Error(
        `--cold: cannot write ${DROP_CACHES} (${(err as NodeJS.ErrnoException).code ?? String(err)}); it needs root, or leave out --cold`,
      );
    }
  }

  /** Settles before `what`: CHECKPOINT on `pool`'s server, sync, and with --cold the page cache dropped. */
  async settle(pool: pg.Pool, what: string): Promise<void> {
    if (this.mode === 'off') return;
    const started = performance.now();
    if (this.checkpoint) {
      try {
        await pool.query('checkpoint');
      } catch (err) {
        if ((err as { code?: string }).code !== '42501') throw err;
        this.checkpoint = false;
        log(
          'settle: this role may not run CHECKPOINT, so PostgreSQL is not settled; as a superuser: grant pg_checkpoint to <role>',
        );
      }
    }
    execFileSync('sync');
    if (this.mode === 'cold') writeFileSync(DROP_CACHES, '3');
    const filledGiB = this.mode === 'settle' ? this.fillFreeMemory() : 0;
    const seconds = (performance.now() - started) / 1000;
    this.count += 1;
    this.seconds += seconds;
    const free = freeGiB();
    this.free.push({ before: what, gib: free, filledGiB });
    const filled = filledGiB > 0 ? ` (${filledGiB.toFixed(1)} GiB filled with page cache)` : '';
    log(
      `settle before ${what}: ${seconds.toFixed(2)} s${free === null ? '' : `, ${free.toFixed(1)} GiB of memory free${filled}`}`,
    );
  }

  /**
   * Fills the free memory above KEEP_FREE_GIB with clean page cache, as a server that has run for a day has it: the
   * path's writes then take pages the kernel reclaims, not free memory (freeGiB: on this virtual machine the first
   * write into memory returned to the host costs a fault there). The kernel fills the pages of a sparse file's
   * hole with zeros when it is read, so this writes nothing to disk; reclaiming them costs no write-back either.
   * Returns the GiB read in.
   */
  private fillFreeMemory(): number {
    const free = freeGiB();
    if (free === null) return 0;
    const bytes = Math.floor(((free - KEEP_FREE_GIB) * GIB) / BALLAST_CHUNK) * BALLAST_CHUNK;
    // a few chunks more or less make no difference to a path
    if (bytes < GIB / 4) return 0;
    const from = this.ballastBytes;
    // each fill reads a stretch not read before: earlier ones may still be cached, and re-reading them fills nothing
    const fd = openSync(this.ballast, 'a+');
    try {
      truncateSync(this.ballast, from + bytes);
      const buffer = Buffer.allocUnsafe(BALLAST_CHUNK);
      for (let at = from; at < from + bytes; at += BALLAST_CHUNK) readSync(fd, buffer, 0, BALLAST_CHUNK, at);
    } finally {
      closeSync(fd);
    }
    this.ballastBytes += bytes;
    return bytes / GIB;
  }

  /** Removes the ballast file, and with it its pages from the page cache. */
  close(): void {
    rmSync(this.ballast, { force: true });
  }

  report(): SettleReport {
    return {
      mode: this.mode,
      count: this.count,
      seconds: this.seconds,
      checkpoint: this.checkpoint,
      free: this.free,
    };
  }
}
