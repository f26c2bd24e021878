import { isUtf8 } from 'node:buffer';

/**
 * The v1 event contract (SPEC section 3): the one schema the producer, the landing and the tests share.
 * Hand-written rather than generated: it runs once per Kafka record and must stay well above 60k records/s.
 * lib/event-schema.ts publishes the same rules as a JSON Schema (schema/event.v1.schema.json), built from the
 * constants below; test/event-schema.test.ts proves the two accept the same records on a fuzzed corpus.
 */

export const SCHEMA_VERSION = 'v1';

export const EVENT_TYPES = [
  'user_signup',
  'profile_update',
  'plan_change',
  'session_start',
  'page_view',
  'add_to_cart',
  'purchase',
  'payment_failed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const DEVICE_TYPES = ['desktop', 'mobile', 'tablet'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

export const PLANS = ['free', 'pro', 'enterprise'] as const;
export type Plan = (typeof PLANS)[number];

/** Event types that must carry the user's full attributes after the event. */
export const USER_EVENT_TYPES: readonly EventType[] = ['user_signup', 'profile_update', 'plan_change'];
/** Event types that must carry a purchase. */
export const PURCHASE_EVENT_TYPES: readonly EventType[] = ['purchase', 'payment_failed'];

/** An event may be at most this far ahead of the landing's clock. */
export const MAX_FUTURE_MS = 24 * 60 * 60 * 1000;

/**
 * The limits of the warehouse, so that a record the landing accepts can always be loaded.
 * Text limits count Unicode code points (as JSON Schema's maxLength does): at 4 bytes each, user_id stays below
 * the 2,704-byte b-tree entry of dim_user and the user tables, and the device triple below dim_device's.
 */
export const TEXT_LIMITS = {
  user_id: 256,
  session_id: 256,
  'device.os': 128,
  'device.browser': 128,
  'context.page': 2048,
  'context.referrer': 2048,
  'user.email': 254,
  'purchase.order_id': 256,
  'purchase.product_id': 256,
} as const;
export type TextField = keyof typeof TEXT_LIMITS;

/**
 * fact_events.amount is numeric(14,2). The amount's shortest decimal form (JavaScript's, e.g. 1.005) is rounded
 * half away from zero to 2 decimals by PostgreSQL's numeric cast (1.005 → 1.01), so the largest amount it holds is
 * 999999999999.99 and anything from 999999999999.995 up would round past it.
 */
export const AMOUNT_EXCLUSIVE_MAXIMUM = 999_999_999_999.995;
/** event_time's year as written: from 2001 (any offset keeps the UTC date inside dim_date, which starts 2000-01-01) to 2099. */
export const EVENT_YEARS = { min: 2001, max: 2099 } as const;
/** A record's raw size: Kafka's default message limit. */
export const MAX_RECORD_BYTES = 1024 * 1024;
/** Nesting of objects and arrays in a record, the record itself being level 1. */
export const MAX_DEPTH = 16;

/** A v1 event as it travels on the topic (JSON value, keyed by user_id). */
export interface RawEventV1 {
  schema_version: 'v1';
  event_id: string;
  event_type: EventType;
  /** ISO-8601 with an offset, e.g. 2024-12-17T09:30:00.123+01:00. */
  event_time: string;
  user_id: string;
  session_id?: string;
  device?: { type: DeviceType; os?: string; browser?: string };
  context?: { country?: string; page?: string; referrer?: string };
  user?: { email: string; plan: Plan; country: string };
  purchase?: { order_id: string; product_id: string; amount: number; currency: string };
}

/** A validated event, flattened to the lake's columns (Kafka coordinates are added by the landing). */
export interface LakeEvent {
  event_id: string;
  schema_version: string;
  event_type: EventType;
  /** Microseconds since the epoch, UTC. */
  event_time_us: number;
  user_id: string;
  session_id: string | null;
  device_type: DeviceType | null;
  device_os: string | null;
  device_browser: string | null;
  country: string | null;
  page: string | null;
  referrer: string | null;
  user_email: string | null;
  user_plan: Plan | null;
  user_country: string | null;
  order_id: string | null;
  product_id: string | null;
  amount: number | null;
  currency: string | null;
}

export type ParseResult =
  { ok: true; event: LakeEvent } | { ok: false; reason: string; eventId?: string; eventTime?: Date };

const EVENT_TYPE_SET = new Set<string>(EVENT_TYPES);
const DEVICE_TYPE_SET = new Set<string>(DEVICE_TYPES);
const PLAN_SET = new Set<string>(PLANS);
const USER_TYPES = new Set<string>(USER_EVENT_TYPES);
const PURCHASE_TYPES = new Set<string>(PURCHASE_EVENT_TYPES);

/** The specification of uuidKind (kept for reference and tests). */
export const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** The specification of parseIsoTimeUs's hand-rolled scan (kept for reference and tests). */
export const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):?(\d{2}))$/;
/**
 * event_time as the JSON Schema states it: what parseIsoTimeUs accepts, with the year within EVENT_YEARS and
 * impossible dates excluded (2001–2099 has a leap year every 4 years).
 */
export const EVENT_TIME_PATTERN =
  '^(?:20(?:0[1-9]|[1-9][0-9])-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)' +
  '|20(?:0[48]|[2468][048]|[13579][26])-02-29)' +
  'T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]{1,9})?)?(?:Z|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])$';
const CURRENCY = /^[A-Z]{3}$/;
const COUNTRY = /^[A-Z]{2}$/;
const EMAIL = /^[^\s@]+@[^\s@]+$/;
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Rejection raised inside the validator; turned into `{ ok: false }` at the boundary. */
class Reject {
  constructor(readonly reason: string) {}
}

function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : typeof value;
}

/** The longest timestamp parseIsoTimeUs accepts: date, time, 9 decimals and a ±HH:MM offset. */
const ISO_TIME_MAX_LENGTH = 35;
/** Room for any text of that length as UTF-8, so that a write is never cut short. */
const isoScratch = Buffer.alloc(ISO_TIME_MAX_LENGTH * 3);

/**
 * Parses an ISO-8601 timestamp that carries an offset ("Z" or ±HH:MM) into microseconds since the epoch (UTC).
 * Returns null when the text is not such a timestamp or names an impossible date.
 */
export function parseIsoTimeUs(text: string): number | null {
  if (text.length > ISO_TIME_MAX_LENGTH) return null;
  // anything but ASCII takes more bytes than characters, and is no timestamp
  if (isoScratch.write(text) !== text.length) return null;
  return parseIsoTimeUsAt(isoScratch, 0, text.length);
}

/** parseIsoTimeUs of the ASCII text in bytes[start, end). */
export function parseIsoTimeUsAt(bytes: Uint8Array, start: number, end: number): number | null {
  // Hand-rolled scan of what ISO_TIME (kept below as the specification) accepts: the regex was 4 % of the landing.
  if (end - start < 17) return null;
  const year = digitsAt(bytes, start, 4);
  const month = digitsAt(bytes, start + 5, 2);
  const day = digitsAt(bytes, start + 8, 2);
  const hour = digitsAt(bytes, start + 11, 2);
  const minute = digitsAt(bytes, start + 14, 2);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0) return null;
  if (bytes[start + 4] !== 45 || bytes[start + 7] !== 45 || bytes[start + 10] !== 84 || bytes[start + 13] !== 58) {
    return null;
  }
  let i = start + 16;
  let second = 0;
  let micros = 0;
  if (bytes[i] === 58 && i < end) {
    second = digitsAt(bytes, i + 1, 2);
    if (second < 0 || i + 3 > end) return null;
    i += 3;
    if (bytes[i] === 46 && i < end) {
      let j = i + 1;
      let frac = 0;
      let fracDigits = 0;
      for (; j < end; j++) {
        const c = bytes[j] - 48;
        if (c < 0 || c > 9) break;
        if (fracDigits < 6) frac = frac * 10 + c;
        fracDigits++;
      }
      if (fracDigits < 1 || fracDigits > 9) return null;
      for (let k = fracDigits; k < 6; k++) frac *= 10;
      micros = frac;
      i = j;
    }
  }
  if (i >= end) return null;
  let offsetMinutes = 0;
  const z = bytes[i];
  if (z === 90) {
    if (i + 1 !== end) return null;
  } else if (z === 43 || z === 45) {
    let k = i + 3;
    if (k > end) return null;
    const oh = digitsAt(bytes, i + 1, 2);
    if (bytes[k] === 58 && k < end) k++;
    if (k + 2 !== end) return null;
    const om = digitsAt(bytes, k, 2);
    if (oh < 0 || om < 0 || oh > 23 || om > 59) return null;
    offsetMinutes = (z === 45 ? -1 : 1) * (oh * 60 + om);
  } else {
    return null;
  }
  if (month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1] || hour > 23 || minute > 59 || second > 59) {
    return null;
  }
  if (month === 2 && day === 29 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0))) return null;
  const seconds = daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60;
  return seconds * 1_000_000 + micros;
}

/** Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** The decimal value of bytes[at, at+count) when it is all ASCII digits, else -1. */
function digitsAt(bytes: Uint8Array, at: number, count: number): number {
  let v = 0;
  for (let i = at; i < at + count; i++) {
    const c = bytes[i] - 48;
    if (!(c >= 0 && c <= 9)) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** The decimal value of text[at, at+count) when it is all ASCII digits, else -1. */
function digits(text: string, at: number, count: number): number {
  let v = 0;
  for (let i = at; i < at + count; i++) {
    const c = text.charCodeAt(i) - 48;
    if (!(c >= 0 && c <= 9)) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** 0 when `s` is not a UUID (8-4-4-4-12 hex digits), 1 when it is in lower case, 2 when it has upper-case digits. */
function uuidKind(s: string): 0 | 1 | 2 {
  if (s.length !== 36) return 0;
  let upper = false;
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return 0;
    } else if ((c >= 48 && c <= 57) || (c >= 97 && c <= 102)) {
      // lower-case hex digit
    } else if (c >= 65 && c <= 70) {
      upper = true;
    } else {
      return 0;
    }
  }
  return upper ? 2 : 1;
}

/** Code points of a string (lone surrogates count one each, as JSON Schema validators count them). */
function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/**
 * Whether the record being validated has a \u escape. U+0000 and lone surrogates can only reach a parsed string
 * through one (raw control characters are not JSON; decoded UTF-8 has no lone surrogates), so records without
 * any skip those per-field checks. Set by parseEvent for the record it validates.
 */
let textHasEscapes = true;

/** String.prototype.isWellFormed (ES2024, Node 20+), not in this project's ES2022 lib typings. */
type WellFormed = { isWellFormed(): boolean };

/** Text PostgreSQL can store: no U+0000, no lone surrogate (not encodable as UTF-8), at most `max` code points. */
function checkText(value: string, path: string, max: number | null): string {
  if (max !== null && value.length > max) {
    const n = codePoints(value);
    if (n > max) throw new Reject(`field "${path}" is ${n} characters long, above its limit of ${max}`);
  }
  if (!textHasEscapes) return value;
  if (value.indexOf('\0') !== -1) {
    throw new Reject(`field "${path}" contains U+0000, which PostgreSQL text cannot hold`);
  }
  if (!(value as unknown as WellFormed).isWellFormed()) {
    throw new Reject(`field "${path}" contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid Unicode`);
  }
  return value;
}

function requireString(value: unknown, path: string, max: number | null = null): string {
  if (value === undefined || value === null) throw new Reject(`missing required field "${path}"`);
  if (typeof value !== 'string') throw new Reject(`field "${path}" must be a string, got ${show(value)}`);
  if (value.length === 0) throw new Reject(`field "${path}" must not be empty`);
  return checkText(value, path, max);
}

function optionalString(value: unknown, path: string, max: number | null): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new Reject(`field "${path}" must be a string, got ${show(value)}`);
  return checkText(value, path, max);
}

function optionalObject(value: unknown, path: string): Record<string, unknown> | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new Reject(`field "${path}" must be an object, got ${show(value)}`);
  }
  return value as Record<string, unknown>;
}

function checkCountry(value: string | null, path: string): string | null {
  if (value !== null && !(value.length === 2 && COUNTRY.test(value))) {
    throw new Reject(`field "${path}" must be an ISO 3166-1 alpha-2 code like "DE", got ${show(value)}`);
  }
  return value;
}

/** The event_time in bytes[start, end) in microseconds when the contract accepts it at `nowMs` (readEventTime's rules), else null. */
export function acceptedEventTimeUsAt(bytes: Uint8Array, start: number, end: number, nowMs: number): number | null {
  const us = parseIsoTimeUsAt(bytes, start, end);
  if (us === null) return null;
  const year = digitsAt(bytes, start, 4);
  if (year < EVENT_YEARS.min || year > EVENT_YEARS.max || us / 1000 > nowMs + MAX_FUTURE_MS) return null;
  return us;
}

function readEventTime(obj: Record<string, unknown>, nowMs: number): number {
  const text = requireString(obj.event_time, 'event_time');
  const us = parseIsoTimeUs(text);
  if (us === null) {
    throw new Reject(
      `field "event_time" must be ISO-8601 with an offset like "2024-12-17T09:30:00Z", got ${show(text)}`,
    );
  }
  const year = digits(text, 0, 4);
  if (year < EVENT_YEARS.min || year > EVENT_YEARS.max) {
    throw new Reject(
      `field "event_time" must be in the years ${EVENT_YEARS.min}-${EVENT_YEARS.max}, got ${show(text)}`,
    );
  }
  if (us / 1000 > nowMs + MAX_FUTURE_MS) throw new Reject(`event_time ${text} is more than 1 day in the future`);
  return us;
}

function readDevice(obj: Record<string, unknown>, event: LakeEvent): void {
  const device = optionalObject(obj.device, 'device');
  if (device === null) return;
  const type = requireString(device.type, 'device.type');
  if (!DEVICE_TYPE_SET.has(type)) {
    throw new Reject(`field "device.type" must be one of ${DEVICE_TYPES.join('|')}, got ${show(type)}`);
  }
  event.device_type = type as DeviceType;
  event.device_os = optionalString(device.os, 'device.os', TEXT_LIMITS['device.os']);
  event.device_browser = optionalString(device.browser, 'device.browser', TEXT_LIMITS['device.browser']);
}

function readContext(obj: Record<string, unknown>, event: LakeEvent): void {
  const context = optionalObject(obj.context, 'context');
  if (context === null) return;
  event.country = checkCountry(optionalString(context.country, 'context.country', null), 'context.country');
  event.page = optionalString(context.page, 'context.page', TEXT_LIMITS['context.page']);
  event.referrer = optionalString(context.referrer, 'context.referrer', TEXT_LIMITS['context.referrer']);
}

function readUser(obj: Record<string, unknown>, event: LakeEvent): void {
  const user = optionalObject(obj.user, 'user');
  if (user === null) {
    if (USER_TYPES.has(event.event_type)) throw new Reject(`missing required field "user" on ${event.event_type}`);
    return;
  }
  const email = requireString(user.email, 'user.email', TEXT_LIMITS['user.email']);
  if (!EMAIL.test(email)) throw new Reject(`field "user.email" must be an email address, got ${show(email)}`);
  const plan = requireString(user.plan, 'user.plan');
  if (!PLAN_SET.has(plan)) throw new Reject(`field "user.plan" must be one of ${PLANS.join('|')}, got ${show(plan)}`);
  event.user_email = email;
  event.user_plan = plan as Plan;
  event.user_country = checkCountry(requireString(user.country, 'user.country'), 'user.country');
}

function readPurchase(obj: Record<string, unknown>, event: LakeEvent): void {
  const purchase = optionalObject(obj.purchase, 'purchase');
  if (purchase === null) {
    if (PURCHASE_TYPES.has(event.event_type))
      throw new Reject(`missing required field "purchase" on ${event.event_type}`);
    return;
  }
  event.order_id = requireString(purchase.order_id, 'purchase.order_id', TEXT_LIMITS['purchase.order_id']);
  event.product_id = requireString(purchase.product_id, 'purchase.product_id', TEXT_LIMITS['purchase.product_id']);
  const amount = purchase.amount;
  if (amount === undefined || amount === null) throw new Reject('missing required field "purchase.amount"');
  if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
    throw new Reject(`field "purchase.amount" must be a number >= 0, got ${show(amount)}`);
  }
  if (amount >= AMOUNT_EXCLUSIVE_MAXIMUM) {
    throw new Reject(
      `field "purchase.amount" must be below ${AMOUNT_EXCLUSIVE_MAXIMUM} (numeric(14,2) holds at most 999999999999.99), got ${show(amount)}`,
    );
  }
  event.amount = amount;
  const currency = requireString(purchase.currency, 'purchase.currency');
  if (!CURRENCY.test(currency)) {
    throw new Reject(
      `field "purchase.currency" must be an ISO-4217 code of 3 upper-case letters, got ${show(currency)}`,
    );
  }
  event.currency = currency;
}

/**
 * The contract's rules on a parsed record. lib/event-bytes.ts (the landing's fast path) applies the same rules to a
 * record's bytes: a rule added or changed here must change there too, or the fast path would land what this rejects
 * (test/event-bytes.test.ts checks the two agree on the fuzzed corpus, which has to cover the new rule).
 */
function validate(obj: Record<string, unknown>, nowMs: number): LakeEvent {
  const version = requireString(obj.schema_version, 'schema_version');
  if (version !== SCHEMA_VERSION) throw new Reject(`unknown schema_version ${show(version)}`);
  const eventId = requireString(obj.event_id, 'event_id');
  const idKind = uuidKind(eventId);
  if (idKind === 0) throw new Reject(`field "event_id" must be a UUID, got ${show(eventId)}`);
  const eventType = requireString(obj.event_type, 'event_type');
  if (!EVENT_TYPE_SET.has(eventType)) throw new Reject(`unknown event_type ${show(eventType)}`);
  const event: LakeEvent = {
    event_id: idKind === 2 ? eventId.toLowerCase() : eventId,
    schema_version: version,
    event_type: eventType as EventType,
    event_time_us: readEventTime(obj, nowMs),
    user_id: requireString(obj.user_id, 'user_id', TEXT_LIMITS.user_id),
    session_id: optionalString(obj.session_id, 'session_id', TEXT_LIMITS.session_id),
    device_type: null,
    device_os: null,
    device_browser: null,
    country: null,
    page: null,
    referrer: null,
    user_email: null,
    user_plan: null,
    user_country: null,
    order_id: null,
    product_id: null,
    amount: null,
    currency: null,
  };
  readDevice(obj, event);
  readContext(obj, event);
  readUser(obj, event);
  readPurchase(obj, event);
  return event;
}

/** What can still be told about a rejected record: its id and time, when they are readable and within limits. */
function salvage(obj: Record<string, unknown>): { eventId?: string; eventTime?: Date } {
  const out: { eventId?: string; eventTime?: Date } = {};
  if (typeof obj.event_id === 'string' && uuidKind(obj.event_id) !== 0) out.eventId = obj.event_id.toLowerCase();
  if (typeof obj.event_time === 'string') {
    const us = parseIsoTimeUs(obj.event_time);
    const year = digits(obj.event_time, 0, 4);
    if (us !== null && year >= EVENT_YEARS.min && year <= EVENT_YEARS.max)
      out.eventTime = new Date(Math.floor(us / 1000));
  }
  return out;
}

/**
 * The nesting depth of a JSON text when it exceeds `max`, else 0. JSON.parse itself copes with any depth, but a
 * deep value would overflow the stack of whatever walks it later. Most records have a handful of brackets: only
 * those with more than `max` opening brackets are scanned (String#indexOf, much cheaper than a loop or Buffer's).
 */
function depthAbove(text: string, max: number): number {
  let opens = 0;
  for (let i = text.indexOf('{'); i !== -1 && opens <= max; i = text.indexOf('{', i + 1)) opens++;
  for (let i = text.indexOf('['); i !== -1 && opens <= max; i = text.indexOf('[', i + 1)) opens++;
  if (opens <= max) return 0;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return 0;
}

/**
 * Validates one Kafka record value against the v1 contract.
 * `now` bounds how far in the future event_time may be. Never throws: a bad record yields a precise reason.
 */
export function parseEvent(raw: Buffer, now: Date): ParseResult {
  if (raw.length > MAX_RECORD_BYTES) {
    return { ok: false, reason: `record is ${raw.length} bytes, above the limit of ${MAX_RECORD_BYTES} bytes` };
  }
  const text = raw.toString(); // UTF-8; without arguments Buffer#toString skips its encoding lookup
  // invalid UTF-8 decodes to U+FFFD: only then is the byte check needed
  if (text.indexOf('\uFFFD') !== -1 && !isUtf8(raw)) return { ok: false, reason: 'record is not valid UTF-8' };
  if (depthAbove(text, MAX_DEPTH) > 0) {
    return { ok: false, reason: `record nests objects and arrays more than ${MAX_DEPTH} levels deep (the limit)` };
  }
  textHasEscapes = text.indexOf('\\u') !== -1;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not valid JSON: ${(err as Error).message}` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, reason: `record must be a JSON object, got ${kindOf(parsed)}` };
  }
  const obj = parsed as Record<string, unknown>;
  try {
    return { ok: true, event: validate(obj, now.getTime()) };
  } catch (err) {
    if (!(err instanceof Reject)) throw err;
    return { ok: false, reason: err.reason, ...salvage(obj) };
  }
}

/** The UTC date (YYYY-MM-DD) of a time in microseconds since the epoch. */
export function utcDateOfUs(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString().slice(0, 10);
}
