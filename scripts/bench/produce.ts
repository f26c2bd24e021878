import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import type { Config } from '../../lib/config';
import { generateEvents } from '../../lib/generator';
import { EventSender } from '../../lib/kafka';
import { addDays } from '../../lib/temporal';

interface Message {
  key: string | Buffer;
  value: Buffer;
}

/**
 * The benchmark's events: one generated world running over two days (the same users come back on day 2), split at
 * midnight. Generating is slower than everything it feeds, so it runs once: day 1 is produced into every topic
 * that needs it and spooled to a file (the re-delivery produces the very same records again from there), day 2 is
 * spooled and produced from there when the benchmark gets to day 2. Day 1 and day 2 should both be weekdays, so
 * each gets the same number of events. The history run generates one world over D days and produces it day by
 * day (produceHistory).
 */

/** Messages handed to the sender at a time; the EventSenders batch them by bytes (as scripts/produce.ts does). */
const BATCH_SIZE = 4000;

export interface Produced {
  records: number;
  bad: number;
  seconds: number;
}

/** Sends batches keyed by user_id to each topic through lib/kafka's EventSender, as `make produce` does. */
class BatchSender {
  private constructor(private readonly producers: EventSender[]) {}

  static connect(config: Config, topics: string[]): Promise<BatchSender> {
    return Promise.resolve(new BatchSender(topics.map((topic) => EventSender.connect(config, topic))));
  }

  async send(messages: Message[]): Promise<void> {
    for (const producer of this.producers) {
      for (const m of messages) {
        const key = typeof m.key === 'string' ? Buffer.from(m.key) : m.key;
        await producer.send(key, m.value);
      }
    }
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled(this.producers.map((p) => p.close()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  }
}

/** A day's records on disk: [key length u32][key][value length u32][value][bad u8], repeated. */
class Spool {
  private readonly fd: number;
  private buf = Buffer.allocUnsafe(4 << 20);
  private pos = 0;
  constructor(file: string) {
    this.fd = openSync(file, 'w');
  }
  write(key: string, value: Buffer, bad: boolean): void {
    const keyBytes = Buffer.byteLength(key);
    const size = 9 + keyBytes + value.length;
    if (this.pos + size > this.buf.length) this.flush();
    if (size > this.buf.length) this.buf = Buffer.allocUnsafe(size);
    this.buf.writeUInt32LE(keyBytes, this.pos);
    this.buf.write(key, this.pos + 4);
    this.buf.writeUInt32LE(value.length, this.pos + 4 + keyBytes);
    value.copy(this.buf, this.pos + 8 + keyBytes);
    this.buf[this.pos + 8 + keyBytes + value.length] = bad ? 1 : 0;
    this.pos += size;
  }
  private flush(): void {
    let done = 0;
    while (done < this.pos) done += writeSync(this.fd, this.buf, done, this.pos - done);
    this.pos = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

function* readSpool(file: string): Generator<{ key: Buffer; value: Buffer; bad: boolean }> {
  const fd = openSync(file, 'r');
  try {
    let buf = Buffer.alloc(0);
    const chunk = Buffer.allocUnsafe(4 << 20);
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      buf = Buffer.concat([buf, chunk.subarray(0, n)]);
      let pos = 0;
      for (;;) {
        if (pos + 4 > buf.length) break;
        const keyLen = buf.readUInt32LE(pos);
        if (pos + 8 + keyLen > buf.length) break;
        const valueLen = buf.readUInt32LE(pos + 4 + keyLen);
        const end = pos + 9 + keyLen + valueLen;
        if (end > buf.length) break;
        yield {
          key: buf.subarray(pos + 4, pos + 4 + keyLen),
          value: buf.subarray(pos + 8 + keyLen, end - 1),
          bad: buf[end - 1] === 1,
        };
        pos = end;
      }
      buf = buf.subarray(pos);
    }
    if (buf.length > 0) throw new Error(`${file}: truncated spool (${buf.length} bytes left over)`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Generates `events` events for each of `start` and the day after in one pass: day 1 into every topic in
 * `day1Topics` and into `spools.day1`, day 2 into `spools.day2`. Returns day 1's figures.
 */
export async function produceDay1(
  config: Config,
  o: { events: number; start: string; seed: number; badRate: number; users?: number },
  day1Topics: string[],
  spools: { day1: string; day2: string },
  onProgress?: (records: number) => void,
): Promise<Produced> {
  const second = addDays(o.start, 1);
  const sender = await BatchSender.connect(config, day1Topics);
  const spool1 = new Spool(spools.day1);
  const spool = new Spool(spools.day2);
  const started = performance.now();
  let records = 0;
  let bad = 0;
  let seconds = 0;
  let inSecond = false;
  try {
    let batch: Message[] = [];
    for (const record of generateEvents({
      events: o.events * 2,
      days: 2,
      start: o.start,
      seed: o.seed,
      badRate: o.badRate,
      users: o.users,
    })) {
      if (!inSecond && record.expected.date === second) {
        inSecond = true;
        if (batch.length > 0) await sender.send(batch);
        batch = [];
        await sender.close();
        seconds = (performance.now() - started) / 1000;
      }
      if (inSecond) {
        spool.write(record.key, record.value, record.expected.bad !== null);
        continue;
      }
      spool1.write(record.key, record.value, record.expected.bad !== null);
      batch.push({ key: record.key, value: record.value });
      records++;
      if (record.expected.bad !== null) bad++;
      if (batch.length === BATCH_SIZE) {
        await sender.send(batch);
        batch = [];
        if (records % 100_000 === 0) onProgress?.(records);
      }
    }
    if (!inSecond) throw new Error(`the generator produced no events for ${second}`);
  } finally {
    spool1.close();
    spool.close();
    if (!inSecond) await sender.close().catch(() => undefined);
  }
  return { records, bad, seconds };
}

/** Produces the spooled records of a day into the config's topic. */
export async function produceSpool(config: Config, spoolFile: string): Promise<Produced> {
  const sender = await BatchSender.connect(config, [config.kafkaTopic]);
  const started = performance.now();
  let records = 0;
  let bad = 0;
  try {
    let batch: Message[] = [];
    for (const r of readSpool(spoolFile)) {
      batch.push({ key: r.key, value: r.value });
      records++;
      if (r.bad) bad++;
      if (batch.length === BATCH_SIZE) {
        await sender.send(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await sender.send(batch);
  } finally {
    await sender.close();
  }
  return { records, bad, seconds: (performance.now() - started) / 1000 };
}

/**
 * One generated world over `days` days from `start`, `eventsPerDay` events each (flatWeek: weekends as busy as
 * weekdays) drawn from a steady population of eventsPerDay / 5 users (GenerateOptions.users: about as many distinct
 * users on day 30 as on day 1, so the history measures the warehouse's growth, not the world's), produced into the config's topic day by day: when the generator reaches a new date, the day before is
 * flushed to Kafka and handed to `onDay` (which lands and loads it) before the next one is produced. Generating is
 * not timed. Records whose event_time is unusable (bad ones) go with the day being produced.
 */
export async function produceHistory(
  config: Config,
  o: { eventsPerDay: number; days: number; start: string; seed: number; badRate: number },
  onDay: (date: string, produced: Produced) => Promise<void>,
): Promise<void> {
  let sender = await BatchSender.connect(config, [config.kafkaTopic]);
  let day = { date: o.start, records: 0, bad: 0, started: performance.now() };
  let batch: Message[] = [];
  const finishDay = async () => {
    if (batch.length > 0) await sender.send(batch);
    batch = [];
    await sender.close();
    await onDay(day.date, {
      records: day.records,
      bad: day.bad,
      seconds: (performance.now() - day.started) / 1000,
    });
  };
  try {
    for (const record of generateEvents({
      events: o.eventsPerDay * o.days,
      days: o.days,
      start: o.start,
      seed: o.seed,
      badRate: o.badRate,
      flatWeek: true,
      users: Math.max(1, Math.round(o.eventsPerDay / 5)),
    })) {
      const date = record.expected.date;
      if (date !== null && date !== day.date) {
        await finishDay();
        sender = await BatchSender.connect(config, [config.kafkaTopic]);
        day = { date, records: 0, bad: 0, started: performance.now() };
      }
      batch.push({ key: record.key, value: record.value });
      day.records++;
      if (record.expected.bad !== null) day.bad++;
      if (batch.length === BATCH_SIZE) {
        await sender.send(batch);
        batch = [];
      }
    }
  } catch (err) {
    await sender.close().catch(() => undefined);
    throw err;
  }
  await finishDay();
}
