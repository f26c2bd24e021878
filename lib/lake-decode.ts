import { type Table, tableFromIPC } from 'apache-arrow';
import { readParquet } from 'parquet-wasm';

/**
 * Decoding a lake file's Parquet bytes, apart from lib/lake.ts so that a thread that only decodes (the stage run's
 * worker, activities/staging/worker.ts) does not load the lake stores and their S3 client.
 */

/** A lake file that reads but does not decode as Parquet/Arrow: retrying cannot fix it. */
export class LakeFileCorruptError extends Error {
  override name = 'LakeFileCorruptError';
}

/** Decodes a lake file's bytes into an Arrow table; `where` names the file in the error when they are not Parquet. */
export function decodeLakeFile(bytes: Uint8Array, where: string): Table {
  try {
    return tableFromIPC(readParquet(bytes).intoIPCStream());
  } catch (err) {
    throw new LakeFileCorruptError(`lake file ${where} is not readable Parquet: ${(err as Error).message ?? err}`, {
      cause: err,
    });
  }
}
