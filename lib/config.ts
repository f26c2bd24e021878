/**
 * Configuration, read once from the environment, validated, and handed down.
 * Workflows never read it: activities and scripts receive it from their entry point.
 */

export const TASK_QUEUE = 'nightshift';
export const EVENTS_TOPIC = 'events';

export interface Config {
  databaseUrl: string;
  temporalAddress: string;
  temporalNamespace: string;
  temporalTaskQueue: string;
  temporalUiUrl: string;
  kafkaBrokers: string[];
  kafkaTopic: string;
  lakeDir: string;
  slackWebhookUrl: string | null;
  // --- operating: metrics, logs, late-data alerts (one block, see README "Operating") ---
  /** Port of the worker's Prometheus endpoint /metrics (0: none). METRICS_PORT, default 9464. */
  metricsPort: number;
  /** Loopback port the Temporal SDK's own exporter binds; its series are merged into /metrics. TEMPORAL_METRICS_PORT, default 9465. */
  temporalMetricsPort: number;
  /** Log lines as JSON (log search) or pretty (a terminal). LOG_FORMAT; default pretty on a TTY, else json. */
  logFormat: 'json' | 'pretty' | null;
  /** LOG_LEVEL: trace, debug, info (default), warn, error. */
  logLevel: string;
  /** The previous UTC day is late when not loaded by this UTC time of day. LATE_DATA_DEADLINE, default 06:00. */
  lateDataDeadline: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const DEFAULTS = {
  DATABASE_URL: 'postgres://nightshift:nightshift@127.0.0.1:5432/nightshift',
  TEMPORAL_ADDRESS: '127.0.0.1:7233',
  TEMPORAL_NAMESPACE: 'default',
  TEMPORAL_TASK_QUEUE: TASK_QUEUE,
  TEMPORAL_UI_URL: 'http://127.0.0.1:8233',
  KAFKA_BROKERS: '127.0.0.1:9092',
  KAFKA_TOPIC: EVENTS_TOPIC,
  LAKE_DIR: '.data/lake',
  METRICS_PORT: '9464',
  TEMPORAL_METRICS_PORT: '9465',
  LOG_LEVEL: 'info',
  LATE_DATA_DEADLINE: '06:00',
} as const;

type Env = Record<string, string | undefined>;

function read(env: Env, name: keyof typeof DEFAULTS): string {
  const value = env[name]?.trim();
  return value ? value : DEFAULTS[name];
}

function fail(name: string, value: string, fix: string): never {
  throw new ConfigError(`Invalid ${name}=${JSON.stringify(value)}: ${fix}`);
}

function hostPort(name: string, value: string): string {
  if (!/^[A-Za-z0-9.\-_]+:\d{1,5}$/.test(value) || Number(value.split(':').pop()) > 65535) {
    fail(name, value, 'expected host:port, for example 127.0.0.1:7233');
  }
  return value;
}

function url(name: string, value: string, protocols: string[]): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    fail(name, value, `expected a URL starting with ${protocols.join(' or ')}`);
  }
  if (!protocols.includes(parsed.protocol)) {
    fail(name, value, `expected a URL starting with ${protocols.join(' or ')}`);
  }
  return value;
}

function identifier(name: string, value: string): string {
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(value)) {
    fail(name, value, 'use letters, digits, ".", "_" or "-" only');
  }
  return value;
}

function port(name: string, value: string): number {
  const n = Number(value);
  if (!/^\d{1,5}$/.test(value) || n > 65535) fail(name, value, 'expected a port number from 0 to 65535');
  return n;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) fail(name, value, `use one of ${allowed.join(', ')}`);
  return value as T;
}

function timeOfDay(name: string, value: string): string {
  const m = /^(\d{2}):(\d{2})$/.exec(value);
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59) fail(name, value, 'expected a UTC time of day HH:MM, e.g. 06:00');
  return value;
}

/** Reads and validates the configuration; throws a ConfigError naming the bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const slack = env.SLACK_WEBHOOK_URL?.trim();
  const brokers = read(env, 'KAFKA_BROKERS')
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  if (brokers.length === 0) fail('KAFKA_BROKERS', env.KAFKA_BROKERS ?? '', 'list at least one host:port');
  return {
    databaseUrl: url('DATABASE_URL', read(env, 'DATABASE_URL'), ['postgres:', 'postgresql:']),
    temporalAddress: hostPort('TEMPORAL_ADDRESS', read(env, 'TEMPORAL_ADDRESS')),
    temporalNamespace: identifier('TEMPORAL_NAMESPACE', read(env, 'TEMPORAL_NAMESPACE')),
    temporalTaskQueue: identifier('TEMPORAL_TASK_QUEUE', read(env, 'TEMPORAL_TASK_QUEUE')),
    temporalUiUrl: url('TEMPORAL_UI_URL', read(env, 'TEMPORAL_UI_URL'), ['http:', 'https:']).replace(/\/+$/, ''),
    kafkaBrokers: brokers.map((b) => hostPort('KAFKA_BROKERS', b)),
    kafkaTopic: identifier('KAFKA_TOPIC', read(env, 'KAFKA_TOPIC')),
    lakeDir: read(env, 'LAKE_DIR'),
    slackWebhookUrl: slack ? url('SLACK_WEBHOOK_URL', slack, ['https:', 'http:']) : null,
    metricsPort: port('METRICS_PORT', read(env, 'METRICS_PORT')),
    temporalMetricsPort: port('TEMPORAL_METRICS_PORT', read(env, 'TEMPORAL_METRICS_PORT')),
    logFormat: env.LOG_FORMAT?.trim() ? oneOf('LOG_FORMAT', env.LOG_FORMAT.trim(), ['json', 'pretty'] as const) : null,
    logLevel: oneOf('LOG_LEVEL', read(env, 'LOG_LEVEL'), ['trace', 'debug', 'info', 'warn', 'error'] as const),
    lateDataDeadline: timeOfDay('LATE_DATA_DEADLINE', read(env, 'LATE_DATA_DEADLINE')),
  };
}
