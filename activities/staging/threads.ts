import { Readable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { ApplicationFailure } from '@temporalio/common';
import { BinaryCopyUnsupported } from '../../lib/copy-binary';
import { LakeFileCorruptError, readLakeBytes } from '../../lib/lake';
import { type LakeLocation, type LakeStore, lakeStore } from '../../lib/lake-store';
import { startWorkerThread } from '../../lib/worker-thread';
import type { CopyFormat, LakeFileRef } from './encode';

/**
 * The COPY data of a stage run, decoded and encoded in a worker thread (./worker.ts) while this thread streams the
 * chunks already encoded into PostgreSQL: Parquet decoding and COPY encoding cost about as much as PostgreSQL's
 * COPY itself, and overlap with it this way. This thread reads the lake files (its store may be any LakeStore)
 * and hands their bytes over; the worker sends back chunks of about 8 MB, each file's rows, and at the end the
 * candidate repeated event_ids (lib/repeated-ids.ts). Both hand over buffers rather than copy them, and both stay
 * a bounded distance ahead: LAKE_FILES_AHEAD files, CHUNKS_AHEAD chunks.
 */

/** Lake files handed to the worker beyond the one it is encoding. */
const LAKE_FILES_AHEAD = 1;
/** Chunks the worker may encode beyond those the COPY took. */
export const CHUNKS_AHEAD = 4;

/** What a stage worker is given (workerData). */
export interface StageWorkerData {
  format: CopyFormat;
  files: LakeFileRef[];
  /** Records the files hold, by the manifest: sizes the fingerprint table. */
  expectedRows: number;
}

/** Messages to a stage worker: the next lake file's bytes (in `files` order), or chunks the COPY took. */
export type ToStageWorker = { type: 'file'; where: string; bytes: Uint8Array } | { type: 'taken'; chunks: number };

/** Messages from a stage worker. */
export type FromStageWorker =
  | { type: 'chunk'; bytes: Uint8Array }
  | { type: 'file'; rows: number }
  | { type: 'done'; candidates: string[] | null }
  | { type: 'error'; error: ThreadError };

/** An error thrown in the worker, as plain data: the errors the stage run branches on keep their class. */
export interface ThreadError {
  name: string;
  message: string;
  stack?: string;
  type?: string | null;
  nonRetryable?: boolean | null;
}

export function toThreadError(err: unknown): ThreadError {
  const e = err instanceof Error ? err : new Error(String(err));
  const failure = e instanceof ApplicationFailure ? { type: e.type, nonRetryable: e.nonRetryable } : {};
  return { name: e.name, message: e.message, stack: e.stack, ...failure };
}

function fromThreadError(t: ThreadError): Error {
  const err =
    t.name === 'BinaryCopyUnsupported'
      ? new BinaryCopyUnsupported(t.message)
      : t.name === 'LakeFileCorruptError'
        ? new LakeFileCorruptError(t.message)
        : t.name === 'ApplicationFailure'
          ? ApplicationFailure.create({
              message: t.message,
              type: t.type ?? undefined,
              nonRetryable: t.nonRetryable ?? undefined,
            })
          : new Error(t.message);
  if (t.stack) err.stack = t.stack;
  return err;
}

/**
 * The COPY data of `files` in `format`, as a stream for pipeline() into a COPY: chunks of about 8 MB from a
 * worker thread. `onFile` is told each file's rows as the worker finishes it; `candidates` holds the repeated
 * event_id candidates once the stream ended. An error in the worker destroys the stream with the same error
 * (BinaryCopyUnsupported, LakeFileCorruptError, a LakeSchemaMismatch failure); however the stream ends, the
 * worker is terminated (close() waits for it).
 */
export class StagingChunks extends Readable {
  /** The candidate repeated event_ids (RepeatedIds.candidates) once the stream ended. */
  candidates: string[] | null = null;
  private readonly store: LakeStore;
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  /** Files handed to the worker, and files it finished. */
  private sent = 0;
  private encoded = 0;
  private feeding = false;
  /** Chunks pushed here and not yet reported taken to the worker. */
  private untaken = 0;
  private done = false;

  constructor(
    lake: LakeLocation,
    private readonly files: LakeFileRef[],
    format: CopyFormat,
    private readonly onFile: (file: LakeFileRef, rows: number) => void,
    expectedRows: number,
  ) {
    super({ objectMode: true, highWaterMark: 1 });
    this.store = lakeStore(lake);
    const data: StageWorkerData = { format, files, expectedRows };
    this.worker = startWorkerThread(__filename, 'worker', data);
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('message', (m: FromStageWorker) => this.receive(m));
    this.worker.on('error', (err) => this.destroy(err));
    this.worker.on('exit', (code) => {
      if (!this.done) this.destroy(new Error(`the stage worker thread exited with code ${code} before it finished`));
    });
    void this.feed();
  }

  /** Ends the stream if it has not ended, and waits until the worker thread is gone. */
  async close(): Promise<void> {
    this.destroy();
    await this.exited;
  }

  override _read(): void {
    if (this.untaken > 0) {
      this.worker.postMessage({ type: 'taken', chunks: this.untaken } satisfies ToStageWorker);
      this.untaken = 0;
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.done = true;
    this.worker.terminate().then(
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
        this.done = true;
        this.candidates = m.candidates;
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
