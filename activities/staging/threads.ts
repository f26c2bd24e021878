import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Worker } from 'node:worker_threads';
import type { DeviceTriple } from '../../lib/device-triples';
import { parseEvent } from '../../lib/events';
import { generateEvents } from '../../lib/generator';
import { EventRows, readLakeBytes, toParquet } from '../../lib/lake';
import { type LakeLocation, LakeObjectMissingError, type LakeStore, lakeStore } from '../../lib/lake-store';
import { startWorkerThread } from '../../lib/worker-thread';
import type { CopyFormat, LakeFileRef } from './encode';
import {
  type FilterJob,
  type FilterResult,
  type FromStageWorker,
  type StageJob,
  type ToStageWorker,
  fromThreadError,
} from './messages';

/**
 * The COPY data of a stage run, decoded and encoded in a worker thread (./worker.ts) while this thread streams the
 * chunks already encoded into PostgreSQL: Parquet decoding and COPY encoding cost about as much as PostgreSQL's
 * COPY itself, and overlap with it this way. This thread reads the lake files (its store may be any LakeStore)
 * and hands their bytes over; the worker sends back chunks of about 8 MB, each file's rows, and at the end the
 * candidate repeated event_ids (lib/repeated-ids.ts). Both hand over buffers rather than copy them, and both stay
 * a bounded distance ahead: LAKE_FILES_AHEAD files, CHUNKS_AHEAD chunks (./messages.ts).
 */

/** Lake files handed to the worker beyond the one it is encoding. */
const LAKE_FILES_AHEAD = 1;

/**
 * A stage worker thread left by a run that ended well, kept for a run starting within KEEP_IDLE_MS (unref'd: it
 * does not keep the process alive): a fresh thread first compiles the Parquet decoder and the encoders, which
 * costs about as much CPU as decoding a lake file or two; a kept one holds the memory of its largest decode until
 * it ends. At most one is kept; a run that fails or is cancelled terminates its thread.
 */
let idle: { worker: Worker; timer: NodeJS.Timeout | null } | null = null;
const KEEP_IDLE_MS = 60_000;
/** Set by keepStageThreadWarm(): a kept thread that times out is replaced by a freshly warmed one. */
let keepWarm = false;

function takeWorker(): Worker {
  if (idle === null) return startWorkerThread(__filename, 'worker', null);
  const w = idle.worker;
  if (idle.timer) clearTimeout(idle.timer);
  idle = null;
  detach(w);
  w.ref();
  return w;
}

/** Removes the listeners this module adds to a worker. */
function detach(w: Worker): void {
  for (const event of ['message', 'error', 'exit']) w.removeAllListeners(event);
}

/** Keeps a thread that finished a run for the next one: for `ms`, or until taken when `ms` is null. */
function keepWorker(w: Worker, ms: number | null = KEEP_IDLE_MS): Promise<void> {
  detach(w);
  if (idle !== null) return w.terminate().then(() => undefined);
  const timer =
    ms === null
      ? null
      : setTimeout(() => {
          idle = null;
          // a warm-up that fails leaves the next run to start its own thread, as without one
          void w
            .terminate()
            .then(() => (keepWarm ? warmStageThread() : undefined))
            .catch(() => undefined);
        }, ms);
  timer?.unref();
  idle = { worker: w, timer };
  w.unref();
  // a kept thread that dies (it should not) is simply not kept
  w.on('error', () => undefined);
  w.once('exit', () => {
    if (idle?.worker === w) {
      if (idle.timer) clearTimeout(idle.timer);
      idle = null;
    }
  });
  return Promise.resolve();
}

/** Events of the lake file a warm-up stages: enough for the decoder's and the encoders' hot paths to be compiled. */
const WARM_UP_EVENTS = 20_000;

/**
 * Has a stage worker thread ready for the next stage run: started, and run once over a generated lake file of
 * WARM_UP_EVENTS events (held in memory; nothing is written to the lake or the database), then kept until a run
 * takes it. A fresh thread first loads its modules and compiles the Parquet decoder (WebAssembly) and the encoders:
 * the first lake file of a stage run then decodes about 3 x slower than the next ones, about 1 s of a 1M-event
 * stage. The thread holds only the memory of that small file. Nothing when a thread is kept already.
 */
export async function warmStageThread(): Promise<void> {
  if (idle !== null) return;
  const rows = new EventRows('warm-up', 0);
  const now = new Date('2024-01-02T00:00:00Z');
  let offset = 0;
  for (const record of generateEvents({ events: WARM_UP_EVENTS, days: 1, start: '2024-01-01', seed: 1, badRate: 0 })) {
    const parsed = parseEvent(record.value, now);
    if (parsed.ok) rows.push(parsed.event, offset++, now.getTime());
  }
  const file = { lakeFileId: 0, path: 'events/dt=2024-01-01/warm-up.parquet' };
  const store = memoryStore(file.path, toParquet(rows.toTable()));
  const chunks = new StagingChunks(store, [file], 'binary', () => undefined, rows.length, null);
  try {
    await finished(chunks.resume());
  } finally {
    await chunks.close();
  }
}

/**
 * Keeps a warmed stage thread in this process from now on (the worker calls it when it starts): one now, and a new
 * one each time a kept thread times out, so a daily stage run finds one however long the worker has been idle.
 */
export function keepStageThreadWarm(): Promise<void> {
  keepWarm = true;
  return warmStageThread();
}

/** A read-only lake of one file held in memory (the warm-up's). */
function memoryStore(relPath: string, bytes: Uint8Array): LakeStore {
  return {
    kind: 'file',
    describe: (p) => `memory:${p}`,
    get: async (p) => {
      if (p !== relPath) throw new LakeObjectMissingError(`memory:${p} does not exist`);
      return Buffer.from(bytes);
    },
    put: () => Promise.reject(new Error('the warm-up lake is read-only')),
    list: async (prefix) => (relPath.startsWith(prefix) ? [relPath] : []),
    remove: async () => undefined,
  };
}

/**
 * The COPY data of `files` in `format`, as a stream for pipeline() into a COPY: chunks of about 8 MB from a
 * worker thread. `onFile` is told each file's rows as the worker finishes it; once the stream ended, `candidates`
 * holds the repeated event_id candidates and `devices` the distinct device triples. An error in the worker destroys
 * the stream with the same error (BinaryCopyUnsupported, LakeFileCorruptError, a LakeSchemaMismatch failure). Once
 * the stream is destroyed (it is at its end too) the worker is kept for the next run if it finished, else
 * terminated; close() waits for that.
 */
export class StagingChunks extends Readable {
  /** The candidate repeated event_ids (RepeatedIds.candidates) once the stream ended. */
  candidates: string[] | null = null;
  /** The distinct device triples of the records (DeviceTriples.triples) once the stream ended. */
  devices: DeviceTriple[] | null = null;
  /** The event_id filters built (FilterResult) once the stream ended; null when none were asked for or built. */
  filters: FilterResult | null = null;
  private readonly store: LakeStore;
  private readonly worker: Worker;
  /** Files handed to the worker, and files it finished. */
  private sent = 0;
  private encoded = 0;
  private feeding = false;
  /** Chunks pushed here and not yet reported taken to the worker. */
  private untaken = 0;
  /** The worker sent its last chunk and is idle again. */
  private finished = false;
  private released: Promise<void> | null = null;

  constructor(
    lake: LakeLocation,
    private readonly files: LakeFileRef[],
    format: CopyFormat,
    private readonly onFile: (file: LakeFileRef, rows: number) => void,
    expectedRows: number,
    /** How long the thread is kept for the next run once this one ended well; null: until a run takes it. */
    private readonly keepMs: number | null = KEEP_IDLE_MS,
    /** The event_id filters to build on the way (activities/stage.ts); null: none. */
    filters: FilterJob | null = null,
  ) {
    super({ objectMode: true, highWaterMark: 1 });
    this.store = lakeStore(lake);
    this.worker = takeWorker();
    this.worker.on('message', (m: FromStageWorker) => this.receive(m));
    this.worker.on('error', (err) => this.destroy(err));
    this.worker.on('exit', (code) => {
      this.destroy(new Error(`the stage worker thread exited with code ${code} before it finished`));
    });
    const job: StageJob = { format, files, expectedRows, filters };
    this.worker.postMessage({ type: 'start', job } satisfies ToStageWorker);
    void this.feed();
  }

  /** Ends the stream if it has not ended, and waits until its worker thread is kept or gone. */
  async close(): Promise<void> {
    this.destroy();
    await new Promise<void>((resolve) => (this.closed ? resolve() : this.once('close', () => resolve())));
    await this.released;
  }

  override _read(): void {
    if (this.untaken > 0) {
      this.worker.postMessage({ type: 'taken', chunks: this.untaken } satisfies ToStageWorker);
      this.untaken = 0;
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.released =
      this.finished && err === null
        ? keepWorker(this.worker, this.keepMs)
        : (detach(this.worker), this.worker.terminate().then(() => undefined));
    this.released.then(
      () => callback(err),
      (e: unknown) => callback(err ?? (e as Error)),
    );
  }

  private receive(m: FromStageWorker): void {
    if (this.destroyed) return;
    try {
      if (m.type === 'chunk') {
        this.untaken++;
        if (this.push(Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength))) this._read();
      } else if (m.type === 'file') {
        this.onFile(this.files[this.encoded++], m.rows);
        void this.feed();
      } else if (m.type === 'done') {
        this.finished = true;
        this.candidates = m.candidates;
        this.devices = m.devices;
        this.filters = m.filters;
        this.push(null);
      } else {
        this.destroy(fromThreadError(m.error));
      }
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  /** Reads the next lake files and hands their bytes to the worker, up to LAKE_FILES_AHEAD beyond its current one. */
  private async feed(): Promise<void> {
    if (this.feeding) return;
    this.feeding = true;
    try {
      while (this.sent < this.files.length && this.sent - this.encoded <= LAKE_FILES_AHEAD && !this.destroyed) {
        const file = this.files[this.sent];
        const read = await readLakeBytes(this.store, file.path);
        if (this.destroyed) return;
        // moved to the worker when the view spans its buffer (a file read whole), else copied first
        const bytes = read.byteOffset === 0 && read.byteLength === read.buffer.byteLength ? read : new Uint8Array(read);
        const m: ToStageWorker = { type: 'file', where: this.store.describe(file.path), bytes };
        this.worker.postMessage(m, [bytes.buffer as ArrayBuffer]);
        this.sent++;
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.feeding = false;
    }
  }
}
