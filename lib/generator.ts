import { type EventType, type Plan, type RawEventV1, SCHEMA_VERSION } from './events';

/**
 * A deterministic generator of realistic v1 events: users sign up, start sessions on their devices, browse,
 * add to cart, buy or fail to pay, change plans and profiles — with a daily and a weekly rhythm.
 * The same options (seed included) always yield the same records, byte for byte: its own PRNG, no clock.
 */

export interface GenerateOptions {
  /** Records to generate, bad ones included. */
  events: number;
  /** Days covered, starting at `start`. */
  days: number;
  /** First day, YYYY-MM-DD (UTC). */
  start: string;
  seed: number;
  /** Share of records (0..1) replaced by a record the contract rejects. */
  badRate: number;
  /** Every day gets the weekday rhythm, so each day has the same number of events (a benchmark's history). */
  flatWeek?: boolean;
  /**
   * A steady world of this many users (a benchmark's history): every day draws its sessions from the same number
   * of users, so day 30 has about as many distinct users as day 1. Each user signs up on their first session; a new
   * user takes the place of a random one (who never comes back) at the usual rate of new users. Without it the
   * world only grows: every new user stays, and each day sees more distinct users than the one before.
   */
  users?: number;
}

export const BAD_KINDS = [
  'not_json',
  'missing_field',
  'wrong_type',
  'unknown_event_type',
  'unknown_schema_version',
  'far_future',
] as const;
export type BadKind = (typeof BAD_KINDS)[number];

export interface GeneratedRecord {
  /** Kafka key: the user_id. */
  key: string;
  value: Buffer;
  expected: {
    /** The lake date the record belongs under; null when its event_time is unusable (the landing then uses the Kafka timestamp). */
    date: string | null;
    bad: BadKind | null;
  };
}

/** mulberry32: small, fast, good enough for simulation, and identical on every platform. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function word(rand: () => number): number {
  return Math.floor(rand() * 4294967296) >>> 0;
}

function hex32(n: number): string {
  return HEX[n >>> 24] + HEX[(n >>> 16) & 255] + HEX[(n >>> 8) & 255] + HEX[n & 255];
}

/** A version-4 UUID drawn from the PRNG. */
export function uuidFrom(rand: () => number): string {
  const a = hex32(word(rand));
  const b = hex32(word(rand));
  const c = hex32(word(rand));
  const d = hex32(word(rand));
  return `${a}-${b.slice(0, 4)}-4${b.slice(5, 8)}-${HEX[(parseInt(c.slice(0, 2), 16) & 0x3f) | 0x80]}${c.slice(2, 4)}-${c.slice(4)}${d}`;
}

// --- the simulated world -------------------------------------------------------------------------

interface Country {
  code: string;
  currency: string;
  /** Offset the users' clients put on their timestamps. */
  offset: string;
  offsetMinutes: number;
  weight: number;
}

const COUNTRIES: Country[] = [
  { code: 'US', currency: 'USD', offset: '-05:00', offsetMinutes: -300, weight: 30 },
  { code: 'DE', currency: 'EUR', offset: '+01:00', offsetMinutes: 60, weight: 14 },
  { code: 'GB', currency: 'GBP', offset: 'Z', offsetMinutes: 0, weight: 12 },
  { code: 'FR', currency: 'EUR', offset: '+01:00', offsetMinutes: 60, weight: 9 },
  { code: 'IN', currency: 'INR', offset: '+05:30', offsetMinutes: 330, weight: 9 },
  { code: 'BR', currency: 'BRL', offset: '-03:00', offsetMinutes: -180, weight: 7 },
  { code: 'JP', currency: 'JPY', offset: '+09:00', offsetMinutes: 540, weight: 6 },
  { code: 'CA', currency: 'CAD', offset: '-05:00', offsetMinutes: -300, weight: 5 },
  { code: 'AU', currency: 'AUD', offset: '+10:00', offsetMinutes: 600, weight: 4 },
  { code: 'NL', currency: 'EUR', offset: '+01:00', offsetMinutes: 60, weight: 4 },
];

const DEVICES = [
  { type: 'desktop', os: 'Windows', browser: 'Chrome', weight: 22 },
  { type: 'desktop', os: 'macOS', browser: 'Safari', weight: 10 },
  { type: 'desktop', os: 'macOS', browser: 'Chrome', weight: 8 },
  { type: 'desktop', os: 'Linux', browser: 'Firefox', weight: 3 },
  { type: 'desktop', os: 'Windows', browser: 'Edge', weight: 6 },
  { type: 'mobile', os: 'iOS', browser: 'Safari', weight: 22 },
  { type: 'mobile', os: 'Android', browser: 'Chrome', weight: 20 },
  { type: 'mobile', os: 'Android', browser: 'Samsung Internet', weight: 4 },
  { type: 'tablet', os: 'iPadOS', browser: 'Safari', weight: 4 },
  { type: 'tablet', os: 'Android', browser: 'Chrome', weight: 1 },
] as const;
type Device = (typeof DEVICES)[number];

const REFERRERS = [
  'https://www.google.com/',
  'https://www.bing.com/',
  'https://t.co/',
  'https://news.ycombinator.com/',
  'newsletter',
  'direct',
];
const CONTENT_PAGES = ['/', '/pricing', '/about', '/blog', '/blog/release-notes', '/help', '/search'];
const PRODUCTS = Array.from({ length: 40 }, (_, i) => ({
  id: `p-${100 + i}`,
  price: Math.round((5 + ((i * 37) % 95)) * 100 - 1) / 100,
}));
/** Rough exchange rates from USD, so amounts look local. */
const FX: Record<string, number> = { USD: 1, EUR: 0.92, GBP: 0.79, INR: 83, BRL: 5, JPY: 150, CAD: 1.36, AUD: 1.52 };
const PLAN_UP: Record<Plan, Plan> = { free: 'pro', pro: 'enterprise', enterprise: 'enterprise' };
const PLAN_DOWN: Record<Plan, Plan> = { free: 'free', pro: 'free', enterprise: 'pro' };

/** Relative traffic per UTC hour on weekdays and weekends (nights are quiet, weekends start later). */
const WEEKDAY_HOURS = [3, 2, 2, 2, 2, 3, 5, 8, 10, 11, 12, 12, 13, 14, 15, 15, 14, 13, 13, 14, 14, 12, 8, 5];
const WEEKEND_HOURS = [4, 3, 2, 2, 2, 2, 3, 4, 6, 8, 10, 11, 12, 12, 12, 12, 12, 12, 12, 13, 13, 11, 8, 6];
const WEEKEND_FACTOR = 0.7;

interface User {
  id: string;
  email: string;
  plan: Plan;
  country: Country;
  devices: Device[];
}

function pickWeighted<T extends { weight: number }>(items: readonly T[], rand: () => number): T {
  const total = items.reduce((s, i) => s + i.weight, 0);
  let r = rand() * total;
  for (const item of items) {
    r -= item.weight;
    if (r < 0) return item;
  }
  return items[items.length - 1];
}

function pick<T>(items: readonly T[], rand: () => number): T {
  return items[Math.floor(rand() * items.length)];
}

const PAD2 = Array.from({ length: 60 }, (_, i) => i.toString().padStart(2, '0'));
const PAD3 = Array.from({ length: 1000 }, (_, i) => i.toString().padStart(3, '0'));
const DAY_NAMES = new Map<number, string>();

/** YYYY-MM-DD of a day number since the epoch, cached: formatting dates is hot in the generator. */
function dayName(day: number): string {
  let name = DAY_NAMES.get(day);
  if (name === undefined) {
    name = new Date(day * 86_400_000).toISOString().slice(0, 10);
    DAY_NAMES.set(day, name);
  }
  return name;
}

/** Formats a UTC instant as the client would send it: local time with the client's offset. */
function clientTime(ms: number, country: Country): string {
  const local = ms + country.offsetMinutes * 60_000;
  const day = Math.floor(local / 86_400_000);
  let rest = local - day * 86_400_000;
  const millis = rest % 1000;
  rest = (rest - millis) / 1000;
  const seconds = rest % 60;
  rest = (rest - seconds) / 60;
  const minutes = rest % 60;
  const hours = (rest - minutes) / 60;
  return `${dayName(day)}T${PAD2[hours]}:${PAD2[minutes]}:${PAD2[seconds]}.${PAD3[millis]}${country.offset}`;
}

/**
 * JSON of a generated event, written out by hand: about twice as fast as JSON.stringify, and the producer must
 * reach 50k events/s. Same bytes as JSON.stringify (a test checks it): generated strings never need escaping.
 */
export function eventJson(e: RawEventV1): string {
  let json = `{"schema_version":"${e.schema_version}","event_id":"${e.event_id}","event_type":"${e.event_type}","event_time":"${e.event_time}","user_id":"${e.user_id}"`;
  if (e.session_id !== undefined) json += `,"session_id":"${e.session_id}"`;
  if (e.device !== undefined)
    json += `,"device":{"type":"${e.device.type}","os":"${e.device.os}","browser":"${e.device.browser}"}`;
  if (e.context !== undefined)
    json += `,"context":{"country":"${e.context.country}","page":"${e.context.page}","referrer":"${e.context.referrer}"}`;
  if (e.user !== undefined)
    json += `,"user":{"email":"${e.user.email}","plan":"${e.user.plan}","country":"${e.user.country}"}`;
  if (e.purchase !== undefined) {
    const p = e.purchase;
    json += `,"purchase":{"order_id":"${p.order_id}","product_id":"${p.product_id}","amount":${p.amount},"currency":"${p.currency}"}`;
  }
  return `${json}}`;
}

/** Events generated per UTC hour, summing exactly to `events`, shaped by the daily and weekly rhythm. */
function hourlyQuotas(events: number, days: number, startMs: number, flatWeek: boolean): number[] {
  const weights: number[] = [];
  for (let d = 0; d < days; d++) {
    const weekday = new Date(startMs + d * 86_400_000).getUTCDay();
    const weekend = !flatWeek && (weekday === 0 || weekday === 6);
    for (let h = 0; h < 24; h++) weights.push(weekend ? WEEKEND_HOURS[h] * WEEKEND_FACTOR : WEEKDAY_HOURS[h]);
  }
  const total = weights.reduce((a, b) => a + b, 0);
  const quotas: number[] = [];
  let cum = 0;
  let assigned = 0;
  for (const w of weights) {
    cum += w;
    const upTo = Math.round((events * cum) / total);
    quotas.push(upTo - assigned);
    assigned = upTo;
  }
  return quotas;
}

interface Timed {
  ms: number;
  event: RawEventV1;
  country: Country;
}

/** The simulated world: users and counters, advanced session by session. */
class World {
  private readonly users: User[] = [];
  private userSeq = 0;
  private orderSeq = 0;
  /** The steady world's users by slot (GenerateOptions.users), null until the slot's user signs up. */
  private readonly slots: (User | null)[];

  constructor(
    private readonly rand: () => number,
    population = 0,
  ) {
    this.slots = new Array<User | null>(population).fill(null);
  }

  private newUser(): User {
    const rand = this.rand;
    const n = ++this.userSeq;
    const country = pickWeighted(COUNTRIES, rand);
    const devices: Device[] = [pickWeighted(DEVICES, rand)];
    if (rand() < 0.35) devices.push(pickWeighted(DEVICES, rand));
    const user: User = {
      id: `u-${n.toString().padStart(6, '0')}`,
      email: `user${n}@example.com`,
      plan: 'free',
      country,
      devices,
    };
    if (rand() < 0.1) user.plan = 'pro';
    this.users.push(user);
    return user;
  }

  /** Returning users are skewed towards the earliest (and most engaged) ones. */
  private pickUser(): { user: User; isNew: boolean } {
    const rand = this.rand;
    if (this.slots.length > 0) return this.pickSteadyUser();
    if (this.users.length < 20 || rand() < 0.08) return { user: this.newUser(), isNew: true };
    const r = rand();
    return { user: this.users[Math.floor(r * r * this.users.length)], isNew: false };
  }

  /** A steady world's user: one of a fixed number of slots, skewed the same way; a new user replaces a slot's user. */
  private pickSteadyUser(): { user: User; isNew: boolean } {
    const rand = this.rand;
    const replace = rand() < 0.08;
    const r = rand();
    const slot = replace ? Math.floor(r * this.slots.length) : Math.floor(r * r * this.slots.length);
    const user = this.slots[slot];
    if (user !== null && !replace) return { user, isNew: false };
    const fresh = this.newUser();
    this.users.pop();
    this.slots[slot] = fresh;
    return { user: fresh, isNew: true };
  }

  private base(
    user: User,
    type: EventType,
    sessionId: string,
    device: Device,
    page: string,
    referrer: string,
  ): RawEventV1 {
    return {
      schema_version: SCHEMA_VERSION,
      event_id: uuidFrom(this.rand),
      event_type: type,
      event_time: '',
      user_id: user.id,
      session_id: sessionId,
      device: { type: device.type, os: device.os, browser: device.browser },
      context: { country: user.country.code, page, referrer },
    };
  }

  private userAttrs(user: User): RawEventV1['user'] {
    return { email: user.email, plan: user.plan, country: user.country.code };
  }

  /** One session's events, in time order, starting at `startMs`. */
  session(startMs: number): Timed[] {
    const rand = this.rand;
    const { user, isNew } = this.pickUser();
    const device = pick(user.devices, rand);
    const sessionId = uuidFrom(rand);
    const referrer = pick(REFERRERS, rand);
    const out: Timed[] = [];
    let ms = startMs;
    const emit = (type: EventType, page: string, extra: Partial<RawEventV1> = {}): void => {
      const event = { ...this.base(user, type, sessionId, device, page, referrer), ...extra };
      out.push({ ms, event, country: user.country });
      ms += 3_000 + Math.floor(rand() * 60_000);
    };
    if (isNew) emit('user_signup', '/signup', { user: this.userAttrs(user) });
    emit('session_start', '/');
    const views = 1 + Math.floor(-Math.log(1 - rand()) * 3);
    let product: (typeof PRODUCTS)[number] | null = null;
    for (let i = 0; i < views; i++) {
      if (rand() < 0.45) {
        product = pick(PRODUCTS, rand);
        emit('page_view', `/products/${product.id}`);
      } else {
        emit('page_view', pick(CONTENT_PAGES, rand));
      }
    }
    if (product !== null && rand() < 0.3) this.checkout(user, product, emit);
    if (rand() < 0.03) this.changePlan(user, emit);
    if (rand() < 0.015) this.updateProfile(user, emit);
    return out;
  }

  private checkout(
    user: User,
    product: (typeof PRODUCTS)[number],
    emit: (type: EventType, page: string, extra?: Partial<RawEventV1>) => void,
  ): void {
    const rand = this.rand;
    emit('add_to_cart', `/products/${product.id}`);
    if (rand() >= 0.5) return;
    const currency = user.country.currency;
    const quantity = 1 + Math.floor(rand() * 3);
    const amount = Math.round(product.price * quantity * FX[currency] * 100) / 100;
    const purchase = {
      order_id: `o-${(++this.orderSeq).toString().padStart(8, '0')}`,
      product_id: product.id,
      amount,
      currency,
    };
    if (rand() < 0.12) {
      emit('payment_failed', '/checkout', { purchase });
      if (rand() < 0.5) return;
    }
    emit('purchase', '/checkout', { purchase });
  }

  private changePlan(user: User, emit: (type: EventType, page: string, extra?: Partial<RawEventV1>) => void): void {
    const next = this.rand() < 0.75 ? PLAN_UP[user.plan] : PLAN_DOWN[user.plan];
    if (next === user.plan) return;
    user.plan = next;
    emit('plan_change', '/settings/billing', { user: this.userAttrs(user) });
  }

  private updateProfile(user: User, emit: (type: EventType, page: string, extra?: Partial<RawEventV1>) => void): void {
    if (this.rand() < 0.5) user.country = pickWeighted(COUNTRIES, this.rand);
    else user.email = `${user.id.replace('u-', 'user.')}.${Math.floor(this.rand() * 1000)}@example.org`;
    emit('profile_update', '/settings/profile', { user: this.userAttrs(user) });
  }
}

// --- bad records ---------------------------------------------------------------------------------

const FAR_FUTURE = '2099-01-01T00:00:00Z';

/** Turns a good event into one the contract rejects; returns its bytes and whether its event_time stays usable. */
function corrupt(event: RawEventV1, kind: BadKind, rand: () => number): { value: string; timeUsable: boolean } {
  const copy: Record<string, unknown> = { ...event };
  switch (kind) {
    case 'not_json': {
      const json = JSON.stringify(event);
      return { value: json.slice(0, Math.floor(json.length / 2)), timeUsable: false };
    }
    case 'missing_field': {
      const candidates = ['user_id', 'event_id', 'event_time', 'event_type', 'schema_version'];
      if (event.user) candidates.push('user');
      if (event.purchase) candidates.push('purchase');
      const field = pick(candidates, rand);
      delete copy[field];
      return { value: JSON.stringify(copy), timeUsable: field !== 'event_time' };
    }
    case 'wrong_type':
      if (event.purchase) copy.purchase = { ...event.purchase, amount: 'abc' };
      else copy.user_id = 12345;
      return { value: JSON.stringify(copy), timeUsable: true };
    case 'unknown_event_type':
      copy.event_type = pick(['refund', 'page_vieww', 'foo'], rand);
      return { value: JSON.stringify(copy), timeUsable: true };
    case 'unknown_schema_version':
      copy.schema_version = 'v2';
      return { value: JSON.stringify(copy), timeUsable: true };
    case 'far_future':
      copy.event_time = FAR_FUTURE;
      return { value: JSON.stringify(copy), timeUsable: false };
  }
}

/** Validates generator options; throws naming the bad value and the fix. */
export function checkGenerateOptions(o: GenerateOptions): void {
  if (!Number.isInteger(o.events) || o.events < 0)
    throw new Error(`events must be a whole number >= 0, got ${o.events}`);
  if (!Number.isInteger(o.days) || o.days < 1) throw new Error(`days must be a whole number >= 1, got ${o.days}`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(o.start) || Number.isNaN(Date.parse(`${o.start}T00:00:00Z`))) {
    throw new Error(`start must be a date YYYY-MM-DD, got ${JSON.stringify(o.start)}`);
  }
  if (!Number.isInteger(o.seed)) throw new Error(`seed must be a whole number, got ${o.seed}`);
  if (!(o.badRate >= 0 && o.badRate <= 1)) throw new Error(`badRate must be between 0 and 1, got ${o.badRate}`);
  if (o.users !== undefined && (!Number.isInteger(o.users) || o.users < 1)) {
    throw new Error(`users must be a whole number >= 1 (or left out for a growing world), got ${o.users}`);
  }
}

/**
 * Yields `events` records spread over `days` days from `start`, in time order hour by hour,
 * a `badRate` share of them rejected by the contract (each kind in turn-ish, drawn from the PRNG).
 */
export function* generateEvents(options: GenerateOptions): Generator<GeneratedRecord> {
  checkGenerateOptions(options);
  const rand = mulberry32(options.seed);
  const world = new World(rand, options.users);
  const startMs = Date.parse(`${options.start}T00:00:00Z`);
  const quotas = hourlyQuotas(options.events, options.days, startMs, options.flatWeek ?? false);
  for (let h = 0; h < quotas.length; h++) {
    const hourStart = startMs + h * 3_600_000;
    const hour: Timed[] = [];
    while (hour.length < quotas[h]) {
      const session = world.session(hourStart + Math.floor(rand() * 2_700_000));
      for (const t of session) {
        if (hour.length >= quotas[h]) break;
        t.ms = Math.min(t.ms, hourStart + 3_599_999);
        hour.push(t);
      }
    }
    hour.sort((a, b) => a.ms - b.ms);
    for (const t of hour) {
      t.event.event_time = clientTime(t.ms, t.country);
      const date = dayName(Math.floor(t.ms / 86_400_000));
      if (rand() < options.badRate) {
        const bad = BAD_KINDS[Math.floor(rand() * BAD_KINDS.length)];
        const { value, timeUsable } = corrupt(t.event, bad, rand);
        yield { key: t.event.user_id, value: Buffer.from(value), expected: { date: timeUsable ? date : null, bad } };
      } else {
        yield { key: t.event.user_id, value: Buffer.from(eventJson(t.event)), expected: { date, bad: null } };
      }
    }
  }
}
