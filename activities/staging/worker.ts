import { parentPort } from 'node:worker_threads';
import { decodeLakeFile } from '../../lib/lake-decode';
import { DeviceTriples } from '../../lib/device-triples';
import { RepeatedIds } from '../../lib/repeated-ids';
import { type LakeTable, copyChunks } from './encode';
import { CHUNKS_AHEAD, type FromStageWorker, type StageJob, type ToStageWorker, toThreadError } from './messages';

/**
 * A stage worker thread (started by activities/staging/threads.ts), one stage run's job at a time: decodes the lake
 * files whose bytes it is handed, in order, and encodes their rows as COPY chunks, sent back as they fill, at most
 * CHUNKS_AHEAD beyond those the COPY took; fingerprints the event_ids on the way. A run that fails terminates it.
 */

const port = parentPort;
if (port === null)
  throw new Error('activities/staging/worker.ts runs as a worker thread of activities/staging/threads.ts');
const send = (m: FromStageWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

let arrived: Extract<ToStageWorker, { type: 'file' }>[] = [];
let credits = 0;
let wake: (() => void) | null = null;
port.on('message', (m: ToStageWorker) => {
  if (m.type === 'start') {
    arrived = [];
    credits = CHUNKS_AHEAD;
    run(m.job).catch((err: unknown) => send({ type: 'error', error: toThreadError(err) }));
  } else if (m.type === 'file') {
    arrived.push(m);
  } else {
    credits += m.chunks;
  }
  wake?.();
  wake = null;
});

async function until(ready: () => boolean): Promise<void> {
  while (!ready()) await new Promise<void>((resolve) => (wake = resolve));
}

async function* tables(job: StageJob): AsyncGenerator<LakeTable> {
  for (const file of job.files) {
    await until(() => arrived.length > 0);
    const m = arrived.shift()!;
    yield { file, table: decodeLakeFile(m.bytes, m.where) };
  }
}

async function run(job: StageJob): Promise<void> {
  const repeated = new RepeatedIds(job.expectedRows);
  const devices = new DeviceTriples();
  const onFile = (_file: unknown, rows: number) => send({ type: 'file', rows });
  for await (const chunk of copyChunks(tables(job), job.format, onFile, repeated, devices)) {
    await until(() => credits > 0);
    credits--;
    // a chunk is a view on a buffer of its own (lib/copy-binary.ts ChunkedOutput): moved, not copied
    send({ type: 'chunk', bytes: chunk }, [chunk.buffer as ArrayBuffer]);
  }
  send({ type: 'done', candidates: repeated.candidates(), devices: devices.triples() });
}
