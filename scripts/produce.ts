import {
  EXIT,
  EXIT_CODES_HELP,
  UsageError,
  calendarDate,
  parseCommandLine,
  runCommand,
  share,
  wholeNumber,
} from '../lib/cli';
import { loadConfig } from '../lib/config';
import { type GenerateOptions } from '../lib/generator';
import { produceEvents } from '../lib/produce';

/**
 * `nightshift produce` (`make produce`): writes realistic, deterministic v1 events (and a share of bad records) into
 * Kafka. Usage: nightshift produce --help.
 */

// --- command line --------------------------------------------------------------------------------

export const HELP = `Produce realistic, deterministic v1 events into Kafka.

usage: nightshift produce [--events N] [--days D] [--start YYYY-MM-DD] [--seed S] [--bad-rate R] [--topic T]
   or: make produce EVENTS=N DAYS=D START=YYYY-MM-DD SEED=S BAD_RATE=R

  --events N      records to produce, bad ones included (default 10000)
  --days D        days covered (default 3)
  --start DATE    first day, YYYY-MM-DD UTC (default: DAYS days before today)
  --seed S        PRNG seed; the same flags give the same records (default 42)
  --bad-rate R    share of records the contract rejects, 0..1 (default 0.01)
  --topic T       Kafka topic (default KAFKA_TOPIC, i.e. "events")

${EXIT_CODES_HELP}`;

const OPTIONS = {
  events: { type: 'string', default: '10000' },
  days: { type: 'string', default: '3' },
  start: { type: 'string' },
  seed: { type: 'string', default: '42' },
  'bad-rate': { type: 'string', default: '0.01' },
  topic: { type: 'string' },
} as const;

function defaultStart(days: number): string {
  const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
  return new Date(today - days * 86_400_000).toISOString().slice(0, 10);
}

/** Parses the command line; throws a UsageError naming the bad value and the fix. Null for --help. */
export function parseProduceArgs(argv: string[]): (GenerateOptions & { topic?: string }) | null {
  const parsed = parseCommandLine(argv, OPTIONS);
  if (parsed === 'help') return null;
  const v = parsed.values;
  if (v.topic !== undefined && !/^[A-Za-z0-9._-]{1,249}$/.test(v.topic)) {
    throw new UsageError(
      `--topic ${JSON.stringify(v.topic)} is not a Kafka topic name; use letters, digits, ".", "_" or "-"`,
    );
  }
  const days = wholeNumber('--days', v.days, 1);
  return {
    events: wholeNumber('--events', v.events, 0),
    days,
    start: v.start === undefined ? defaultStart(days) : calendarDate('--start', v.start),
    seed: wholeNumber('--seed', v.seed, -(2 ** 31)),
    badRate: share('--bad-rate', v['bad-rate']),
    topic: v.topic,
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

export async function main(argv: string[]): Promise<number> {
  const parsed = parseProduceArgs(argv);
  if (parsed === null) {
    console.log(HELP);
    return EXIT.ok;
  }
  const config = loadConfig();
  const report = parsed.events >= 50_000 ? progressReporter(parsed.events) : undefined;
  const summary = await produceEvents(config, { ...parsed, onProgress: report && ((sent) => report(sent)) });
  console.log(
    `produced ${summary.events} events (${summary.bad} bad) over ${summary.days} days from ${parsed.start} into "${summary.topic}" in ${summary.seconds.toFixed(1)} s, ${Math.round(summary.eventsPerSecond)} events/s`,
  );
  return EXIT.ok;
}

if (require.main === module) runCommand('produce', main);
