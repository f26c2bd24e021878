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
  /** TLS, SASL: see "Kafka security" below. */
  kafkaSsl: boolean;
  kafkaSslCa: string | null;
  kafkaSasl: KafkaSasl | null;
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

// --- Kafka security: KAFKA_SSL, KAFKA_SSL_CA, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD ---

export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

export interface KafkaSasl {
  mechanism: (typeof KAFKA_SASL_MECHANISMS)[number];
  username: string;
  password: string;
}

/** TLS (KAFKA_SSL=true, KAFKA_SSL_CA a PEM file, else the system's CAs) and SASL, for every Kafka connection. */
function kafkaSecurity(env: Env): Pick<Config, 'kafkaSsl' | 'kafkaSslCa' | 'kafkaSasl'> {
  const ssl = env.KAFKA_SSL?.trim().toLowerCase() ?? '';
  if (!['', 'true', 'false', '1', '0'].includes(ssl)) fail('KAFKA_SSL', env.KAFKA_SSL ?? '', 'use true or false');
  const ca = env.KAFKA_SSL_CA?.trim() || null;
  const mechanism = env.KAFKA_SASL_MECHANISM?.trim().toLowerCase() || null;
  const username = env.KAFKA_SASL_USERNAME?.trim() || null;
  const password = env.KAFKA_SASL_PASSWORD || null;
  if (mechanism !== null && !(KAFKA_SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
    fail('KAFKA_SASL_MECHANISM', mechanism, `use one of ${KAFKA_SASL_MECHANISMS.join(', ')}`);
  }
  if (mechanism === null && (username !== null || password !== null)) {
    throw new ConfigError(
      'KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set without KAFKA_SASL_MECHANISM: set it to plain, scram-sha-256 or scram-sha-512',
    );
  }
  if (mechanism !== null && (username === null || password === null)) {
    throw new ConfigError(
      `KAFKA_SASL_MECHANISM=${mechanism} needs both KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD to be set`,
    );
  }
  return {
    kafkaSsl: ssl === 'true' || ssl === '1' || ca !== null,
    kafkaSslCa: ca,
    kafkaSasl:
      mechanism === null
        ? null
        : { mechanism: mechanism as KafkaSasl['mechanism'], username: username ?? '', password: password ?? '' },
  };
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
    ...kafkaSecurity(env),
    lakeDir: read(env, 'LAKE_DIR'),
    slackWebhookUrl: slack ? url('SLACK_WEBHOOK_URL', slack, ['https:', 'http:']) : null,
  };
}
