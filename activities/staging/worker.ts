import { parentPort, workerData } from 'node:worker_threads';
import { decodeLakeFile } from '../../lib/lake';
import { RepeatedIds } from '../../lib/repeated-ids';
import { type LakeTable, copyChunks } from './encode';
import {
  CHUNKS_AHEAD,
  type FromStageWorker,
  type StageWorkerData,
  type ToStageWorker,
  toThreadError,
} from './threads';

/**
 * A stage worker thread (started by activities/staging/threads.ts): decodes the lake files whose bytes it is
 * handed, in order, and encodes their rows as COPY chunks, sent back as they fill, at most CHUNKS_AHEAD beyond
 * those the COPY took; fingerprints the event_ids on the way. It runs until it is terminated.
 */

const port = parentPort;
if (port === null) throw new Error('activities/staging/worker.ts runs as a worker thread of activities/staging/threads.ts');
const data = workerData as StageWorkerData;
const send = (m: FromStageWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

const arrived: Extract<ToStageWorker, { type: 'file' }>[] = [];
let credits = CHUNKS_AHEAD;
let wake: (() => void) | null = null;
port.on('message', (m: ToStageWorker) => {
  if (m.type === 'file') arrived.push(m);
  else credits += m.chunks;
  wake?.();
  wake = null;
});

async function until(ready: () => boolean): Promise<void> {
  while (!ready()) await new Promise<void>((resolve) => (wake = resolve));
}

async function* tables(): AsyncGenerator<LakeTable> {
  for (const file of data.files) {
    await until(() => arrived.length > 0);
    const m = arrived.shift()!;
    yield { file, table: decodeLakeFile(m.bytes, m.where) };
  }
}

async function main(): Promise<void> {
  const repeated = new RepeatedIds(data.expectedRows);
  const onFile = (_file: unknown, rows: number) => send({ type: 'file', rows });
  for await (const chunk of copyChunks(tables(), data.format, onFile, repeated)) {
    await until(() => credits > 0);
    credits--;
    // a chunk is a view on a buffer of its own (lib/copy-binary.ts ChunkedOutput): moved, not copied
    send({ type: 'chunk', bytes: chunk }, [chunk.buffer as ArrayBuffer]);
  }
  send({ type: 'done', candidates: repeated.candidates() });
}

main().catch((err: unknown) => send({ type: 'error', error: toThreadError(err) }));
