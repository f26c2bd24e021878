import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EVENT_SCHEMA_FILE, eventJsonSchema, eventSchemaFileText } from '../lib/event-schema';
import { AMOUNT_EXCLUSIVE_MAXIMUM, MAX_DEPTH, TEXT_LIMITS, parseEvent } from '../lib/events';
import { generateEvents } from '../lib/generator';

/**
 * The published JSON Schema is the contract the landing enforces: the committed file is the generated one, and on
 * a fuzzed corpus of valid events mutated towards every limit, ajv with the schema and lib/events.ts accept exactly
 * the same records. Fixed seed and a bounded number of cases, so CI runs the same corpus every time.
 */

const ROOT = path.resolve(__dirname, '..');
/** Far enough ahead that the clock-relative rule (not in the schema) never decides. */
const NOW = new Date('2101-01-01T00:00:00Z');
const SEED = 20261127;
const RUNS = 20_000;

function compile() {
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true });
  return ajv.compile(eventJsonSchema());
}

describe('published event schema', () => {
  it('the committed schema/event.v1.schema.json is the one lib/event-schema.ts generates', async () => {
    expect(readFileSync(path.join(ROOT, EVENT_SCHEMA_FILE), 'utf8')).toBe(await eventSchemaFileText());
  });

  it('compiles under ajv strict mode and accepts the generator’s valid events', () => {
    const validate = compile();
    let valid = 0;
    for (const r of generateEvents({ events: 5_000, days: 2, start: '2024-12-01', seed: 3, badRate: 0.05 })) {
      const hand = parseEvent(r.value, NOW).ok;
      let parsed: unknown;
      try {
        parsed = JSON.parse(r.value.toString());
      } catch {
        expect(hand).toBe(false);
        continue;
      }
      if (hand) valid++;
      expect(validate(parsed), r.value.toString()).toBe(hand);
    }
    expect(valid).toBeGreaterThan(4_000);
  });

  it('accepts exactly what the landing accepts, on a fuzzed corpus (fixed seed, bounded cases)', () => {
    const validate = compile();
    const bases = [...generateEvents({ events: 2_000, days: 2, start: '2024-12-01', seed: 5, badRate: 0 })].map(
      (r) => JSON.parse(r.value.toString()) as Record<string, unknown>,
    );
    const property = fc.property(fc.integer({ min: 0, max: bases.length - 1 }), mutations(), (i, muts) => {
      const event = structuredClone(bases[i]);
      for (const m of muts) apply(event, m);
      const raw = Buffer.from(JSON.stringify(event));
      const hand = parseEvent(raw, NOW);
      const schema = validate(JSON.parse(raw.toString()));
      if (hand.ok !== schema) {
        throw new Error(
          `landing ${hand.ok ? 'accepts' : `rejects (${hand.reason})`} but the schema ${schema ? 'accepts' : `rejects (${JSON.stringify(validate.errors)})`}`,
        );
      }
    });
    const out = fc.check(property, { seed: SEED, numRuns: RUNS });
    if (out.failed) throw new Error(`${String(out.errorInstance)}\n${fc.defaultReportMessage(out)}`);
    expect(out.numRuns).toBe(RUNS);
  });
});

// --- the fuzzed corpus: valid events, mutated towards every rule and limit --------------------------------------

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

interface Mutation {
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

function mutations(): fc.Arbitrary<Mutation[]> {
  return fc.array(
    fc.record({ path: fc.constantFrom(...PATHS), value, remove: fc.integer({ min: 0, max: 4 }).map((n) => n === 0) }),
    { minLength: 1, maxLength: 3 },
  );
}

function apply(event: Record<string, unknown>, m: Mutation): void {
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
