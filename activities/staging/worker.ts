import { parentPort } from 'node:worker_threads';
import { decodeLakeFile } from '../../lib/lake-decode';
import { DeviceTriples } from '../../lib/device-triples';
import { IdFilter, MAX_CANDIDATE_SHARE, MIN_CANDIDATE_LIMIT, StagedIdFilters } from '../../lib/id-filter';
import { RepeatedIds } from '../../lib/repeated-ids';
import { type LakeTable, copyChunks } from './encode';
import {
  CHUNKS_AHEAD,
  type FilterJob,
  type FilterResult,
  type FromStageWorker,
  type StageJob,
  type ToStageWorker,
  toThreadError,
} from './messages';

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

/** The filters of the job, from the bytes it was handed; a neighbour's that do not decode are left out. */
function stagedFilters(job: FilterJob, expectedRows: number): StagedIdFilters {
  const own =
    job.own === null ? null : 'bytes' in job.own ? IdFilter.fromBytes(job.own.bytes) : IdFilter.forIds(job.own.ids);
  const neighbours = job.neighbours.flatMap((n) => {
    const filter = IdFilter.fromBytes(n.bytes);
    return filter ? [{ date: n.date, generation: n.generation, filter }] : [];
  });
  const limit = Math.max(MIN_CANDIDATE_LIMIT, Math.ceil(expectedRows * MAX_CANDIDATE_SHARE));
  return new StagedIdFilters(own, neighbours, limit);
}

function filterResult(built: StagedIdFilters | null, job: FilterJob | null): FilterResult | null {
  if (built === null || job === null) return null;
  // an own filter whose stored bytes did not decode cannot be added to: none is kept
  if (job.own !== null && built.own === null) return null;
  // a neighbour left out for bytes that did not decode gets no candidates: its look-up is the join
  const candidates = job.neighbours.map((n) => {
    const i = built.neighbours.findIndex((b) => b.date === n.date);
    return i < 0 ? null : built.candidates[i];
  });
  return { own: built.own ? built.own.toBytes() : null, candidates };
}

async function run(job: StageJob): Promise<void> {
  const filters = job.filters ? stagedFilters(job.filters, job.expectedRows) : null;
  const repeated = new RepeatedIds(job.expectedRows, filters);
  const devices = new DeviceTriples();
  const onFile = (_file: unknown, rows: number) => send({ type: 'file', rows });
  for await (const chunk of copyChunks(tables(job), job.format, onFile, repeated, devices)) {
    await until(() => credits > 0);
    credits--;
    // a chunk is a view on a buffer of its own (lib/copy-binary.ts ChunkedOutput): moved, not copied
    send({ type: 'chunk', bytes: chunk }, [chunk.buffer as ArrayBuffer]);
  }
  send({
    type: 'done',
    candidates: repeated.candidates(),
    devices: devices.triples(),
    filters: filterResult(repeated.filtersBuilt(), job.filters),
  });
}
