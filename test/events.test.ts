import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, type RawEventV1, parseEvent, parseIsoTimeUs } from '../lib/events';
import { BAD_KINDS, eventJson, generateEvents } from '../lib/generator';

/** The v1 contract: what it accepts, how it normalises, and the precise reason for each rejection. */

const NOW = new Date('2024-12-18T12:00:00Z');

function valid(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const event: RawEventV1 = {
    schema_version: 'v1',
    event_id: '7d213b2e-2391-46bd-a75b-d1223f5db9e0',
    event_type: 'purchase',
    event_time: '2024-12-17T09:30:00.123+01:00',
    user_id: 'u-000001',
    session_id: 's-1',
    device: { type: 'mobile', os: 'iOS', browser: 'Safari' },
    context: { country: 'DE', page: '/checkout', referrer: 'direct' },
    purchase: { order_id: 'o-1', product_id: 'p-100', amount: 12.5, currency: 'EUR' },
  };
  return { ...event, ...overrides };
}

function parse(value: unknown, now = NOW) {
  return parseEvent(Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), now);
}

function reasonOf(value: unknown): string {
  const r = parse(value);
  if (r.ok) throw new Error('expected a rejection');
  return r.reason;
}

describe('event contract v1', () => {
  it('accepts a valid event and normalises event_time to UTC', () => {
    const r = parse(valid());
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(new Date(r.event.event_time_us / 1000).toISOString()).toBe('2024-12-17T08:30:00.123Z');
    expect(r.event).toMatchObject({
      event_type: 'purchase',
      user_id: 'u-000001',
      device_type: 'mobile',
      country: 'DE',
      order_id: 'o-1',
      amount: 12.5,
      currency: 'EUR',
      user_email: null,
    });
  });

  it('keeps microseconds and handles negative and compact offsets', () => {
    expect(parseIsoTimeUs('2024-12-31T23:30:00.123456-02:00')).toBe(
      Date.parse('2025-01-01T01:30:00.123Z') * 1000 + 456,
    );
    expect(parseIsoTimeUs('2024-12-17T09:30:00+0530')).toBe(Date.parse('2024-12-17T04:00:00Z') * 1000);
    expect(parseIsoTimeUs('2024-02-29T00:00:00Z')).not.toBeNull();
    expect(parseIsoTimeUs('2023-02-29T00:00:00Z')).toBeNull();
    expect(parseIsoTimeUs('2024-12-17T09:30:00')).toBeNull();
  });

  it('requires the user attributes on user events and the purchase on purchase events', () => {
    expect(reasonOf(valid({ event_type: 'user_signup', purchase: undefined }))).toBe(
      'missing required field "user" on user_signup',
    );
    const user = { email: 'a@example.com', plan: 'pro', country: 'FR' };
    expect(parse(valid({ event_type: 'plan_change', purchase: undefined, user })).ok).toBe(true);
    expect(reasonOf(valid({ event_type: 'plan_change', user: { ...user, plan: 'gold' } }))).toBe(
      'field "user.plan" must be one of free|pro|enterprise, got "gold"',
    );
    expect(reasonOf(valid({ event_type: 'profile_update', user: { email: 'a@example.com', plan: 'pro' } }))).toBe(
      'missing required field "user.country"',
    );
    expect(reasonOf(valid({ event_type: 'payment_failed', purchase: undefined }))).toBe(
      'missing required field "purchase" on payment_failed',
    );
    expect(reasonOf(valid({ purchase: { order_id: 'o', product_id: 'p', amount: 1, currency: 'eur' } }))).toBe(
      'field "purchase.currency" must be an ISO-4217 code of 3 upper-case letters, got "eur"',
    );
    expect(reasonOf(valid({ purchase: { order_id: 'o', product_id: 'p', amount: -1, currency: 'EUR' } }))).toBe(
      'field "purchase.amount" must be a number >= 0, got -1',
    );
  });

  it.each([
    ['not JSON', '{"schema_version":"v1",', /^not valid JSON: /],
    ['not an object', '[1,2]', /^record must be a JSON object, got an array$/],
    ['missing field', valid({ user_id: undefined }), /^missing required field "user_id"$/],
    [
      'wrong type',
      valid({ purchase: { order_id: 'o', product_id: 'p', amount: 'abc', currency: 'EUR' } }),
      /^field "purchase.amount" must be a number >= 0, got "abc"$/,
    ],
    ['wrong type of user_id', valid({ user_id: 12345 }), /^field "user_id" must be a string, got 12345$/],
    ['unknown event_type', valid({ event_type: 'foo' }), /^unknown event_type "foo"$/],
    ['unknown schema_version', valid({ schema_version: 'v2' }), /^unknown schema_version "v2"$/],
    [
      'event_time without offset',
      valid({ event_time: '2024-12-17T09:30:00' }),
      /^field "event_time" must be ISO-8601 with an offset/,
    ],
    [
      'far-future event_time',
      valid({ event_time: '2030-01-01T00:00:00Z' }),
      /^event_time 2030-01-01T00:00:00Z is more than 1 day in the future$/,
    ],
    [
      'bad device type',
      valid({ device: { type: 'watch' } }),
      /^field "device.type" must be one of desktop\|mobile\|tablet, got "watch"$/,
    ],
    ['bad event_id', valid({ event_id: 'abc' }), /^field "event_id" must be a UUID, got "abc"$/],
  ])('rejects %s with a precise reason', (_kind, value, reason) => {
    expect(reasonOf(value)).toMatch(reason);
  });

  it('tells the id and time of a rejected record when they are readable', () => {
    const r = parse(valid({ schema_version: 'v2' }));
    expect(r).toMatchObject({
      ok: false,
      eventId: '7d213b2e-2391-46bd-a75b-d1223f5db9e0',
      eventTime: new Date('2024-12-17T08:30:00.123Z'),
    });
  });

  it('holds the warehouse limits: each violation is rejected with a reason naming the field and the limit', () => {
    const cases: [unknown, string][] = [
      [valid({ user_id: 'u'.repeat(1_000_000) }), 'field "user_id" is 1000000 characters long, above its limit of 256'],
      [valid({ user_id: 'u'.repeat(1_100_000) }), 'bytes, above the limit of 1048576 bytes'],
      [
        valid({ context: { page: 'p'.repeat(900_000) } }),
        'field "context.page" is 900000 characters long, above its limit of 2048',
      ],
      [
        valid({ purchase: { order_id: 'o', product_id: 'p', amount: 1e13, currency: 'EUR' } }),
        'field "purchase.amount" must be below 999999999999.995',
      ],
      [
        valid({ purchase: { order_id: 'o', product_id: 'p', amount: 1e308, currency: 'EUR' } }),
        'field "purchase.amount" must be below 999999999999.995',
      ],
      [valid({ context: { page: 'a\u0000b' } }), 'field "context.page" contains U+0000'],
      [valid({ session_id: '\ud800' }), 'field "session_id" contains a lone UTF-16 surrogate'],
      [valid({ event_time: '0001-01-01T00:00:00Z' }), 'field "event_time" must be in the years 2001-2099'],
      [valid({ event_time: '9999-12-31T23:59:59Z' }), 'field "event_time" must be in the years 2001-2099'],
      [
        valid({ purchase: { order_id: 'o', product_id: 'p', amount: 1, currency: 'eur' } }),
        'field "purchase.currency" must be an ISO-4217 code of 3 upper-case letters, got "eur"',
      ],
      [`{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}`, 'record nests objects and arrays more than 16 levels deep'],
      [Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1'), 'not valid JSON'],
    ];
    for (const [value, reason] of cases) expect(reasonOf(value)).toContain(reason);
    expect(parseEvent(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), NOW)).toEqual({
      ok: false,
      reason: 'record is not valid UTF-8',
    });
  });

  it('accepts values at the limits: 256-character user_ids of 4-byte characters, the largest amount, 15 nested levels', () => {
    const r = parse(
      valid({
        user_id: '😀'.repeat(256),
        purchase: { order_id: 'o', product_id: 'p', amount: 999_999_999_999.99, currency: 'EUR' },
        extra: JSON.parse(`${'['.repeat(15)}${']'.repeat(15)}`),
        event_time: '2099-12-31T23:59:59Z',
      }),
      new Date('2099-12-31T00:00:00Z'),
    );
    expect(r.ok).toBe(true);
  });

  it('accepts an event up to 1 day ahead of the clock', () => {
    expect(parse(valid({ event_time: '2024-12-19T11:59:00Z' })).ok).toBe(true);
    expect(parse(valid({ event_time: '2024-12-19T12:01:00Z' })).ok).toBe(false);
  });
});

describe('event generator', () => {
  it('is deterministic for a seed and different across seeds', () => {
    const run = (seed: number) =>
      [...generateEvents({ events: 2_000, days: 2, start: '2024-12-01', seed, badRate: 0.05 })].map((r) =>
        r.value.toString(),
      );
    expect(run(1)).toEqual(run(1));
    expect(run(1)).not.toEqual(run(2));
  });

  it('produces exactly N records, keyed by user_id, every event type, and every bad kind the contract rejects', () => {
    const records = [...generateEvents({ events: 40_000, days: 3, start: '2024-12-01', seed: 42, badRate: 0.02 })];
    expect(records).toHaveLength(40_000);
    const types = new Set<string>();
    const kinds = new Set<string>();
    for (const r of records) {
      const parsed = parseEvent(r.value, NOW);
      expect(parsed.ok).toBe(r.expected.bad === null);
      if (parsed.ok) {
        types.add(parsed.event.event_type);
        expect(r.key).toBe(parsed.event.user_id);
        expect(new Date(parsed.event.event_time_us / 1000).toISOString().slice(0, 10)).toBe(r.expected.date);
      } else {
        kinds.add(r.expected.bad as string);
      }
    }
    expect([...types].sort()).toEqual([...EVENT_TYPES].sort());
    expect([...kinds].sort()).toEqual([...BAD_KINDS].sort());
  });

  it('writes the same JSON bytes as JSON.stringify', () => {
    for (const r of generateEvents({ events: 5_000, days: 1, start: '2024-12-01', seed: 8, badRate: 0 })) {
      const event = JSON.parse(r.value.toString()) as RawEventV1;
      expect(eventJson(event)).toBe(JSON.stringify(event));
    }
  });

  it('has a daily rhythm: nights are quieter than afternoons', () => {
    const hours = new Array<number>(24).fill(0);
    for (const r of generateEvents({ events: 20_000, days: 1, start: '2024-12-04', seed: 4, badRate: 0 })) {
      const p = parseEvent(r.value, NOW);
      if (p.ok) hours[new Date(p.event.event_time_us / 1000).getUTCHours()]++;
    }
    expect(hours[3]).toBeLessThan(hours[15] / 3);
  });

  it('has a weekly rhythm, which flatWeek turns off: then every day has the same number of events', () => {
    // 2024-12-06 is a Friday: a weekday and the weekend after it
    const perDay = (flatWeek: boolean) => {
      const counts = new Map<string, number>();
      for (const r of generateEvents({ events: 30_000, days: 3, start: '2024-12-06', seed: 5, badRate: 0, flatWeek }))
        counts.set(r.expected.date as string, (counts.get(r.expected.date as string) ?? 0) + 1);
      return counts;
    };
    const weekly = perDay(false);
    expect(weekly.get('2024-12-07')).toBeLessThan(0.8 * (weekly.get('2024-12-06') as number));
    expect(Object.fromEntries(perDay(true))).toEqual({
      '2024-12-06': 10_000,
      '2024-12-07': 10_000,
      '2024-12-08': 10_000,
    });
  });

  it('keeps a steady population with `users`: as many distinct users on the last day as on the first, each of them signing up', () => {
    const world = (users?: number) => {
      const distinct = new Map<string, Set<string>>();
      const seen = new Set<string>();
      const signedUp = new Set<string>();
      for (const r of generateEvents({
        events: 80_000,
        days: 8,
        start: '2024-12-02',
        seed: 3,
        badRate: 0,
        flatWeek: true,
        users,
      })) {
        const event = JSON.parse(r.value.toString()) as RawEventV1;
        const date = r.expected.date as string;
        if (!distinct.has(date)) distinct.set(date, new Set());
        (distinct.get(date) as Set<string>).add(event.user_id);
        seen.add(event.user_id);
        if (event.event_type === 'user_signup') signedUp.add(event.user_id);
      }
      const sizes = [...distinct.values()].map((users) => users.size);
      return { first: sizes[0], last: sizes[sizes.length - 1], withoutSignup: seen.size - signedUp.size };
    };
    const growing = world();
    expect(growing.last).toBeGreaterThan(2 * growing.first);
    const steady = world(2_000);
    expect(steady.last).toBeLessThan(1.1 * steady.first);
    expect(steady.last).toBeGreaterThan(0.9 * steady.first);
    expect(steady.withoutSignup).toBe(0);
    expect(() =>
      generateEvents({ events: 1, days: 1, start: '2024-12-02', seed: 3, badRate: 0, users: 0 }).next(),
    ).toThrow(/users must be a whole number >= 1/);
  });
});
