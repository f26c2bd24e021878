import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { type DqConfig, DQ_DEFAULTS } from './checks';
import { type LakeS3, parseS3Url } from './lake-store';
import { registerEndpoint, registerSecrets, MASK } from './redact';
import { type AlertConfig, ALERT_DEFAULTS } from './slack';
import { dateProblem } from './temporal';

/**
 * Configuration, read once from the environment and the project's `.env` file, validated, and handed down.
 * Nothing else reads process.env: activities and scripts receive this object from their entry point, and
 * workflows never see it. The environment wins over `.env`. A secret's value is never part of an error.
 */

export const TASK_QUEUE = 'nightshift';
export const EVENTS_TOPIC = 'events';

/** Temporal over TLS: mutual TLS when a client certificate and key are given, server-verified TLS otherwise. */
export interface TemporalTlsConfig {
  /** PEM client certificate file (TEMPORAL_TLS_CERT); with keyFile, mutual TLS. */
  certFile: string | null;
  /** PEM client private key file (TEMPORAL_TLS_KEY). */
  keyFile: string | null;
  /** PEM CA bundle that signed the server's certificate (TEMPORAL_TLS_CA); the system's CAs when null. */
  caFile: string | null;
  /** The name the server certificate is checked against, when it differs from the address's host (TEMPORAL_TLS_SERVER_NAME). */
  serverName: string | null;
}

export interface Config {
  databaseUrl: string;
  temporalAddress: string;
  temporalNamespace: string;
  temporalTaskQueue: string;
  temporalUiUrl: string;
  /** Null: plain gRPC (the local dev server). */
  temporalTls: TemporalTlsConfig | null;
  /** Temporal Cloud or a gateway's API key (TEMPORAL_API_KEY); implies TLS. */
  temporalApiKey: string | null;
  kafkaBrokers: string[];
  kafkaTopic: string;
  /** TLS, SASL: see "Kafka security" below. */
  kafkaSsl: boolean;
  kafkaSslCa: string | null;
  kafkaSasl: KafkaSasl | null;
  /** The lake's local folder (LAKE_DIR, or LAKE_URL=file:…); with an S3 lake, LAKE_URL itself (for messages). */
  lakeDir: string;
  /** LAKE_URL=s3://bucket/prefix with AWS_*; null: the lake is the local folder lakeDir. */
  lakeS3: LakeS3 | null;
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
  /**
   * `nightshift worker` starts and warms its landing threads and a stage thread before it polls, so the day's
   * first landing and stage do not pay their start-up. WORKER_WARM_UP, default true.
   */
  workerWarmUp: boolean;
  /** The read-only analyst role's password, set by `make migrate`; null leaves the role unable to log in. */
  analystPassword: string | null;
  /** Data-quality thresholds (DQ_*). */
  dq: DqConfig;
  /** Alert lifecycle and Slack delivery (ALERT_*, SLACK_*). */
  alerts: AlertConfig;
  /** `make demo`'s size (DEMO_EVENTS, DEMO_DAYS). */
  demo: { events: number; days: number };
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

/** Variables whose values are secrets: never printed, not even in a configuration error. */
export const SECRET_VARIABLES = [
  'SLACK_WEBHOOK_URL',
  'TEMPORAL_API_KEY',
  'ANALYST_PASSWORD',
  'AWS_SECRET_ACCESS_KEY',
  'KAFKA_SASL_PASSWORD',
] as const;

interface NumberSetting {
  name: string;
  min: number;
  max: number;
  integer?: boolean;
}

const DQ_ENV: Record<Exclude<keyof DqConfig, 'scheduleStart'>, NumberSetting> = {
  freshnessMaxAgeHours: { name: 'DQ_FRESHNESS_MAX_AGE_HOURS', min: 0.1, max: 24 * 365 },
  freshnessLastHours: { name: 'DQ_FRESHNESS_LAST_HOURS', min: 0.01, max: 24 },
  volumeTolerance: { name: 'DQ_VOLUME_TOLERANCE', min: 0, max: 10 },
  volumeMinHistoryDays: { name: 'DQ_VOLUME_MIN_HISTORY_DAYS', min: 1, max: 28, integer: true },
  nullMaxRatio: { name: 'DQ_NULL_MAX_RATIO', min: 0, max: 1 },
  deadLetterMaxRatio: { name: 'DQ_DEAD_LETTER_MAX_RATIO', min: 0, max: 1 },
  reconciliationTolerance: { name: 'DQ_RECONCILIATION_TOLERANCE', min: 0, max: 1e12, integer: true },
  scheduleGapsMax: { name: 'DQ_SCHEDULE_GAPS_MAX', min: 0, max: 100_000, integer: true },
  volumeWeeks: { name: 'DQ_VOLUME_WEEKS', min: 2, max: 52, integer: true },
  volumeMinWeeks: { name: 'DQ_VOLUME_MIN_WEEKS', min: 1, max: 52, integer: true },
  volumeMadK: { name: 'DQ_VOLUME_MAD_K', min: 0, max: 100 },
  volumeMinBand: { name: 'DQ_VOLUME_MIN_BAND', min: 0, max: 10 },
  volumeFloorRows: { name: 'DQ_VOLUME_FLOOR_ROWS', min: 0, max: 1e12, integer: true },
};

const ALERT_ENV: Record<keyof AlertConfig, NumberSetting> = {
  materialChange: { name: 'ALERT_MATERIAL_CHANGE', min: 0, max: 100 },
  maxAttempts: { name: 'SLACK_MAX_ATTEMPTS', min: 1, max: 20, integer: true },
  retryBaseMs: { name: 'SLACK_RETRY_BASE_MS', min: 0, max: 60_000 },
  retryBudgetMs: { name: 'SLACK_RETRY_BUDGET_MS', min: 0, max: 300_000 },
  timeoutMs: { name: 'SLACK_TIMEOUT_MS', min: 100, max: 60_000 },
  redeliverMaxAgeHours: { name: 'ALERT_REDELIVER_MAX_AGE_HOURS', min: 0, max: 24 * 365 },
};

const DEMO_ENV: Record<keyof Config['demo'], NumberSetting> = {
  events: { name: 'DEMO_EVENTS', min: 1, max: 100_000_000, integer: true },
  days: { name: 'DEMO_DAYS', min: 1, max: 366, integer: true },
};
const DEMO_DEFAULTS: Config['demo'] = { events: 210_000, days: 7 };

export type Env = Record<string, string | undefined>;

/** The folder holding package.json: the project root, from the TypeScript sources and from dist/ alike. */
function projectRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return process.cwd();
  }
}

/** The project's `.env`, at its root (whatever the working directory). */
export const ENV_FILE = path.join(projectRoot(), '.env');

/**
 * The variables of `file` (KEY=value lines, Node's `.env` syntax) overlaid by `env`: the environment wins over the
 * file. A missing file is no error.
 */
export function readEnvironment(file: string = ENV_FILE, env: Env = process.env): Env {
  if (!existsSync(file)) return { ...env };
  let parsed: Env;
  try {
    parsed = parseEnv(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`Cannot read ${file}: ${(err as Error).message}; fix or remove it`, { cause: err });
  }
  const merged: Env = { ...parsed };
  for (const [name, value] of Object.entries(env)) if (value !== undefined) merged[name] = value;
  return merged;
}

function read(env: Env, name: keyof typeof DEFAULTS): string {
  const value = env[name]?.trim();
  return value ? value : DEFAULTS[name];
}

function optional(env: Env, name: string): string | null {
  const value = env[name]?.trim();
  return value ? value : null;
}

/** How a value appears in an error: secrets not at all, URLs with their password masked. */
function shown(name: string, value: string): string {
  if ((SECRET_VARIABLES as readonly string[]).includes(name)) return `${name} (value not shown, it is secret)`;
  if (name === 'DATABASE_URL') {
    try {
      if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) throw new Error('not an authority URL');
      const url = new URL(value);
      if (url.password) url.password = MASK;
      return `${name}=${JSON.stringify(url.toString())}`;
    } catch {
      // an unparsable URL may still hold a password anywhere
      return `${name} (value not shown: it may hold a password)`;
    }
  }
  return `${name}=${JSON.stringify(value)}`;
}

function fail(name: string, value: string, fix: string): never {
  throw new ConfigError(`Invalid ${shown(name, value)}: ${fix}`);
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

/** DQ_SCHEDULE_START: the first day the daily schedule should have run (schedule_gaps counts from it). */
function scheduleStart(env: Env): string | null {
  const value = env.DQ_SCHEDULE_START?.trim();
  if (!value) return DQ_DEFAULTS.scheduleStart;
  const problem = dateProblem(value);
  if (problem) fail('DQ_SCHEDULE_START', value, `${problem}; use YYYY-MM-DD or unset it`);
  return value;
}

function timeOfDay(name: string, value: string): string {
  const m = /^(\d{2}):(\d{2})$/.exec(value);
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59) fail(name, value, 'expected a UTC time of day HH:MM, e.g. 06:00');
  return value;
}

function numbers<T extends object>(env: Env, table: Record<keyof T, NumberSetting>, defaults: T): T {
  const config = { ...defaults };
  for (const key of Object.keys(table) as (keyof T)[]) {
    const { name, min, max, integer } = table[key];
    const raw = env[name]?.trim();
    if (!raw) continue;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      fail(
        name,
        raw,
        `expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (default ${String(defaults[key])}); fix or unset it`,
      );
    }
    (config as Record<keyof T, unknown>)[key] = value;
  }
  return config;
}

const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

function databaseUrl(env: Env): string {
  const value = url('DATABASE_URL', read(env, 'DATABASE_URL'), ['postgres:', 'postgresql:']);
  const parsed = new URL(value);
  if (!/^postgres(ql)?:\/\//.test(value) || (!parsed.hostname && !parsed.searchParams.get('host'))) {
    fail(
      'DATABASE_URL',
      value,
      'expected postgres://user@host:port/database (with :password after the user when the server wants one)',
    );
  }
  const sslmode = parsed.searchParams.get('sslmode');
  if (sslmode !== null && !SSL_MODES.includes(sslmode)) {
    fail('DATABASE_URL', value, `sslmode=${sslmode} is not one of ${SSL_MODES.join(', ')}`);
  }
  for (const param of ['sslrootcert', 'sslcert', 'sslkey']) {
    const file = parsed.searchParams.get(param);
    if (file && !readableFile(file)) fail('DATABASE_URL', value, `${param}=${file}: no such readable file`);
  }
  return value;
}

function readableFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function file(env: Env, name: string): string | null {
  const value = optional(env, name);
  if (value && !readableFile(value)) fail(name, value, 'no such file: give the path of a PEM file, or unset it');
  return value;
}

function boolean(env: Env, name: string): boolean | null {
  const value = optional(env, name)?.toLowerCase();
  if (value === undefined || value === null) return null;
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  fail(name, value, 'expected true or false');
}

function temporalTls(env: Env, apiKey: string | null): TemporalTlsConfig | null {
  const certFile = file(env, 'TEMPORAL_TLS_CERT');
  const keyFile = file(env, 'TEMPORAL_TLS_KEY');
  const caFile = file(env, 'TEMPORAL_TLS_CA');
  const serverName = optional(env, 'TEMPORAL_TLS_SERVER_NAME');
  const forced = boolean(env, 'TEMPORAL_TLS');
  if (certFile && !keyFile) {
    throw new ConfigError(
      'TEMPORAL_TLS_KEY is not set but TEMPORAL_TLS_CERT is: mutual TLS needs both, give the client private key file too',
    );
  }
  if (keyFile && !certFile) {
    throw new ConfigError(
      'TEMPORAL_TLS_CERT is not set but TEMPORAL_TLS_KEY is: mutual TLS needs both, give the client certificate file too',
    );
  }
  const wanted = Boolean(certFile || caFile || serverName || apiKey);
  if (forced === false && wanted) {
    fail(
      'TEMPORAL_TLS',
      'false',
      `${apiKey ? 'TEMPORAL_API_KEY' : 'a TEMPORAL_TLS_* setting'} needs TLS: unset TEMPORAL_TLS or the TLS settings`,
    );
  }
  if (!wanted && !forced) return null;
  return { certFile, keyFile, caFile, serverName };
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

// --- the lake: LAKE_URL (file: or s3://bucket/prefix), LAKE_DIR, AWS_* ---

/**
 * LAKE_URL wins over LAKE_DIR: `file:/abs/path`, `file:relative/path` or a plain path is a local folder;
 * `s3://bucket/prefix` an S3 lake, with AWS_REGION (default us-east-1), AWS_ENDPOINT_URL_S3 for an S3-compatible
 * server (path-style addressing then, unless AWS_S3_FORCE_PATH_STYLE=false), AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY (both, or neither for the SDK's default credential chain).
 */
function lake(env: Env, secret: string | null): Pick<Config, 'lakeDir' | 'lakeS3'> {
  const value = env.LAKE_URL?.trim() || null;
  if (value === null) return { lakeDir: read(env, 'LAKE_DIR'), lakeS3: null };
  if (value.startsWith('file:')) {
    const dir = value.startsWith('file://') ? new URL(value).pathname : value.slice('file:'.length);
    if (dir === '') fail('LAKE_URL', value, 'name a folder, e.g. file:.data/lake');
    return { lakeDir: dir, lakeS3: null };
  }
  if (!value.includes('://')) return { lakeDir: value, lakeS3: null };
  const s3 = parseS3Url(value);
  if (s3 === null || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(s3.bucket)) {
    fail(
      'LAKE_URL',
      value,
      'use file:<folder> or s3://<bucket>/<prefix> (a bucket name of 3-63 lower-case letters, digits, dots, hyphens)',
    );
  }
  const { bucket, prefix } = s3 as { bucket: string; prefix: string };
  const keyId = env.AWS_ACCESS_KEY_ID?.trim() || null;
  if ((keyId === null) !== (secret === null)) {
    throw new ConfigError(
      'set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the S3 lake, or neither (the SDK then uses its default credential chain)',
    );
  }
  const endpointValue = env.AWS_ENDPOINT_URL_S3?.trim() || null;
  const endpoint = endpointValue === null ? null : url('AWS_ENDPOINT_URL_S3', endpointValue, ['http:', 'https:']);
  const pathStyle = env.AWS_S3_FORCE_PATH_STYLE?.trim().toLowerCase() || null;
  if (pathStyle !== null && !['true', 'false', '1', '0'].includes(pathStyle)) {
    fail('AWS_S3_FORCE_PATH_STYLE', pathStyle, 'use true or false');
  }
  return {
    lakeDir: `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`,
    lakeS3: {
      bucket,
      prefix,
      region: env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim() || 'us-east-1',
      endpoint,
      forcePathStyle: pathStyle === null ? endpoint !== null : pathStyle === 'true' || pathStyle === '1',
      accessKeyId: keyId,
      secretAccessKey: secret,
    },
  };
}

/** Reads and validates the configuration; throws a ConfigError naming the bad variable. */
export function loadConfig(env: Env = readEnvironment()): Config {
  const slack = optional(env, 'SLACK_WEBHOOK_URL');
  const apiKey = optional(env, 'TEMPORAL_API_KEY');
  const analystPassword = optional(env, 'ANALYST_PASSWORD');
  const awsSecret = optional(env, 'AWS_SECRET_ACCESS_KEY');
  // registered before validation, so that a value the checks below reject is masked wherever it surfaces; the
  // database password is masked by its place in the URL instead (the local one, "nightshift", is a common word)
  registerSecrets(apiKey, analystPassword, awsSecret, env.KAFKA_SASL_PASSWORD, slack, slack?.split('/services/')[1]);
  const brokers = read(env, 'KAFKA_BROKERS')
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  if (brokers.length === 0) fail('KAFKA_BROKERS', env.KAFKA_BROKERS ?? '', 'list at least one host:port');
  const config: Config = {
    databaseUrl: databaseUrl(env),
    temporalAddress: hostPort('TEMPORAL_ADDRESS', read(env, 'TEMPORAL_ADDRESS')),
    temporalNamespace: identifier('TEMPORAL_NAMESPACE', read(env, 'TEMPORAL_NAMESPACE')),
    temporalTaskQueue: identifier('TEMPORAL_TASK_QUEUE', read(env, 'TEMPORAL_TASK_QUEUE')),
    temporalUiUrl: url('TEMPORAL_UI_URL', read(env, 'TEMPORAL_UI_URL'), ['http:', 'https:']).replace(/\/+$/, ''),
    temporalTls: temporalTls(env, apiKey),
    temporalApiKey: apiKey,
    kafkaBrokers: brokers.map((b) => hostPort('KAFKA_BROKERS', b)),
    kafkaTopic: identifier('KAFKA_TOPIC', read(env, 'KAFKA_TOPIC')),
    ...kafkaSecurity(env),
    ...lake(env, awsSecret),
    slackWebhookUrl: slack ? url('SLACK_WEBHOOK_URL', slack, ['https:', 'http:']) : null,
    metricsPort: port('METRICS_PORT', read(env, 'METRICS_PORT')),
    temporalMetricsPort: port('TEMPORAL_METRICS_PORT', read(env, 'TEMPORAL_METRICS_PORT')),
    logFormat: env.LOG_FORMAT?.trim() ? oneOf('LOG_FORMAT', env.LOG_FORMAT.trim(), ['json', 'pretty'] as const) : null,
    logLevel: oneOf('LOG_LEVEL', read(env, 'LOG_LEVEL'), ['trace', 'debug', 'info', 'warn', 'error'] as const),
    lateDataDeadline: timeOfDay('LATE_DATA_DEADLINE', read(env, 'LATE_DATA_DEADLINE')),
    workerWarmUp: boolean(env, 'WORKER_WARM_UP') ?? true,
    analystPassword,
    dq: { ...numbers<Omit<DqConfig, 'scheduleStart'>>(env, DQ_ENV, DQ_DEFAULTS), scheduleStart: scheduleStart(env) },
    alerts: numbers(env, ALERT_ENV, ALERT_DEFAULTS),
    demo: numbers(env, DEMO_ENV, DEMO_DEFAULTS),
  };
  const db = new URL(config.databaseUrl);
  registerEndpoint('DATABASE_URL', db.hostname, Number(db.port || 5432));
  const [temporalHost, temporalPort] = config.temporalAddress.split(':');
  registerEndpoint('TEMPORAL_ADDRESS', temporalHost, Number(temporalPort));
  for (const broker of config.kafkaBrokers) {
    const [host, port] = broker.split(':');
    registerEndpoint('KAFKA_BROKERS', host, Number(port));
  }
  if (config.lakeS3?.endpoint) {
    const s3 = new URL(config.lakeS3.endpoint);
    registerEndpoint('AWS_ENDPOINT_URL_S3', s3.hostname, Number(s3.port || (s3.protocol === 'https:' ? 443 : 80)));
  }
  return config;
}
