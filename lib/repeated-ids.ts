import { type Data, type RecordBatch, Type } from 'apache-arrow';

/**
 * Finds the event_ids that may occur more than once among the records a stage run copies, while it encodes them,
 * so the run can skip the SQL pass that collapses repeated event_ids when there are none (the common case: a
 * hash aggregate over every staged row, about as costly as an eighth of the COPY). Each id is reduced to a 32-bit
 * fingerprint in an open-addressing table; an id whose fingerprint was seen before is a candidate. Every true
 * repeat is a candidate (equal ids have equal fingerprints); a few others are too (fingerprint collisions, about
 * n²/2³³ of them), which is harmless: the SQL pass then runs on the candidates only and keeps what really repeats.
 * The ids are canonical text (the landing lower-cases UUIDs), so equal event_ids have equal bytes.
 */
export class RepeatedIds {
  private table: Uint32Array;
  private mask: number;
  private size = 0;
  private readonly found: string[] = [];
  /** False once a batch's event_id column could not be read here: the caller must then check every row. */
  private exact = true;

  constructor(expectedRows: number) {
    let capacity = 1024;
    while (capacity < expectedRows * 2) capacity *= 2;
    this.table = new Uint32Array(capacity);
    this.mask = capacity - 1;
  }

  /** Adds the event_ids of a record batch (column `event_id`, plain UTF-8). */
  addBatch(batch: RecordBatch): void {
    if (!this.exact) return;
    const index = batch.schema.fields.findIndex((f) => f.name === 'event_id');
    const data: Data | undefined = index < 0 ? undefined : batch.data.children[index];
    if (!data || data.type.typeId !== Type.Utf8 || data.nullCount > 0) {
      this.exact = false;
      return;
    }
    const offsets = data.valueOffsets as Int32Array;
    const values = data.values as Uint8Array;
    for (let row = 0; row < batch.numRows; row++) {
      const from = offsets[row];
      const to = offsets[row + 1];
      if (this.insert(fingerprint(values, from, to))) {
        this.found.push(Buffer.from(values.buffer, values.byteOffset + from, to - from).toString('utf8'));
      }
    }
  }

  /** The candidate event_ids (each repeat at least once), or null when some batch could not be read here. */
  candidates(): string[] | null {
    return this.exact ? this.found : null;
  }

  /** True when `key` was already in the table. */
  private insert(key: number): boolean {
    if (this.size * 2 >= this.table.length) this.grow();
    let slot = key & this.mask;
    for (;;) {
      const held = this.table[slot];
      if (held === 0) {
        this.table[slot] = key;
        this.size++;
        return false;
      }
      if (held === key) return true;
      slot = (slot + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.table;
    this.table = new Uint32Array(old.length * 2);
    this.mask = this.table.length - 1;
    this.size = 0;
    for (const key of old) if (key !== 0) this.insert(key);
  }
}

/** FNV-1a over the bytes, then a murmur3 finaliser; never 0 (the table's empty mark). */
function fingerprint(bytes: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0 || 1;
}
