import { ApplicationFailure } from '@temporalio/common';
import { type Data, type RecordBatch, type Table, Type, makeVector } from 'apache-arrow';
import { ChunkedOutput, CopyBinaryBuffer, encodeBinaryBatch, isNull, microsPerUnit } from '../../lib/copy-binary';
import type { DeviceTriples } from '../../lib/device-triples';
import type { RepeatedIds } from '../../lib/repeated-ids';

/**
 * The COPY data of a stage run, encoded straight from the Arrow tables of decoded lake files: the binary format
 * (lib/copy-binary.ts), or the text format, the fallback and the set-aside path's reference. Runs in the stage
 * run's worker thread (./threads.ts), and the set-aside path's text lines in the activity's thread.
 */

export const STAGING_COLUMNS = [
  'event_id',
  'schema_version',
  'event_type',
  'event_time',
  'user_id',
  'session_id',
  'device_type',
  'device_os',
  'device_browser',
  'country',
  'page',
  'referrer',
  'user_email',
  'user_plan',
  'user_country',
  'order_id',
  'product_id',
  'amount',
  'currency',
  'kafka_topic',
  'kafka_partition',
  'kafka_offset',
  'lake_file_id',
] as const;

const REQUIRED_COLUMNS = new Set([
  'event_id',
  'schema_version',
  'event_type',
  'event_time',
  'user_id',
  'kafka_topic',
  'kafka_partition',
  'kafka_offset',
]);

// ---------------------------------------------------------------------------------------------
// COPY text encoding straight from Arrow buffers: bytes are copied from the UTF-8 value buffers and escaped only
// where the text format needs it; no JS string is made per value except for numbers.

const TAB = 0x09;
const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;

class CopyTextBuffer extends ChunkedOutput {
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  nul(): void {
    this.ensure(2);
    this.buf[this.pos++] = BACKSLASH;
    this.buf[this.pos++] = 0x4e; // \N
  }

  /** Copies bytes [from, to) of a UTF-8 buffer, escaping what the COPY text format requires. */
  escaped(src: Uint8Array, from: number, to: number): void {
    this.ensure(2 * (to - from));
    const buf = this.buf;
    let p = this.pos;
    for (let i = from; i < to; i++) {
      const c = src[i];
      if (c === BACKSLASH || c === TAB || c === NEWLINE || c === 0x0d) {
        buf[p++] = BACKSLASH;
        buf[p++] = c === BACKSLASH ? BACKSLASH : c === TAB ? 0x74 : c === NEWLINE ? 0x6e : 0x72;
      } else {
        buf[p++] = c;
      }
    }
    this.pos = p;
  }

  /** An ASCII string that needs no escaping (numbers, fixed parts). */
  ascii(s: string): void {
    this.ensure(s.length);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }
}

type FieldWriter = (row: number) => void;

const DAY_US = 86_400_000_000;

/** Writes epoch microseconds as `YYYY-MM-DD HH:MM:SS.ffffff+00`; the date part is cached, rows of a file share days. */
function timestampWriter(out: CopyTextBuffer): (us: number) => void {
  let cachedDay = Number.NaN;
  let cachedDate = Buffer.alloc(0);
  const text = Buffer.alloc(29); // 'YYYY-MM-DD HH:MM:SS.ffffff+00'
  text.write(' 00:00:00.000000+00', 10, 'ascii');
  const put = (value: number, at: number, width: number) => {
    for (let i = at + width - 1; i >= at; i--) {
      text[i] = 0x30 + (value % 10);
      value = Math.floor(value / 10);
    }
  };
  return (us: number) => {
    const day = Math.floor(us / DAY_US);
    if (day !== cachedDay) {
      cachedDay = day;
      cachedDate = Buffer.from(new Date(day * 86_400_000).toISOString().slice(0, 10), 'ascii');
      text.set(cachedDate, 0);
    }
    const rest = us - day * DAY_US;
    const secs = Math.floor(rest / 1_000_000);
    put(Math.floor(secs / 3600), 11, 2);
    put(Math.floor((secs % 3600) / 60), 14, 2);
    put(secs % 60, 17, 2);
    put(rest - secs * 1_000_000, 20, 6);
    out.raw(text);
  };
}

function fieldWriter(out: CopyTextBuffer, data: Data, writeTimestamp: (us: number) => void): FieldWriter {
  const type = data.type;
  const nullable = data.nullCount > 0;
  switch (type.typeId) {
    case Type.Utf8:
    case Type.Binary: {
      const offsets = data.valueOffsets as Int32Array;
      const values = data.values as Uint8Array;
      return (row) => {
        if (nullable && isNull(data, row)) out.nul();
        else out.escaped(values, offsets[row], offsets[row + 1]);
      };
    }
    case Type.LargeUtf8: {
      const offsets = data.valueOffsets as unknown as BigInt64Array;
      const values = data.values as Uint8Array;
      return (row) => {
        if (nullable && isNull(data, row)) out.nul();
        else out.escaped(values, Number(offsets[row]), Number(offsets[row + 1]));
      };
    }
    case Type.Timestamp: {
      const values = data.values as BigInt64Array;
      const toMicros = microsPerUnit(data);
      return (row) => {
        if (nullable && isNull(data, row)) out.nul();
        else writeTimestamp(Math.floor(Number(values[row]) * toMicros));
      };
    }
    case Type.Int:
    case Type.Float: {
      const values = data.values as ArrayLike<number | bigint>;
      return (row) => {
        if (nullable && isNull(data, row)) out.nul();
        else out.ascii(String(values[row]));
      };
    }
    default: {
      // Dictionary-encoded or view strings: rarer layouts, decoded through Arrow's generic accessor.
      const vector = makeVector(data);
      return (row) => {
        const v: unknown = vector.get(row);
        if (v === null || v === undefined) out.nul();
        else {
          const bytes = Buffer.from(String(v), 'utf8');
          out.escaped(bytes, 0, bytes.length);
        }
      };
    }
  }
}

/** Checks a lake file's columns against the staging columns; a missing one is a schema mismatch retrying cannot fix. */
export function checkColumns(table: Table, filePath: string): void {
  const names = new Set(table.schema.fields.map((f) => f.name));
  const missing = STAGING_COLUMNS.filter((c) => c !== 'lake_file_id' && REQUIRED_COLUMNS.has(c) && !names.has(c));
  if (missing.length > 0) {
    throw ApplicationFailure.create({
      message: `lake file ${filePath} lacks column(s) ${missing.join(', ')}: it does not match the events schema of lib/lake.ts; re-land it or fix the writer`,
      type: 'LakeSchemaMismatch',
      nonRetryable: true,
    });
  }
}

/** Encodes the rows of one record batch as COPY text rows, with the file's lake_file_id as the last column. */
function encodeTextBatch(
  out: CopyTextBuffer,
  batch: RecordBatch,
  lakeFileId: Uint8Array,
  writeTimestamp: (us: number) => void,
): number {
  const names = batch.schema.fields.map((f) => f.name);
  const writers: (FieldWriter | null)[] = STAGING_COLUMNS.filter((c) => c !== 'lake_file_id').map((column) => {
    const index = names.indexOf(column);
    return index < 0 ? null : fieldWriter(out, batch.data.children[index], writeTimestamp);
  });
  const n = batch.numRows;
  for (let row = 0; row < n; row++) {
    for (let c = 0; c < writers.length; c++) {
      const w = writers[c];
      if (w) w(row);
      else out.nul();
      out.byte(TAB);
    }
    out.raw(lakeFileId);
  }
  return n;
}

/** The staging columns read from lake files (all but lake_file_id), with their binary COPY types. */
const BINARY_COLUMNS = STAGING_COLUMNS.filter((c) => c !== 'lake_file_id').map(
  (c) =>
    [
      c,
      c === 'event_id'
        ? 'uuid'
        : c === 'event_time'
          ? 'timestamptz'
          : c === 'amount'
            ? 'numeric'
            : c === 'kafka_partition'
              ? 'int4'
              : c === 'kafka_offset'
                ? 'int8'
                : 'text',
    ] as const,
);

export interface LakeFileRef {
  lakeFileId: number;
  path: string;
}

/** A decoded lake file. */
export interface LakeTable {
  file: LakeFileRef;
  table: Table;
}

export type CopyFormat = 'text' | 'binary';

/**
 * The COPY data of the given lake tables in `format`, handed over in chunks of about 8 MB: `onFile` is told the
 * rows of each file once it is encoded; `repeated` fingerprints every event_id on the way, `devices` collects the
 * distinct device triples. The binary format throws BinaryCopyUnsupported for a value only the text format carries
 * exactly.
 */
export async function* copyChunks(
  tables: AsyncIterable<LakeTable>,
  format: CopyFormat,
  onFile: (file: LakeFileRef, rows: number) => void,
  repeated?: RepeatedIds,
  devices?: DeviceTriples,
): AsyncGenerator<Buffer> {
  let out: ChunkedOutput;
  let encode: (batch: RecordBatch, lakeFileId: number) => number;
  if (format === 'binary') {
    const binary = (out = new CopyBinaryBuffer());
    binary.header();
    encode = (batch, lakeFileId) => encodeBinaryBatch(binary, batch, BINARY_COLUMNS, lakeFileId);
  } else {
    const text = (out = new CopyTextBuffer());
    const writeTimestamp = timestampWriter(text);
    encode = (batch, lakeFileId) =>
      encodeTextBatch(text, batch, Buffer.from(`${lakeFileId}\n`, 'ascii'), writeTimestamp);
  }
  for await (const { file, table } of tables) {
    checkColumns(table, file.path);
    let rows = 0;
    for (const batch of table.batches) {
      repeated?.addBatch(batch);
      devices?.addBatch(batch);
      rows += encode(batch, file.lakeFileId);
      if (out.pending() > 0) yield* out.take(false);
    }
    onFile(file, rows);
  }
  if (out instanceof CopyBinaryBuffer) out.trailer();
  yield* out.take(true);
}

/** A table's rows as COPY text lines, one Buffer each (newline-terminated; values never hold a raw newline, it is escaped). */
export function copyTextLines(data: Table, lakeFileId: number): Buffer[] {
  const out = new CopyTextBuffer();
  const writeTimestamp = timestampWriter(out);
  const idBytes = Buffer.from(`${lakeFileId}\n`, 'ascii');
  for (const batch of data.batches) encodeTextBatch(out, batch, idBytes, writeTimestamp);
  const text = Buffer.concat(out.take(true));
  const lines: Buffer[] = [];
  for (let start = 0; start < text.length;) {
    const end = text.indexOf(NEWLINE, start) + 1;
    lines.push(text.subarray(start, end));
    start = end;
  }
  return lines;
}
