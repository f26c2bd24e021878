import { type Config, loadConfig } from '../lib/config';
import { type GenerateOptions, checkGenerateOptions, generateEvents } from '../lib/generator';
import { EventSender } from '../lib/kafka';

/**
 * `make produce`: writes realistic, deterministic v1 events (and a share of bad records) into Kafka.
 * Usage: node --import tsx scripts/produce.ts --events N --days D --start YYYY-MM-DD --seed S --bad-rate R [--topic T]
 */

export interface ProduceOptions extends GenerateOptions {
  /** Defaults to config.kafkaTopic. */
  topic?: string;
  /** Called every `progressEvery` records and at the end. */
  onProgress?: (sent: number, total: number) => void;
}

export interface ProduceSummary {
  topic: string;
  events: number;
  bad: number;
  days: number;
  seconds: number;
  eventsPerSecond: number;
  /** Records per lake date they belong under (see GeneratedRecord.expected.date). */
  byDate: Record<string, number>;
  /** Records whose event_time is unusable: the landing files them under their Kafka timestamp's date. */
  undated: number;
}

/** Generates the events for `options` and sends them keyed by user_id, in batches, several requests in flight. */
export async function produceEvents(config: Config, options: ProduceOptions): Promise<ProduceSummary> {
  checkGenerateOptions(options);
  const topic = options.topic ?? config.kafkaTopic;
  let sent = 0;
  const producer = EventSender.connect(config, topic, (records) => {
    sent += records;
    options.onProgress?.(sent, options.events);
  });
  const started = process.hrtime.bigint();
  const byDate: Record<string, number> = {};
  let undated = 0;
  let bad = 0;
  try {
    for (const record of generateEvents(options)) {
      await producer.send(Buffer.from(record.key), record.value);
      if (record.expected.date === null) undated++;
      else byDate[record.expected.date] = (byDate[record.expected.date] ?? 0) + 1;
      if (record.expected.bad !== null) bad++;
    }
  } finally {
    await producer.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    topic,
    events: options.events,
    bad,
    days: options.days,
    seconds,
    eventsPerSecond: options.events / seconds,
    byDate,
    undated,
  };
}

// --- command line --------------------------------------------------------------------------------

const HELP = `Produce realistic, deterministic v1 events into Kafka.

Usage: make produce EVENTS=N DAYS=D START=YYYY-MM-DD SEED=S BAD_RATE=R
   or: node --import tsx scripts/produce.ts [flags]

  --events N      records to produce, bad ones included (default 10000)
  --days D        days covered (default 3)
  --start DATE    first day, YYYY-MM-DD UTC (default: DAYS days before today)
  --seed S        PRNG seed; the same flags give the same records (default 42)
  --bad-rate R    share of records the contract rejects, 0..1 (default 0.01)
  --topic T       Kafka topic (default KAFKA_TOPIC, i.e. "events")
  --help          this text
`;

class UsageError extends Error {
  override name = 'UsageError';
}

function flagValue(args: string[], i: number, flag: string): string {
  const value = args[i + 1];
  if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag} needs a value, e.g. ${flag} 10`);
  return value;
}

function wholeNumber(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(
      `${flag} ${JSON.stringify(value)} is not a whole number >= ${min}; use e.g. ${flag} ${Math.max(min, 10)}`,
    );
  }
  return n;
}

function defaultStart(days: number): string {
  const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
  return new Date(today - days * 86_400_000).toISOString().slice(0, 10);
}

/** Parses the command line; throws a UsageError naming the bad value and the fix. */
export function parseArgs(args: string[]): (GenerateOptions & { topic?: string }) | 'help' {
  const o: Partial<GenerateOptions> & { topic?: string } = {};
  for (let i = 0; i < args.length; i += 2) {
    const flag = args[i];
    if (flag === '--help' || flag === '-h') return 'help';
    const value = flagValue(args, i, flag);
    switch (flag) {
      case '--events':
        o.events = wholeNumber(flag, value, 0);
        break;
      case '--days':
        o.days = wholeNumber(flag, value, 1);
        break;
      case '--seed':
        o.seed = wholeNumber(flag, value, -(2 ** 31));
        break;
      case '--start':
        if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || new Date(`${value}T00:00:00Z`).toISOString().slice(0, 10) !== value) {
          throw new UsageError(
            `--start ${JSON.stringify(value)} is not a valid date; use YYYY-MM-DD, e.g. --start 2024-12-01`,
          );
        }
        o.start = value;
        break;
      case '--bad-rate': {
        const r = Number(value);
        if (value.trim() === '' || !Number.isFinite(r) || r < 0 || r > 1) {
          throw new UsageError(
            `--bad-rate ${JSON.stringify(value)} is not a share between 0 and 1; use e.g. --bad-rate 0.01`,
          );
        }
        o.badRate = r;
        break;
      }
      case '--topic':
        if (!/^[A-Za-z0-9._-]{1,249}$/.test(value)) {
          throw new UsageError(
            `--topic ${JSON.stringify(value)} is not a Kafka topic name; use letters, digits, ".", "_" or "-"`,
          );
        }
        o.topic = value;
        break;
      default:
        throw new UsageError(`unknown flag ${JSON.stringify(flag)}; see --help`);
    }
  }
  const days = o.days ?? 3;
  return {
    events: o.events ?? 10_000,
    days,
    start: o.start ?? defaultStart(days),
    seed: o.seed ?? 42,
    badRate: o.badRate ?? 0.01,
    topic: o.topic,
  };
}

/** A progress bar on a terminal; a plain line every 10 % otherwise (CI logs). */
function progressReporter(total: number): (sent: number) => void {
  const tty = process.stderr.isTTY === true;
  const started = Date.now();
  let lastDraw = 0;
  let lastDecile = 0;
  return (sent) => {
    const now = Date.now();
    const rate = Math.round(sent / Math.max((now - started) / 1000, 0.001));
    if (tty) {
      if (now - lastDraw < 100 && sent < total) return;
      lastDraw = now;
      const width = 30;
      const filled = Math.round((sent / total) * width);
      process.stderr.write(
        `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor((sent / total) * 100)}% ${sent.toLocaleString('en-US')}/${total.toLocaleString('en-US')} ${rate.toLocaleString('en-US')} events/s`,
      );
      if (sent >= total) process.stderr.write('\n');
      return;
    }
    const decile = Math.floor((sent / total) * 10);
    if (decile > lastDecile) {
      lastDecile = decile;
      process.stderr.write(`produced ${sent}/${total} (${decile * 10}%), ${rate} events/s\n`);
    }
  };
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`produce: ${err.message}`);
    process.exit(2);
  }
  if (parsed === 'help') {
    process.stdout.write(HELP);
    return;
  }
  const config = loadConfig();
  const report = parsed.events >= 50_000 ? progressReporter(parsed.events) : undefined;
  const summary = await produceEvents(config, { ...parsed, onProgress: report && ((sent) => report(sent)) });
  console.log(
    `produced ${summary.events} events (${summary.bad} bad) over ${summary.days} days from ${parsed.start} into "${summary.topic}" in ${summary.seconds.toFixed(1)} s, ${Math.round(summary.eventsPerSecond)} events/s`,
  );
}

if (/[\\/]produce\.ts$/.test(process.argv[1] ?? '')) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
