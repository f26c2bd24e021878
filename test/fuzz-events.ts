import fc from 'fast-check';
import { AMOUNT_EXCLUSIVE_MAXIMUM, MAX_DEPTH, TEXT_LIMITS } from '../lib/events';

/**
 * A fuzzed corpus for the event contract: mutations that push a valid event towards every rule and limit (text
 * lengths around each limit, U+0000, lone surrogates, 4-byte characters, amounts around numeric(14,2), impossible
 * and out-of-range times, nesting around the depth limit, wrong types, missing members). Used with a fixed seed.
 */

const PATHS = [
  'schema_version',
  'event_id',
  'event_type',
  'event_time',
  'user_id',
  'session_id',
  'device',
  'device.type',
  'device.os',
  'device.browser',
  'device.extra',
  'context',
  'context.country',
  'context.page',
  'context.referrer',
  'user',
  'user.email',
  'user.plan',
  'user.country',
  'purchase',
  'purchase.order_id',
  'purchase.product_id',
  'purchase.amount',
  'purchase.currency',
  'purchase.extra',
  'extra',
  'extra2',
];

export interface Mutation {
  path: string;
  value: unknown;
  remove: boolean;
}

const CHARS = ['a', 'Z', 'é', '😀', '\u0000', '\ud800', '\udc00', ' ', '@', '.', '-', '\n', '"', '\\'];
const LENGTHS = [0, 1, 2, 3, 4, ...new Set(Object.values(TEXT_LIMITS).flatMap((n) => [n - 1, n, n + 1]))];

function nest(levels: number, leaf: unknown, arrays: boolean): unknown {
  let v = leaf;
  for (let i = 0; i < levels; i++) v = arrays ? [v] : { n: v };
  return v;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

const timestamp = fc
  .record({
    year: fc.constantFrom(1, 1999, 2000, 2001, 2004, 2023, 2024, 2099, 2100, 9999),
    month: fc.integer({ min: 0, max: 13 }),
    day: fc.integer({ min: 0, max: 32 }),
    hour: fc.constantFrom(0, 9, 23, 24),
    minute: fc.constantFrom(0, 30, 59, 60),
    second: fc.option(fc.constantFrom(0, 59, 60), { nil: undefined }),
    fraction: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }),
    offset: fc.constantFrom('Z', '+00:00', '-02:30', '+0530', '+23:59', '+24:00', '-00:60', '', 'z', '+1'),
  })
  .map(
    (t) =>
      `${pad(t.year, 4)}-${pad(t.month, 2)}-${pad(t.day, 2)}T${pad(t.hour, 2)}:${pad(t.minute, 2)}` +
      (t.second === undefined ? '' : `:${pad(t.second, 2)}${t.fraction ? `.${'7'.repeat(t.fraction)}` : ''}`) +
      t.offset,
  );

const text = fc.oneof(
  fc.tuple(fc.constantFrom(...LENGTHS), fc.constantFrom(...CHARS)).map(([n, c]) => c.repeat(n)),
  fc
    .tuple(fc.constantFrom(...LENGTHS), fc.constantFrom(...CHARS), fc.constantFrom(...CHARS))
    .map(([n, c, d]) => c.repeat(n) + d),
  fc.string({ unit: fc.constantFrom(...CHARS), maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(
    'v1',
    'v2',
    'purchase',
    'page_view',
    'user_signup',
    'Purchase',
    'mobile',
    'free',
    'pro',
    'gold',
    'EUR',
    'eur',
    'EU',
    'EURO',
    'DE',
    'de',
    'DEU',
    'a@b',
    'a b@c',
    '@b',
    'a@',
    'a@@b',
    '7d213b2e-2391-46bd-a75b-d1223f5db9e0',
    '7D213B2E-2391-46BD-A75B-D1223F5DB9E0',
    '7d213b2e-2391-46bd-a75b-d1223f5db9e',
    "x'); drop table warehouse.fact_events; --",
  ),
  timestamp,
);

const number = fc.oneof(
  fc.constantFrom(
    0,
    -0,
    -1,
    0.001,
    1.005,
    12.5,
    999_999_999_999.99,
    999_999_999_999.994,
    AMOUNT_EXCLUSIVE_MAXIMUM,
    999_999_999_999.996,
    1e12,
    1e13,
    1e308,
    5e-324,
    -1e-300,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: text },
  { weight: 2, arbitrary: number },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, {}, [], { type: 'mobile' }, [1, 2]) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(MAX_DEPTH - 3, MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH, 40), fc.boolean())
      .map(([levels, arrays]) => nest(levels, 'x', arrays)),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constantFrom('mobile', 'desktop', 'tv'),
      country: fc.constantFrom('DE', 'de'),
      email: fc.constantFrom('a@b', 'ab'),
      plan: fc.constantFrom('pro', 'gold'),
      order_id: fc.constantFrom('o-1', ''),
      product_id: fc.constantFrom('p-1'),
      amount: fc.constantFrom(1, -1, 1e13),
      currency: fc.constantFrom('EUR', 'eur'),
    }),
  },
);

/** One to three mutations of an event. */
export function mutations(): fc.Arbitrary<Mutation[]> {
  return fc.array(
    fc.record({ path: fc.constantFrom(...PATHS), value, remove: fc.integer({ min: 0, max: 4 }).map((n) => n === 0) }),
    { minLength: 1, maxLength: 3 },
  );
}

/** Applies a mutation in place; the value is copied, so one value never appears twice in an event. */
export function applyMutation(event: Record<string, unknown>, m: Mutation): void {
  const [head, tail] = m.path.split('.') as [string, string | undefined];
  if (tail === undefined) {
    if (m.remove) delete event[head];
    else event[head] = structuredClone(m.value);
    return;
  }
  const parent = event[head];
  if (typeof parent !== 'object' || parent === null || Array.isArray(parent)) return;
  if (m.remove) delete (parent as Record<string, unknown>)[tail];
  else (parent as Record<string, unknown>)[tail] = structuredClone(m.value);
}
