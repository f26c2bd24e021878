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
  };
}
