import type { Config } from './config';
import { type GenerateOptions, checkGenerateOptions, generateEvents } from './generator';
import { EventSender } from './kafka';

/** Produces realistic, deterministic v1 events (and a share of bad records) into Kafka: `make produce`, the demo, tests. */

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

/** Generates the events for `options` and sends them keyed by user_id through the project's Kafka client (lib/kafka.ts). */
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
