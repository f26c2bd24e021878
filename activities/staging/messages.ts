import { ApplicationFailure } from '@temporalio/common';
import { BinaryCopyUnsupported } from '../../lib/copy-binary';
import type { DeviceTriple } from '../../lib/device-triples';
import { LakeFileCorruptError } from '../../lib/lake-decode';
import type { CopyFormat, LakeFileRef } from './encode';

/** What a stage run's thread (./threads.ts) and its worker thread (./worker.ts) tell each other. */

/** Chunks the worker may encode beyond those the COPY took. */
export const CHUNKS_AHEAD = 4;

/** A stage run's work for a stage worker. */
export interface StageJob {
  format: CopyFormat;
  files: LakeFileRef[];
  /** Records the files hold, by the manifest: sizes the fingerprint table. */
  expectedRows: number;
  /** The event_id filters to build on the way (lib/id-filter.ts); null: none. */
  filters: FilterJob | null;
}

/** The filters a stage run builds (activities/stage.ts stageFilters). */
export interface FilterJob {
  /** The date's own filter: its stored bytes to add to, or a new one sized for `ids`; null: the date keeps none. */
  own: { bytes: Uint8Array } | { ids: number } | null;
  /** The neighbouring dates' filters, whose candidates the run finds. */
  neighbours: { date: string; generation: number; bytes: Uint8Array }[];
}

/**
 * What came of a FilterJob: the date's filter as bytes (null: none) and each neighbour's candidates, in order (null:
 * none kept, the neighbour is looked in by the join).
 */
export interface FilterResult {
  own: Uint8Array | null;
  candidates: (string[] | null)[];
}

/** Messages to a stage worker: a run's job, then its lake files' bytes (in `files` order) and the chunks the COPY took. */
export type ToStageWorker =
  | { type: 'start'; job: StageJob }
  | { type: 'file'; where: string; bytes: Uint8Array }
  | { type: 'taken'; chunks: number };

/** Messages from a stage worker. */
export type FromStageWorker =
  | { type: 'chunk'; bytes: Uint8Array }
  | { type: 'file'; rows: number }
  | {
      type: 'done';
      candidates: string[] | null;
      devices: DeviceTriple[] | null;
      /** null when no filters were asked for or some batch's event_ids could not be read */
      filters: FilterResult | null;
    }
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

export function fromThreadError(t: ThreadError): Error {
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
