import { endianness } from 'node:os';

/**
 * A summary of the event_ids a date's stage runs staged (ops.event_id_filters), so that the fact load of a
 * neighbouring date looks for its event_ids there only where the summary cannot rule them out, instead of a merge
 * join of every staged event_id with every fact of the neighbour (activities/facts.ts crossDateIds): at 10M events
 * the join sorted 10M ids and read a 10M-entry primary key, 4.8-5.5 s of one core, and beside the new partition's
 * index builds it cost day 2 about 1.9 s.
 *
 * A blocked Bloom filter: each id sets 4 bits in one 512-bit block (one cache line), chosen by the two halves of the
 * 64-bit fingerprint lib/repeated-ids.ts already takes of every staged id. An id it was given always tests positive;
 * another one does with a probability of about 0.3-0.5 % at BITS_PER_ID (a few more once more ids are added than
 * it was sized for, as a date's late files are). The bits are stored as little-endian 32-bit words.
 */

/** Bits per id the filter is sized for: 16 gives 0.24 % false positives for an evenly filled filter. */
export const BITS_PER_ID = 16;
/** 32-bit words per block: 512 bits, one 64-byte cache line. */
const BLOCK_WORDS = 16;

export class IdFilter {
  private constructor(
    /** Blocks of BLOCK_WORDS words. */
    readonly blocks: number,
    readonly words: Uint32Array,
  ) {}

  /** An empty filter for about `ids` ids. */
  static forIds(ids: number): IdFilter {
    const blocks = Math.max(1, Math.ceil((Math.max(ids, 1) * BITS_PER_ID) / (BLOCK_WORDS * 32)));
    return new IdFilter(blocks, new Uint32Array(blocks * BLOCK_WORDS));
  }

  /** The filter of toBytes(); null when the bytes are not a whole number of blocks. */
  static fromBytes(bytes: Uint8Array): IdFilter | null {
    if (bytes.byteLength === 0 || bytes.byteLength % (BLOCK_WORDS * 4) !== 0) return null;
    const copy = Buffer.from(bytes);
    if (endianness() === 'BE') copy.swap32();
    const words = new Uint32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
    return new IdFilter(words.length / BLOCK_WORDS, words);
  }

  /** The words as little-endian bytes, for ops.event_id_filters.bits. */
  toBytes(): Buffer {
    const bytes = Buffer.from(this.words.buffer, this.words.byteOffset, this.words.byteLength);
    return endianness() === 'BE' ? Buffer.from(bytes).swap32() : bytes;
  }

  /** Adds the id whose fingerprint is (low, high). */
  add(low: number, high: number): void {
    const base = Math.floor((low * this.blocks) / 4294967296) * BLOCK_WORDS;
    const w = this.words;
    let p = high & 511;
    w[base + (p >>> 5)] |= 1 << (p & 31);
    p = (high >>> 9) & 511;
    w[base + (p >>> 5)] |= 1 << (p & 31);
    p = (high >>> 18) & 511;
    w[base + (p >>> 5)] |= 1 << (p & 31);
    p = ((high >>> 27) | (low << 5)) & 511;
    w[base + (p >>> 5)] |= 1 << (p & 31);
  }

  /** False only when the id whose fingerprint is (low, high) was never added. */
  mayHold(low: number, high: number): boolean {
    const base = Math.floor((low * this.blocks) / 4294967296) * BLOCK_WORDS;
    const w = this.words;
    let p = high & 511;
    if ((w[base + (p >>> 5)] & (1 << (p & 31))) === 0) return false;
    p = (high >>> 9) & 511;
    if ((w[base + (p >>> 5)] & (1 << (p & 31))) === 0) return false;
    p = (high >>> 18) & 511;
    if ((w[base + (p >>> 5)] & (1 << (p & 31))) === 0) return false;
    p = ((high >>> 27) | (low << 5)) & 511;
    return (w[base + (p >>> 5)] & (1 << (p & 31))) !== 0;
  }
}

/** A neighbouring date's filter as a stage run reads it: what its candidates are checked against. */
export interface NeighbourFilter {
  date: string;
  /** ops.event_id_filters.generation when it was read: the candidates hold for this one only. */
  generation: number;
  filter: IdFilter;
}

/**
 * The share of a run's staged ids past which a neighbour's candidates are given up (with at least
 * MIN_CANDIDATE_LIMIT): a filter sized for few ids that later runs added many more to (a date's first lake file
 * staged alone, the rest after it) rules out less and less, and its candidates would grow towards every staged id.
 * A healthy filter leaves about 0.3 %; past the limit the neighbour is looked in by the join instead.
 */
export const MAX_CANDIDATE_SHARE = 0.02;
export const MIN_CANDIDATE_LIMIT = 10_000;

/**
 * What a stage run builds while it fingerprints its event_ids (lib/repeated-ids.ts): its date's filter, with every
 * id added (null: the date keeps none, see activities/staging/filters.ts), and for each neighbour filter the ids it
 * may hold, up to `limit` of them.
 */
export class StagedIdFilters {
  /**
   * Per neighbour, in `neighbours` order: the staged ids its filter does not rule out; null once there were more
   * than `limit` (the neighbour is then looked in by the join).
   */
  readonly candidates: (string[] | null)[];

  constructor(
    readonly own: IdFilter | null,
    readonly neighbours: NeighbourFilter[],
    private readonly limit: number = Infinity,
  ) {
    this.candidates = neighbours.map(() => []);
  }

  /** One staged id, its fingerprint (low, high) and its UTF-8 bytes values[from, to). */
  add(low: number, high: number, values: Uint8Array, from: number, to: number): void {
    this.own?.add(low, high);
    for (let i = 0; i < this.neighbours.length; i++) {
      const found = this.candidates[i];
      if (found !== null && this.neighbours[i].filter.mayHold(low, high)) {
        if (found.length >= this.limit) this.candidates[i] = null;
        else found.push(Buffer.from(values.buffer, values.byteOffset + from, to - from).toString('utf8'));
      }
    }
  }
}
