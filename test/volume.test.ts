import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCheckActivities } from '../activities/checks';
import { ensureFactPartition } from '../activities/facts';
import { DQ_DEFAULTS, type CheckResult, type DqConfig } from '../lib/checks';
import { addDays, dateRange } from '../lib/temporal';
import { createTestEnv, type TestEnv } from './support';

/**
 * The volume check against built histories: the rows of past days in warehouse.date_totals (what the check reads
 * for history), the checked date's rows in fact_events, and earlier check results in ops.dq_results.
 */

const dateKey = (date: string) => Number(date.replaceAll('-', ''));
const isWeekend = (date: string) => [0, 6].includes(new Date(`${date}T00:00:00Z`).getUTCDay());
const MONDAY = '2024-12-16';

let counter = 0;

describe('volume against a robust, seasonal baseline', () => {
  let env: TestEnv;

  beforeEach(async () => {
    env = await createTestEnv({ topic: false });
  });
  afterEach(async () => {
    await env.cleanup();
  });

  /** Past days' volumes into date_totals (`rows` events of one user each). */
  async function history(volumes: Record<string, number>): Promise<void> {
    await env.pool.query(
      `insert into warehouse.date_totals (date_key, events, users)
       select (replace(h.dt, '-', ''))::int, h.rows, 1
       from jsonb_to_recordset($1::jsonb) as h (dt text, rows int)`,
      [JSON.stringify(Object.entries(volumes).map(([dt, rows]) => ({ dt, rows })))],
    );
  }

  /** A weekly rhythm: weekdays about `weekday` rows, weekends 60 % of it, ± 2 % noise. */
  function rhythm(from: string, to: string, weekday = 1000): Record<string, number> {
    return Object.fromEntries(
      dateRange(from, to).map((d, i) => [
        d,
        Math.round((isWeekend(d) ? 0.6 : 1) * weekday * (1 + (((i * 37) % 41) - 20) / 1000)),
      ]),
    );
  }

  /** The checked date's fact rows. */
  async function today(date: string, rows: number): Promise<void> {
    const client = await env.pool.connect();
    try {
      await ensureFactPartition(client, dateKey(date));
    } finally {
      client.release();
    }
    await env.pool.query(
      `insert into warehouse.fact_events (event_id, event_time, date_key, user_key, device_key, event_type, lake_file_id, source_offset)
       select gen_random_uuid(), $1::date + interval '12 hours', $2, 1, 0, 'page_view', 1, g
       from generate_series(1, $3::int) as g`,
      [date, dateKey(date), rows],
    );
  }

  async function earlierResult(date: string, check: string, status: string): Promise<void> {
    await env.pool.query(
      `insert into ops.dq_results (run_id, dt, check_name, table_name, observed, threshold, status, details)
       values ('earlier', $1::date, $2, 'x', 1, 'x', $3, 'x')`,
      [date, check, status],
    );
  }

  async function volume(date: string, config: Partial<DqConfig> = {}): Promise<CheckResult> {
    const { runChecks } = createCheckActivities(env, { config: { ...DQ_DEFAULTS, ...config } });
    const out = await runChecks({ date, run: { workflowId: `daily-${date}`, runId: `run-${++counter}` } });
    return out.results.find((r) => r.check === 'volume')!;
  }

  it('a weekly rhythm that a fixed ±20 % band around the trailing average flags is accepted by the weekday baseline', async () => {
    const saturday = '2024-12-21';
    const past = rhythm(addDays(saturday, -35), addDays(saturday, -1));
    await history(past);
    await today(saturday, 600);
    const trailing = dateRange(addDays(saturday, -7), addDays(saturday, -1)).map((d) => past[d]);
    const average = trailing.reduce((a, b) => a + b, 0) / trailing.length;
    // the fixed band would fail this Saturday: about 30 % under the week's average
    expect(Math.abs(600 - average) / average).toBeGreaterThan(0.2);

    const result = await volume(saturday);
    expect(result.status).toBe('pass');
    expect(result.threshold).toContain('same weekday, last 8 weeks');
    expect(result.details).toContain('against the median of 5 days (same weekday, last 8 weeks: 2024-11-16,');
  });

  it('with two weeks of history, a weekday compares with the trailing weekdays', async () => {
    await history(rhythm(addDays(MONDAY, -10), addDays(MONDAY, -1)));
    await today(MONDAY, 1010);
    const result = await volume(MONDAY);
    expect(result.status).toBe('pass');
    expect(result.threshold).toContain('trailing weekdays, last 14 days');
  });

  it('a real drop on a Monday fails', async () => {
    await history(rhythm(addDays(MONDAY, -56), addDays(MONDAY, -1)));
    await today(MONDAY, 650);
    const result = await volume(MONDAY);
    expect(result.status).toBe('fail');
    expect(result.observed).toBe(650);
    expect(result.details).toMatch(/^650 rows, -3\d\.\d % against the median of 8 days \(same weekday/);
  });

  it('a day whose dead-letter check failed still counts for volume', async () => {
    // exactly three earlier Mondays: leaving one out would drop the seasonal baseline
    await history(rhythm(addDays(MONDAY, -21), addDays(MONDAY, -1)));
    const failedDay = addDays(MONDAY, -7);
    await earlierResult(failedDay, 'dead_letters', 'fail');
    await today(MONDAY, 990);
    const result = await volume(MONDAY);
    expect(result.status).toBe('pass');
    expect(result.threshold).toContain('same weekday');
    expect(result.details).toContain(failedDay);
    expect(result.details).not.toContain('left out');
  });

  it('a holiday spike does not widen the band afterwards', async () => {
    const past = rhythm(addDays(MONDAY, -56), addDays(MONDAY, -1));
    const holiday = addDays(MONDAY, -14);
    past[holiday] = 3500;
    await history(past);
    await today(MONDAY, 1400);

    // its volume check was never run (history loaded before the check existed): the median and MAD shrug it off
    const robust = await volume(MONDAY);
    expect(robust.status).toBe('fail');
    expect(Number(robust.threshold.split('–')[1].split(' ')[0])).toBeLessThan(1150);

    // its own volume check failed: it is left out of the baseline, named in the details
    await earlierResult(holiday, 'volume', 'fail');
    const leftOut = await volume(MONDAY);
    expect(leftOut.status).toBe('fail');
    expect(leftOut.details).toContain(`left out as anomalous: ${holiday}`);
    expect(leftOut.details).toContain('against the median of 7 days');
  });

  it('a change under the absolute floor does not alert; warm-up skips', async () => {
    await history(rhythm(addDays(MONDAY, -21), addDays(MONDAY, -1), 40));
    await today(MONDAY, 5);
    const small = await volume(MONDAY);
    expect(small.status).toBe('pass');
    expect(small.threshold).toContain('floor 100 rows');
    const strict = await volume(MONDAY, { volumeFloorRows: 10 });
    expect(strict.status).toBe('fail');

    const fresh = '2025-03-03';
    await history({ [addDays(fresh, -2)]: 900, [addDays(fresh, -1)]: 950 });
    await today(fresh, 100);
    const warmUp = await volume(fresh);
    expect(warmUp.status).toBe('skip');
    expect(warmUp.details).toContain('only 2 usable days in the last 7');
  });
});
