import { MAX_FUTURE_MS, parseEvent } from '../../lib/events';
import { generateEvents } from '../../lib/generator';
import { DeadLetterRows, EventRows, toParquet } from '../../lib/lake';

/**
 * Warms a thread up for landing: runs generated records (a few of them bad) through what a landing runs for each
 * record — validation, the row buffers — and the Parquet encoder, in memory only, so that the code a landing then
 * runs is compiled and optimised already. Nothing is read from Kafka and nothing is written.
 */

/** Records run through: enough for V8 to optimise the per-record code. */
const WARM_UP_RECORDS = 5_000;
/** Rows per Parquet file encoded during the warm-up. */
const WARM_UP_FILE_ROWS = 1_000;

/** Runs `records` generated records through validation, row buffers and Parquet encoding; returns the rows encoded. */
export function warmUpLanding(records = WARM_UP_RECORDS): number {
  const now = new Date();
  let events = new EventRows('warm-up', 0);
  const deadLetters = new DeadLetterRows('warm-up', 0);
  let encoded = 0;
  let offset = 0;
  const encode = (rows: EventRows | DeadLetterRows): void => {
    encoded += rows.length;
    toParquet(rows.toTable());
  };
  for (const r of generateEvents({ events: records, days: 1, start: '2024-01-01', seed: 1, badRate: 0.01 })) {
    const parsed = parseEvent(r.value, now);
    if (parsed.ok) {
      events.push(parsed.event, offset, now.getTime());
    } else {
      const timeMs = parsed.eventTime?.getTime() ?? null;
      const usable = timeMs !== null && timeMs <= now.getTime() + MAX_FUTURE_MS;
      deadLetters.push(parsed.reason, r.value, offset, now.getTime(), parsed.eventId ?? null, usable ? timeMs : null);
    }
    offset++;
    if (events.length >= WARM_UP_FILE_ROWS) {
      encode(events);
      events = new EventRows('warm-up', 0);
    }
  }
  if (events.length > 0) encode(events);
  if (deadLetters.length > 0) encode(deadLetters);
  return encoded;
}
