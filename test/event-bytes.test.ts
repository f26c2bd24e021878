import { tableToIPC } from 'apache-arrow';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventScan } from '../lib/event-bytes';
import { ISO_TIME, parseEvent, parseIsoTimeUs } from '../lib/events';
import { generateEvents } from '../lib/generator';
import { EventRows } from '../lib/lake';
import { applyMutation, mutations } from './fuzz-events';

/**
 * The landing's fast path (lib/event-bytes.ts) against the full validator: every record it takes, parseEvent accepts
 * and turns into the same lake row, byte for byte; what it declines is left to parseEvent.
 */

const START = '2024-12-17';
const NOW = new Date('2024-12-18T12:00:00Z');

interface Outcome {
  taken: number;
  declined: number;
  /** The Arrow IPC bytes of the rows the fast path made, and of those parseEvent made of the same records. */
  fast: Buffer;
  full: Buffer;
}

/** Runs each record through the fast path; every record it takes must be valid, and makes a row both ways. */
function compare(values: Buffer[]): Outcome {
  const scan = new EventScan();
  const fast = new EventRows('events', 0);
  const full = new EventRows('events', 0);
  let declined = 0;
  values.forEach((value, offset) => {
    if (!scan.read(value, NOW.getTime())) {
      declined++;
      return;
    }
    const parsed = parseEvent(value, NOW);
    if (!parsed.ok) throw new Error(`the fast path took a record parseEvent rejects (${parsed.reason}): ${value}`);
    fast.pushScanned(value, scan, offset, 1_734_400_000_000 + offset);
    full.push(parsed.event, offset, 1_734_400_000_000 + offset);
  });
  return {
    taken: values.length - declined,
    declined,
    fast: Buffer.from(tableToIPC(fast.toTable())),
    full: Buffer.from(tableToIPC(full.toTable())),
  };
}

function baseEvents(n: number, seed: number): Record<string, unknown>[] {
  return [...generateEvents({ events: n, days: 1, start: START, seed, badRate: 0 })].map(
    (r) => JSON.parse(r.value.toString()) as Record<string, unknown>,
  );
}

describe('the landing fast path', () => {
  it("takes a generated day's valid records and makes the rows parseEvent makes, and takes none of its bad ones", () => {
    const records = [...generateEvents({ events: 5000, days: 1, start: START, seed: 5, badRate: 0.05 })];
    const values = records.map((r) => r.value);
    const outcome = compare(values);
    const good = records.filter((r) => r.expected.bad === null).length;
    expect(good).toBeLessThan(values.length);
    // every valid generated record is plain JSON: the fast path takes all of them
    expect(outcome.taken).toBe(good);
    expect(outcome.fast.equals(outcome.full)).toBe(true);
  });

  it('on the fuzzed corpus, what it takes parseEvent accepts, with the same row (fixed seed, 3,000 cases)', () => {
    const bases = baseEvents(300, 13);
    const cases = fc.sample(fc.tuple(fc.integer({ min: 0, max: bases.length - 1 }), mutations()), {
      seed: 20261128,
      numRuns: 3000,
    });
    const values = cases.map(([i, muts], k) => {
      const e = structuredClone(bases[i]);
      for (const m of muts) applyMutation(e, m);
      // every fifth record spaced out: JSON whitespace between all tokens
      return Buffer.from(k % 5 === 0 ? JSON.stringify(e, null, 2) : JSON.stringify(e));
    });
    const valid = values.filter((v) => parseEvent(v, NOW).ok).length;
    const outcome = compare(values);
    expect(outcome.taken).toBeGreaterThan(valid / 2);
    expect(outcome.declined).toBeGreaterThan(values.length - valid);
    expect(outcome.fast.equals(outcome.full)).toBe(true);
  });

  it('takes multi-byte text, counting code points against the limits as parseEvent does', () => {
    const [base] = baseEvents(1, 3);
    const values = [
      { ...base, user_id: '😀'.repeat(256) }, // 256 code points, 1,024 bytes: within the limit
      { ...base, user_id: '😀'.repeat(257) },
      { ...base, session_id: 'é'.repeat(256) },
      { ...base, session_id: 'é'.repeat(257) },
      { ...base, context: { country: 'DE', page: `/${'ü'.repeat(2047)}` } },
    ].map((e) => Buffer.from(JSON.stringify(e)));
    const scan = new EventScan();
    expect(values.map((v) => scan.read(v, NOW.getTime()))).toEqual([true, false, true, false, true]);
    expect(values.map((v) => parseEvent(v, NOW).ok)).toEqual([true, false, true, false, true]);
    expect(compare(values).fast.equals(compare(values).full)).toBe(true);
  });

  it('declines what it cannot take plainly, and parseEvent still accepts the valid ones among them', () => {
    const [base] = baseEvents(1, 3);
    const plain = JSON.stringify(base);
    const id = base.event_id as string;
    const declined: [string, string | Buffer, boolean][] = [
      ['an escape in a string', JSON.stringify({ ...base, user_id: 'u-\u00e9"x' }), true],
      ['an escaped member name', plain.replace('"user_id"', '"user\\u005fid"'), true],
      ['a member given twice', plain.replace('{', `{"user_id":"u-first",`), true],
      ['an unknown member', JSON.stringify({ ...base, extra: 1 }), true],
      ['an upper-case event_id', JSON.stringify({ ...base, event_id: id.toUpperCase() }), true],
      ['a number where text belongs', JSON.stringify({ ...base, user_id: 7 }), false],
      ['a record that is not an object', `[${plain}]`, false],
      ['a truncated record', plain.slice(0, -1), false],
      ['trailing text', `${plain} x`, false],
      [
        'invalid UTF-8 in a string',
        Buffer.from(plain).fill(0xff, plain.indexOf(base.user_id as string), plain.indexOf(base.user_id as string) + 1),
        false,
      ],
      ['a control character in a string', plain.replace(id, `${id.slice(0, 35)}\t`), false],
      ['an empty user_id', JSON.stringify({ ...base, user_id: '' }), false],
      ['an event_time a year ahead', JSON.stringify({ ...base, event_time: '2025-12-18T12:00:00Z' }), false],
      ['an event_time without an offset', JSON.stringify({ ...base, event_time: '2024-12-17T09:30:00' }), false],
    ];
    const scan = new EventScan();
    for (const [what, text, valid] of declined) {
      const value = Buffer.isBuffer(text) ? text : Buffer.from(text);
      expect({ what, taken: scan.read(value, NOW.getTime()) }).toEqual({ what, taken: false });
      expect({ what, valid: parseEvent(value, NOW).ok }).toEqual({ what, valid });
    }
    expect(scan.read(Buffer.from(plain), NOW.getTime())).toBe(true);
  });

  it('reads purchases: the amount as JSON.parse reads it, declining a negative one', () => {
    const purchase = baseEvents(2000, 9).find((e) => e.event_type === 'purchase');
    if (purchase === undefined) throw new Error('the generated day has no purchase');
    const amounts = ['0', '12.5', '1.005', '999999999999.99', '1e2', '2.5E-1', '0.1e+1', '123456.7890123'];
    const values = amounts.map((a) =>
      Buffer.from(JSON.stringify(purchase).replace(/"amount":[^,}]+/, `"amount":${a}`)),
    );
    const outcome = compare(values);
    expect(outcome.taken).toBe(amounts.length);
    expect(outcome.fast.equals(outcome.full)).toBe(true);
    const scan = new EventScan();
    for (const a of ['-1', '-0', '01', '1.', '.5', '1e', '999999999999.995', '"12.5"', 'null']) {
      const value = Buffer.from(JSON.stringify(purchase).replace(/"amount":[^,}]+/, `"amount":${a}`));
      expect({ a, taken: scan.read(value, NOW.getTime()) }).toEqual({ a, taken: false });
    }
  });
});

describe('parseIsoTimeUs', () => {
  /** The specification: ISO_TIME, a real calendar date, and the offset applied (Date.UTC counts years < 100 as 19xx). */
  function reference(text: string): number | null {
    const m = ISO_TIME.exec(text);
    if (m === null) return null;
    const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number);
    const second = m[6] === undefined ? 0 : Number(m[6]);
    const micros = m[7] === undefined ? 0 : Number(m[7].padEnd(9, '0').slice(0, 6));
    const offset = m[8] !== undefined ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]));
    if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return null;
    if (Number(m[10]) > 23 || Number(m[11]) > 59) return null;
    const date = new Date(0);
    date.setUTCFullYear(year, month - 1, day);
    if (date.getUTCDate() !== day) return null;
    date.setUTCHours(hour, minute, second, 0);
    return (date.getTime() - offset * 60_000) * 1000 + micros;
  }

  it('agrees with its specification on generated timestamps, right and wrong (fixed seed, 20,000 cases)', () => {
    const two = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, '0'));
    const text = fc
      .tuple(
        fc.integer({ min: 0, max: 9999 }).map((n) => String(n).padStart(4, '0')),
        two(13),
        two(32),
        two(24),
        two(60),
        fc.option(two(60), { nil: undefined }),
        fc.option(fc.stringMatching(/^[0-9]{0,10}$/), { nil: undefined }),
        fc.constantFrom('Z', 'z', '+00:00', '-02:30', '+0530', '+23:59', '+24:00', '-00:60', '', '+1', '+01:0', 'Zx'),
      )
      .map(
        ([y, mo, d, h, mi, s, f, off]) =>
          `${y}-${mo}-${d}T${h}:${mi}${s === undefined ? '' : `:${s}${f === undefined ? '' : `.${f}`}`}${off}`,
      );
    const samples = fc.sample(
      fc.oneof(
        text,
        text.map((t) => t.slice(0, -1)),
        fc.string({ maxLength: 40 }),
      ),
      {
        seed: 20261128,
        numRuns: 20_000,
      },
    );
    let valid = 0;
    for (const t of samples) {
      const expected = reference(t);
      if (expected !== null) valid++;
      expect({ t, us: parseIsoTimeUs(t) }).toEqual({ t, us: expected });
    }
    expect(valid).toBeGreaterThan(1000);
  });
});
