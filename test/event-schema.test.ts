import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EVENT_SCHEMA_FILE, eventJsonSchema, eventSchemaFileText } from '../lib/event-schema';
import { parseEvent } from '../lib/events';
import { generateEvents } from '../lib/generator';
import { applyMutation, mutations } from './fuzz-events';

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
      for (const m of muts) applyMutation(event, m);
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
