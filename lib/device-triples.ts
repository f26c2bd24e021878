import { type Data, type RecordBatch, Type } from 'apache-arrow';
import { isNull } from './copy-binary';

/** The staged columns of a device triple, in dim_device's order (type, os, browser). */
export const DEVICE_COLUMNS = ['device_type', 'device_os', 'device_browser'] as const;

/** A device triple as dim_device holds it: a missing value is 'unknown' (warehouse/sql/dim_device.sql). */
export type DeviceTriple = [deviceType: string, os: string, browser: string];

const UNKNOWN = 'unknown';

/**
 * Collects the distinct device triples of the records a stage run copies, while it encodes them, so the device
 * dimension load takes them from the stage run instead of reading every staged row again for the few distinct
 * ones (about a second per million events). Rows are hashed over the bytes of their three values and compared
 * byte for byte with the triples already seen under the same hash, so the result is exact. A batch whose device
 * columns are not plain UTF-8 makes the result null: the caller then reads the staged rows.
 */
export class DeviceTriples {
  /** The triples seen, by hash of their bytes; each with the bytes it was compared on (null: a missing value). */
  private readonly seen = new Map<number, { bytes: (Uint8Array | null)[]; triple: DeviceTriple }[]>();
  private exact = true;

  /** Adds the device triples of a record batch (a missing column counts as missing values). */
  addBatch(batch: RecordBatch): void {
    if (!this.exact) return;
    const columns: (Data | null)[] = [];
    for (const name of DEVICE_COLUMNS) {
      const index = batch.schema.fields.findIndex((f) => f.name === name);
      const data: Data | undefined = index < 0 ? undefined : batch.data.children[index];
      if (data && data.type.typeId !== Type.Utf8) {
        this.exact = false;
        return;
      }
      columns.push(data ?? null);
    }
    const offsets = columns.map((d) => (d ? (d.valueOffsets as Int32Array) : null));
    const values = columns.map((d) => (d ? (d.values as Uint8Array) : null));
    const nullable = columns.map((d) => d !== null && d.nullCount > 0);
    for (let row = 0; row < batch.numRows; row++) {
      // FNV-1a over the three values, each closed by a separator byte that tells a missing value from an empty one
      let hash = 0x811c9dc5;
      for (let c = 0; c < 3; c++) {
        const data = columns[c];
        if (data === null || (nullable[c] && isNull(data, row))) {
          hash = Math.imul(hash ^ 0xfe, 0x01000193);
          continue;
        }
        const bytes = values[c]!;
        const end = offsets[c]![row + 1];
        for (let i = offsets[c]![row]; i < end; i++) hash = Math.imul(hash ^ bytes[i], 0x01000193);
        hash = Math.imul(hash ^ 0xff, 0x01000193);
      }
      const bucket = this.seen.get(hash);
      if (bucket && bucket.some((entry) => this.matches(entry.bytes, columns, offsets, values, nullable, row)))
        continue;
      const bytes = columns.map((data, c) =>
        data === null || (nullable[c] && isNull(data, row))
          ? null
          : values[c]!.slice(offsets[c]![row], offsets[c]![row + 1]),
      );
      const text = bytes.map((b) => (b === null ? UNKNOWN : Buffer.from(b).toString('utf8')));
      const entry = { bytes, triple: text as DeviceTriple };
      if (bucket) bucket.push(entry);
      else this.seen.set(hash, [entry]);
    }
  }

  /**
   * The distinct triples, missing values as 'unknown' (two triples can become one: a missing os and the text
   * 'unknown'), or null when some batch could not be read here.
   */
  triples(): DeviceTriple[] | null {
    if (!this.exact) return null;
    const unique = new Map<string, DeviceTriple>();
    for (const bucket of this.seen.values()) {
      for (const { triple } of bucket) unique.set(JSON.stringify(triple), triple);
    }
    return [...unique.values()];
  }

  private matches(
    held: (Uint8Array | null)[],
    columns: (Data | null)[],
    offsets: (Int32Array | null)[],
    values: (Uint8Array | null)[],
    nullable: boolean[],
    row: number,
  ): boolean {
    for (let c = 0; c < 3; c++) {
      const data = columns[c];
      const missing = data === null || (nullable[c] && isNull(data, row));
      const bytes = held[c];
      if (missing || bytes === null) {
        if (missing !== (bytes === null)) return false;
        continue;
      }
      const from = offsets[c]![row];
      if (offsets[c]![row + 1] - from !== bytes.length) return false;
      const source = values[c]!;
      for (let i = 0; i < bytes.length; i++) if (source[from + i] !== bytes[i]) return false;
    }
    return true;
  }
}
