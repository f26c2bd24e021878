import { isUtf8 } from 'node:buffer';
import {
  AMOUNT_EXCLUSIVE_MAXIMUM,
  DEVICE_TYPES,
  EVENT_TYPES,
  MAX_RECORD_BYTES,
  PLANS,
  PURCHASE_EVENT_TYPES,
  SCHEMA_VERSION,
  TEXT_LIMITS,
  USER_EVENT_TYPES,
  acceptedEventTimeUsAt,
} from './events';

/**
 * The landing's fast path for the common record: one pass over a Kafka record's bytes notes where each field's value
 * lies, and the lake's columns then copy those bytes. No string or object is made per field, which is what
 * JSON.parse, the validator and the columns' UTF-8 encoding cost between them (7.6 µs a record here).
 *
 * It takes only records that are plainly valid under the v1 contract (lib/events.ts): a JSON object holding the
 * contract's members, each at most once, its strings without escapes or control characters. Anything else (an escape,
 * an unknown member, any rule broken) is declined and goes through parseEvent, which validates it in full and gives
 * the reason. A record it takes yields the same row, byte for byte, as parseEvent's event would
 * (test/event-bytes.test.ts compares the two on the fuzzed corpus).
 */

/** The fields of a LakeEvent whose value is noted, in its order. */
export const FIELD = {
  schema_version: 0,
  event_id: 1,
  event_type: 2,
  event_time: 3,
  user_id: 4,
  session_id: 5,
  device_type: 6,
  device_os: 7,
  device_browser: 8,
  country: 9,
  page: 10,
  referrer: 11,
  user_email: 12,
  user_plan: 13,
  user_country: 14,
  order_id: 15,
  product_id: 16,
  amount: 17,
  currency: 18,
} as const;
const FIELDS = 19;
/** The nested objects, as bits above the fields' own in `seen` and `objects`. */
const DEVICE = 1 << 19;
const CONTEXT = 1 << 20;
const USER = 1 << 21;
const PURCHASE = 1 << 22;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN = 0x7b;
const CLOSE = 0x7d;

/** A member name the fast path knows: a field (`members` null) or a nested object (its members). */
interface Member {
  name: Uint8Array;
  bit: number;
  field: number;
  members: Member[] | null;
}

function field(name: string, index: number): Member {
  return { name: Buffer.from(name, 'latin1'), bit: 1 << index, field: index, members: null };
}

function object(name: string, bit: number, members: Member[]): Member {
  return { name: Buffer.from(name, 'latin1'), bit, field: -1, members };
}

const RECORD: Member[] = [
  field('schema_version', FIELD.schema_version),
  field('event_id', FIELD.event_id),
  field('event_type', FIELD.event_type),
  field('event_time', FIELD.event_time),
  field('user_id', FIELD.user_id),
  field('session_id', FIELD.session_id),
  object('device', DEVICE, [
    field('type', FIELD.device_type),
    field('os', FIELD.device_os),
    field('browser', FIELD.device_browser),
  ]),
  object('context', CONTEXT, [
    field('country', FIELD.country),
    field('page', FIELD.page),
    field('referrer', FIELD.referrer),
  ]),
  object('user', USER, [
    field('email', FIELD.user_email),
    field('plan', FIELD.user_plan),
    field('country', FIELD.user_country),
  ]),
  object('purchase', PURCHASE, [
    field('order_id', FIELD.order_id),
    field('product_id', FIELD.product_id),
    field('amount', FIELD.amount),
    field('currency', FIELD.currency),
  ]),
];

const bytesOf = (names: readonly string[]): Uint8Array[] => names.map((n) => Buffer.from(n, 'latin1'));
const VERSION = Buffer.from(SCHEMA_VERSION, 'latin1');
const EVENT_TYPE_NAMES = bytesOf(EVENT_TYPES);
const DEVICE_TYPE_NAMES = bytesOf(DEVICE_TYPES);
const PLAN_NAMES = bytesOf(PLANS);
/** By index into EVENT_TYPES: whether the type must carry a user, a purchase. */
const NEEDS_USER = EVENT_TYPES.map((t) => USER_EVENT_TYPES.includes(t));
const NEEDS_PURCHASE = EVENT_TYPES.map((t) => PURCHASE_EVENT_TYPES.includes(t));

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipSpace(raw: Buffer, i: number, n: number): number {
  while (i < n && isSpace(raw[i])) i++;
  return i;
}

function isNullAt(raw: Buffer, i: number, n: number): boolean {
  return i + 4 <= n && raw[i] === 0x6e && raw[i + 1] === 0x75 && raw[i + 2] === 0x6c && raw[i + 3] === 0x6c;
}

function sameBytes(raw: Buffer, start: number, end: number, name: Uint8Array): boolean {
  if (end - start !== name.length) return false;
  for (let k = 0; k < name.length; k++) if (raw[start + k] !== name[k]) return false;
  return true;
}

/**
 * The index of the member whose quoted name starts at raw[at] (after its opening quote), or -1. Records list their
 * members in one order, so the member after the previous one is tried first.
 */
function memberAt(raw: Buffer, at: number, n: number, members: Member[], previous: number): number {
  const next = previous + 1 < members.length ? previous + 1 : 0;
  const name = members[next].name;
  if (raw[at + name.length] === QUOTE && sameBytes(raw, at, at + name.length, name)) return next;
  let end = at;
  while (end < n && raw[end] !== QUOTE) end++;
  for (let k = 0; k < members.length; k++) if (sameBytes(raw, at, end, members[k].name)) return k;
  return -1;
}

/** What a byte means inside a string: 0 nothing, 1 its end or what the fast path declines, 2 not ASCII. */
const STRING_BYTE = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_BYTE[c] = 1;
STRING_BYTE[QUOTE] = 1;
STRING_BYTE[BACKSLASH] = 1;
for (let c = 0x80; c < 0x100; c++) STRING_BYTE[c] = 2;

/** The index of the name raw[start, end) is, or -1. */
function nameIndex(raw: Buffer, start: number, end: number, names: Uint8Array[]): number {
  for (let k = 0; k < names.length; k++) if (sameBytes(raw, start, end, names[k])) return k;
  return -1;
}

/** A canonical UUID in lower case (parseEvent lowers upper-case ones: those are left to it). */
function isLowerUuid(raw: Buffer, start: number, end: number): boolean {
  if (end - start !== 36) return false;
  for (let k = 0; k < 36; k++) {
    const c = raw[start + k];
    if (k === 8 || k === 13 || k === 18 || k === 23) {
      if (c !== 0x2d) return false;
    } else if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** `length` upper-case ASCII letters (a country or currency code). */
function isUpperCode(raw: Buffer, start: number, end: number, length: number): boolean {
  if (end - start !== length) return false;
  for (let k = start; k < end; k++) if (raw[k] < 0x41 || raw[k] > 0x5a) return false;
  return true;
}

/** ASCII without spaces, with one "@" neither first nor last (what /^[^\s@]+@[^\s@]+$/ accepts of ASCII). */
function isPlainEmail(raw: Buffer, start: number, end: number): boolean {
  let at = -1;
  for (let k = start; k < end; k++) {
    const c = raw[k];
    if (c === 0x20 || c >= 0x80) return false; // control characters never get this far
    if (c === 0x40) {
      if (at !== -1) return false;
      at = k;
    }
  }
  return at > start && at < end - 1;
}

/**
 * One record's scan: where each field's value lies in the record (`start(f)`, `end(f)`, start -1 when absent or null),
 * its event time and amount. One per landing, reused record after record.
 */
export class EventScan {
  /** [start, end) of each field's value in the record. */
  readonly spans = new Int32Array(2 * FIELDS);
  eventTimeUs = 0;
  amount = 0;
  /** Fields and objects met, to decline a repeated member (JSON.parse would keep the last). */
  private seen = 0;
  /** Nested objects present and not null. */
  private objects = 0;
  private nonAscii = false;

  start(f: number): number {
    return this.spans[2 * f];
  }

  end(f: number): number {
    return this.spans[2 * f + 1];
  }

  /** Scans and validates `raw`; true when it is a valid event the fast path takes, false to leave it to parseEvent. */
  read(raw: Buffer, nowMs: number): boolean {
    const n = raw.length;
    if (n > MAX_RECORD_BYTES) return false;
    const spans = this.spans;
    for (let k = 0; k < spans.length; k++) spans[k] = -1;
    this.seen = 0;
    this.objects = 0;
    this.nonAscii = false;
    const end = this.members(raw, skipSpace(raw, 0, n), n, RECORD);
    if (end < 0 || skipSpace(raw, end, n) !== n) return false;
    if (this.nonAscii && !isUtf8(raw)) return false;
    return this.valid(raw, nowMs);
  }

  /** Reads an object of `members` starting at raw[i] ("{"); returns the index after its "}", or -1. */
  private members(raw: Buffer, i: number, n: number, members: Member[]): number {
    if (raw[i] !== OPEN) return -1;
    i = skipSpace(raw, i + 1, n);
    if (raw[i] === CLOSE) return i + 1;
    let index = -1;
    for (;;) {
      if (raw[i] !== QUOTE) return -1;
      index = memberAt(raw, i + 1, n, members, index);
      if (index < 0) return -1;
      const member = members[index];
      if ((this.seen & member.bit) !== 0) return -1;
      this.seen |= member.bit;
      i = skipSpace(raw, i + 2 + member.name.length, n);
      if (raw[i] !== COLON) return -1;
      i = skipSpace(raw, i + 1, n);
      if (isNullAt(raw, i, n)) {
        i += 4;
      } else if (member.members !== null) {
        this.objects |= member.bit;
        i = this.members(raw, i, n, member.members);
      } else if (member.field === FIELD.amount) {
        i = this.number(raw, i, n);
      } else if (raw[i] === QUOTE) {
        i = this.string(raw, i + 1, n, member.field);
      } else {
        return -1;
      }
      if (i < 0) return -1;
      i = skipSpace(raw, i, n);
      if (raw[i] === CLOSE) return i + 1;
      if (raw[i] !== COMMA) return -1;
      i = skipSpace(raw, i + 1, n);
    }
  }

  /** A string's contents from raw[i] to its closing quote; -1 at an escape or a control character. */
  private string(raw: Buffer, i: number, n: number, f: number): number {
    const start = i;
    for (; i < n; i++) {
      const kind = STRING_BYTE[raw[i]];
      if (kind === 0) continue;
      if (kind === 2) this.nonAscii = true;
      else if (raw[i] === QUOTE) break;
      else return -1;
    }
    if (i >= n) return -1;
    this.spans[2 * f] = start;
    this.spans[2 * f + 1] = i;
    return i + 1;
  }

  /** A non-negative JSON number (the grammar of RFC 8259 without the minus sign); returns the index after it. */
  private number(raw: Buffer, i: number, n: number): number {
    const start = i;
    if (raw[i] === 0x30) i++;
    else if (raw[i] >= 0x31 && raw[i] <= 0x39) i = digitsEnd(raw, i, n);
    else return -1;
    if (raw[i] === 0x2e) {
      const after = digitsEnd(raw, i + 1, n);
      if (after === i + 1) return -1;
      i = after;
    }
    if (raw[i] === 0x65 || raw[i] === 0x45) {
      i++;
      if (raw[i] === 0x2b || raw[i] === 0x2d) i++;
      const after = digitsEnd(raw, i, n);
      if (after === i) return -1;
      i = after;
    }
    this.spans[2 * FIELD.amount] = start;
    this.spans[2 * FIELD.amount + 1] = i;
    return i;
  }

  private present(f: number): boolean {
    return this.spans[2 * f] >= 0;
  }

  /** A text field within its limit in code points (counted only when its bytes exceed the limit). */
  private fits(raw: Buffer, f: number, max: number): boolean {
    const start = this.spans[2 * f];
    const end = this.spans[2 * f + 1];
    if (end - start <= max) return true;
    if (!this.nonAscii) return false;
    let points = 0;
    for (let k = start; k < end; k++) if ((raw[k] & 0xc0) !== 0x80) points++;
    return points <= max;
  }

  /** A required text: present, not empty, within its limit. */
  private required(raw: Buffer, f: number, max: number): boolean {
    return this.present(f) && this.end(f) > this.start(f) && this.fits(raw, f, max);
  }

  /** An optional text: absent, or within its limit. */
  private optional(raw: Buffer, f: number, max: number): boolean {
    return !this.present(f) || this.fits(raw, f, max);
  }

  private oneOf(raw: Buffer, f: number, names: Uint8Array[]): number {
    return this.present(f) ? nameIndex(raw, this.start(f), this.end(f), names) : -1;
  }

  /** The rules of lib/events.ts's validate, on the noted values. */
  private valid(raw: Buffer, nowMs: number): boolean {
    const objects = this.objects;
    if (!this.present(FIELD.schema_version)) return false;
    if (!sameBytes(raw, this.start(FIELD.schema_version), this.end(FIELD.schema_version), VERSION)) return false;
    if (!this.present(FIELD.event_id) || !isLowerUuid(raw, this.start(FIELD.event_id), this.end(FIELD.event_id))) {
      return false;
    }
    const type = this.oneOf(raw, FIELD.event_type, EVENT_TYPE_NAMES);
    if (type < 0 || !this.present(FIELD.event_time)) return false;
    const time = acceptedEventTimeUsAt(raw, this.start(FIELD.event_time), this.end(FIELD.event_time), nowMs);
    if (time === null) return false;
    this.eventTimeUs = time;
    if (!this.required(raw, FIELD.user_id, TEXT_LIMITS.user_id)) return false;
    if (!this.optional(raw, FIELD.session_id, TEXT_LIMITS.session_id)) return false;
    if ((objects & DEVICE) !== 0) {
      if (this.oneOf(raw, FIELD.device_type, DEVICE_TYPE_NAMES) < 0) return false;
      if (!this.optional(raw, FIELD.device_os, TEXT_LIMITS['device.os'])) return false;
      if (!this.optional(raw, FIELD.device_browser, TEXT_LIMITS['device.browser'])) return false;
    }
    if ((objects & CONTEXT) !== 0) {
      const country = FIELD.country;
      if (this.present(country) && !isUpperCode(raw, this.start(country), this.end(country), 2)) return false;
      if (!this.optional(raw, FIELD.page, TEXT_LIMITS['context.page'])) return false;
      if (!this.optional(raw, FIELD.referrer, TEXT_LIMITS['context.referrer'])) return false;
    }
    if ((objects & USER) !== 0) {
      const email = FIELD.user_email;
      if (!this.required(raw, email, TEXT_LIMITS['user.email'])) return false;
      if (!isPlainEmail(raw, this.start(email), this.end(email))) return false;
      if (this.oneOf(raw, FIELD.user_plan, PLAN_NAMES) < 0) return false;
      const country = FIELD.user_country;
      if (!this.present(country) || !isUpperCode(raw, this.start(country), this.end(country), 2)) return false;
    } else if (NEEDS_USER[type]) {
      return false;
    }
    if ((objects & PURCHASE) !== 0) {
      if (!this.required(raw, FIELD.order_id, TEXT_LIMITS['purchase.order_id'])) return false;
      if (!this.required(raw, FIELD.product_id, TEXT_LIMITS['purchase.product_id'])) return false;
      if (!this.present(FIELD.amount)) return false;
      // the same conversion as JSON.parse's: the nearest double to the decimal text
      const amount = Number(raw.toString('latin1', this.start(FIELD.amount), this.end(FIELD.amount)));
      if (!Number.isFinite(amount) || amount >= AMOUNT_EXCLUSIVE_MAXIMUM) return false;
      this.amount = amount;
      const currency = FIELD.currency;
      if (!this.present(currency) || !isUpperCode(raw, this.start(currency), this.end(currency), 3)) return false;
    } else if (NEEDS_PURCHASE[type]) {
      return false;
    }
    return true;
  }
}

function digitsEnd(raw: Buffer, i: number, n: number): number {
  while (i < n && raw[i] >= 0x30 && raw[i] <= 0x39) i++;
  return i;
}
