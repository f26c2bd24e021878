import { type Data, type RecordBatch, Type } from 'apache-arrow';
import type { StagedIdFilters } from './id-filter';

/**
 * Finds the event_ids that may occur more than once among the records a stage run copies, while it encodes them,
 * so the run can skip the SQL pass that collapses repeated event_ids when there are none (the common case: a
 * hash aggregate over every staged row, then a second scan for the rows to delete, together about a tenth of the
 * COPY). Each id is reduced to a 64-bit fingerprint in an open-addressing table; an id whose fingerprint was seen
 * before is a candidate. Every true repeat is a candidate (equal ids have equal fingerprints); others are only by a
 * fingerprint collision, about n²/2⁶⁵ of them (3 in 100 million at 1M ids; with 32 bits there were about 116),
 * which is harmless: the SQL pass then runs on the candidates only and keeps what really repeats. The ids are
 * canonical text (the landing lower-cases UUIDs), so equal event_ids have equal bytes.
 */
export class RepeatedIds {
  /** The two halves of each fingerprint; a slot is empty while its low half is 0 (a low half never is). */
  private low: Uint32Array;
  private high: Uint32Array;
  private mask: number;
  private size = 0;
  private readonly found: string[] = [];
  /** False once a batch's event_id column could not be read here: the caller must then check every row. */
  private exact = true;

  /**
   * `filters`, when given, is handed every id's fingerprint as well (lib/id-filter.ts): the date's event_id filter
   * and the look-up candidates of its neighbours are built in the same pass.
   */
  constructor(
    expectedRows: number,
    private readonly filters: StagedIdFilters | null = null,
  ) {
    let capacity = 1024;
    while (capacity < expectedRows * 2) capacity *= 2;
    this.low = new Uint32Array(capacity);
    this.high = new Uint32Array(capacity);
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
      fingerprint(values, from, to);
      this.filters?.add(fingerprintLow, fingerprintHigh, values, from, to);
      if (this.insert(fingerprintLow, fingerprintHigh)) {
        this.found.push(Buffer.from(values.buffer, values.byteOffset + from, to - from).toString('utf8'));
      }
    }
  }

  /** The candidate event_ids (each repeat at least once), or null when some batch could not be read here. */
  candidates(): string[] | null {
    return this.exact ? this.found : null;
  }

  /** The filters given, once every id went into them; null when some batch could not be read here. */
  filtersBuilt(): StagedIdFilters | null {
    return this.exact ? this.filters : null;
  }

  /** True when the fingerprint (low, high) was already in the table. */
  private insert(low: number, high: number): boolean {
    if (this.size * 2 >= this.low.length) this.grow();
    let slot = low & this.mask;
    for (;;) {
      const held = this.low[slot];
      if (held === 0) {
        this.low[slot] = low;
        this.high[slot] = high;
        this.size++;
        return false;
      }
      if (held === low && this.high[slot] === high) return true;
      slot = (slot + 1) & this.mask;
    }
  }

  private grow(): void {
    const low = this.low;
    const high = this.high;
    this.low = new Uint32Array(low.length * 2);
    this.high = new Uint32Array(low.length * 2);
    this.mask = this.low.length - 1;
    this.size = 0;
    for (let i = 0; i < low.length; i++) if (low[i] !== 0) this.insert(low[i], high[i]);
  }
}

/** The halves of the last fingerprint() (module state rather than an object per id: this runs once per record). */
let fingerprintLow = 0;
let fingerprintHigh = 0;

/**
 * Two independent 32-bit hashes of the bytes (FNV-1a with two offset bases, each through a murmur3 finaliser)
 * into fingerprintLow (never 0: the table's empty mark) and fingerprintHigh.
 */
function fingerprint(bytes: Uint8Array, from: number, to: number): void {
  let a = 0x811c9dc5;
  let b = 0x6c62272e;
  for (let i = from; i < to; i++) {
    a = Math.imul(a ^ bytes[i], 0x01000193);
    b = Math.imul(b ^ bytes[i], 0x01000193) ^ (b >>> 15);
  }
  fingerprintLow = mix(a) || 1;
  fingerprintHigh = mix(b ^ 0x9e3779b9);
}

/** murmur3's 32-bit finaliser. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
