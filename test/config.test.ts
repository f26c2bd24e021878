import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, loadConfig, readEnvironment } from '../lib/config';
import { redact } from '../lib/redact';
import { temporalConnectionOptions } from '../lib/temporal-client';

const root = path.resolve(__dirname, '..');

describe('configuration', () => {
  it('defaults point at the local stack', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBe('postgres://nightshift:nightshift@127.0.0.1:5432/nightshift');
    expect(config.temporalAddress).toBe('127.0.0.1:7233');
    expect(config.kafkaBrokers).toEqual(['127.0.0.1:9092']);
    expect(config.kafkaTopic).toBe('events');
    expect(config.lakeDir).toBe('.data/lake');
    expect(config.lakeS3).toBeNull();
    expect(config.slackWebhookUrl).toBeNull();
    expect(config.workerWarmUp).toBe(true);
    expect(loadConfig({ WORKER_WARM_UP: 'false' }).workerWarmUp).toBe(false);
    expect(() => loadConfig({ WORKER_WARM_UP: 'later' })).toThrow(/WORKER_WARM_UP="later": expected true or false/);
  });

  it('LAKE_URL: file: and plain paths are local folders, s3://bucket/prefix an S3 lake with the AWS variables', () => {
    expect(loadConfig({ LAKE_URL: 'file:/srv/lake', LAKE_DIR: '/other' })).toMatchObject({
      lakeDir: '/srv/lake',
      lakeS3: null,
    });
    expect(loadConfig({ LAKE_URL: 'file:lake' })).toMatchObject({ lakeDir: 'lake', lakeS3: null });
    expect(loadConfig({ LAKE_URL: 'file:///srv/lake' })).toMatchObject({ lakeDir: '/srv/lake', lakeS3: null });
    const s3 = loadConfig({
      LAKE_URL: 's3://my-lake/prod/events-lake/',
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000',
      AWS_ACCESS_KEY_ID: 'id',
      AWS_SECRET_ACCESS_KEY: 'sekrit-value-123',
      AWS_REGION: 'eu-west-1',
    });
    expect(s3.lakeDir).toBe('s3://my-lake/prod/events-lake');
    expect(s3.lakeS3).toEqual({
      bucket: 'my-lake',
      prefix: 'prod/events-lake',
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      accessKeyId: 'id',
      secretAccessKey: 'sekrit-value-123',
    });
    expect(redact('the key is sekrit-value-123')).not.toContain('sekrit-value-123');
    const aws = loadConfig({ LAKE_URL: 's3://my-lake' }).lakeS3;
    expect(aws).toMatchObject({ prefix: '', endpoint: null, forcePathStyle: false, accessKeyId: null });
    expect(() => loadConfig({ LAKE_URL: 's3://Bad_Bucket/x' })).toThrow(/LAKE_URL/);
    expect(() => loadConfig({ LAKE_URL: 'gs://bucket/x' })).toThrow(/LAKE_URL/);
    expect(() => loadConfig({ LAKE_URL: 's3://b-1/x', AWS_SECRET_ACCESS_KEY: 'only-the-secret-42' })).toThrow(
      expect.objectContaining({ message: expect.stringMatching(/AWS_ACCESS_KEY_ID/) }),
    );
    expect(() => loadConfig({ LAKE_URL: 's3://b-1/x', AWS_SECRET_ACCESS_KEY: 'only-the-secret-42' })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('only-the-secret-42') }),
    );
  });

  it.each([
    ['DATABASE_URL', 'mysql://localhost/x'],
    ['TEMPORAL_ADDRESS', 'localhost'],
    ['KAFKA_BROKERS', '127.0.0.1:9092,nope'],
    ['KAFKA_TOPIC', 'bad topic'],
    ['TEMPORAL_UI_URL', 'ftp://x'],
  ])('names the bad variable %s=%s', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(
      new RegExp(`${name}=.*${value.split(',').pop()!.replace(/[.:/]/g, '.')}`),
    );
  });

  it('reads Kafka TLS and SASL settings, and names the variable when they are incomplete, never the password', () => {
    const secure = loadConfig({
      KAFKA_SSL_CA: '/etc/ca.pem',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'app',
      KAFKA_SASL_PASSWORD: 's3cret-value',
    });
    expect(secure.kafkaSsl).toBe(true);
    expect(secure.kafkaSslCa).toBe('/etc/ca.pem');
    expect(secure.kafkaSasl).toEqual({ mechanism: 'scram-sha-512', username: 'app', password: 's3cret-value' });
    expect(loadConfig({}).kafkaSasl).toBeNull();
    expect(loadConfig({}).kafkaSsl).toBe(false);
    expect(() => loadConfig({ KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_PASSWORD: 's3cret-value' })).toThrow(
      /KAFKA_SASL_MECHANISM="gssapi".*plain, scram-sha-256, scram-sha-512/,
    );
    expect(() => loadConfig({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'app' })).toThrow(
      /KAFKA_SASL_PASSWORD/,
    );
    expect(() => loadConfig({ KAFKA_SASL_PASSWORD: 's3cret-value' })).toThrow(/KAFKA_SASL_MECHANISM/);
    expect(() => loadConfig({ KAFKA_SSL: 'yes please' })).toThrow(/KAFKA_SSL=/);
    for (const env of [
      { KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_PASSWORD: 's3cret-value' },
      { KAFKA_SASL_PASSWORD: 's3cret-value' },
    ]) {
      expect(() => loadConfig(env)).toThrow(
        expect.objectContaining({ message: expect.not.stringContaining('s3cret') }),
      );
    }
    // a client error that echoes the configured SASL password is masked wherever it is printed
    loadConfig({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'kafka-pw-77' });
    expect(redact('SASL authentication failed for u with kafka-pw-77')).not.toContain('kafka-pw-77');
  });

  it('.env.example documents every variable the configuration reads', () => {
    const example = readFileSync(path.join(root, '.env.example'), 'utf8');
    const config = readFileSync(path.join(root, 'lib/config.ts'), 'utf8');
    const read = new Set([
      ...[...config.matchAll(/^\s+([A-Z][A-Z0-9]*_[A-Z0-9_]+):/gm)].map((m) => m[1]),
      ...[...config.matchAll(/'([A-Z][A-Z0-9]*_[A-Z0-9_]+)'/g)].map((m) => m[1]),
    ]);
    expect(read.size).toBeGreaterThanOrEqual(9 + 8 + 6 + 2 + 7);
    for (const name of read) expect(example, name).toContain(`${name}=`);
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'));

  it('runs the same stack as make up, on the same ports', () => {
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining(['postgres', 'kafka', 'temporal', 'temporal-ui', 'worker']),
    );
    const ports = Object.values<{ ports?: string[] }>(compose.services).flatMap((s) => s.ports ?? []);
    expect(ports).toEqual(
      expect.arrayContaining([
        '127.0.0.1:5432:5432',
        '127.0.0.1:9092:9092',
        '127.0.0.1:7233:7233',
        '127.0.0.1:8233:8233',
      ]),
    );
  });

  it('gives the worker the same environment variables as the native stack', () => {
    const env = compose.services.worker.environment;
    for (const name of [
      'DATABASE_URL',
      'TEMPORAL_ADDRESS',
      'TEMPORAL_NAMESPACE',
      'TEMPORAL_TASK_QUEUE',
      'KAFKA_BROKERS',
      'KAFKA_TOPIC',
      'LAKE_DIR',
      'SLACK_WEBHOOK_URL',
      'TEMPORAL_UI_URL',
    ]) {
      expect(env, name).toHaveProperty(name);
    }
    expect(() =>
      loadConfig(Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v).replace(/\$\{.*\}/, '')]))),
    ).not.toThrow();
  });
});

describe('.env', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-env-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is read, and the environment wins over it', () => {
    const file = path.join(dir, '.env');
    writeFileSync(file, 'KAFKA_TOPIC=from_file\nLAKE_DIR=/lake/from/file\nDQ_VOLUME_TOLERANCE=0.3\n');
    const config = loadConfig(readEnvironment(file, { LAKE_DIR: '/lake/from/env' }));
    expect(config.kafkaTopic).toBe('from_file');
    expect(config.dq.volumeTolerance).toBe(0.3);
    expect(config.lakeDir).toBe('/lake/from/env');
    expect(readEnvironment(path.join(dir, 'absent.env'), { A_B: 'c' })).toEqual({ A_B: 'c' });
  });

  it('means the same to make (scripts/stack/dotenv.sh) as to the app, and nothing in it runs', () => {
    const file = path.join(dir, 'syntax.env');
    const marker = path.join(dir, 'executed');
    writeFileSync(
      file,
      [
        '# a comment',
        'NS_PLAIN=plain',
        'NS_DOUBLE="double # not a comment"',
        "NS_SINGLE='single $HOME'",
        'NS_COMMENTED=value # comment',
        'export NS_EXPORTED=exported',
        '  NS_SPACED = spaced  ',
        'NS_EMPTY=',
        'NS_EQUALS=a=b=c',
        `NS_CODE=$(touch ${marker})`,
        `NS_CODE2=\`touch ${marker}\``,
        'NS_URL=postgres://u:p@h:5432/d?sslmode=require',
        'NS_FROM_ENV=file',
      ].join('\n'),
    );
    const names = [...readFileSync(file, 'utf8').matchAll(/(NS_[A-Z0-9_]+)/g)].map((m) => m[1]);
    const bash = spawnSync(
      'bash',
      [
        '-c',
        `source scripts/stack/dotenv.sh && load_dotenv "$1" && for n in ${names.join(' ')}; do printf '%s=%s\\0' "$n" "\${!n}"; done`,
        '_',
        file,
      ],
      { cwd: root, env: { PATH: process.env.PATH, NS_FROM_ENV: 'env' }, encoding: 'utf8' },
    );
    expect(bash.status, bash.stderr).toBe(0);
    const fromBash = Object.fromEntries(
      bash.stdout
        .split('\0')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    const fromNode = readEnvironment(file, { NS_FROM_ENV: 'env' });
    for (const name of names) expect(fromBash[name], name).toBe(fromNode[name]);
    expect(fromBash.NS_FROM_ENV).toBe('env');
    expect(fromBash.NS_SINGLE).toBe('single $HOME');
    expect(existsSync(marker)).toBe(false);
  });
});

describe('Temporal TLS and API key', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-tls-'));
  const pemFile = (name: string, text: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const cert = pemFile('client.crt', '-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n');
  const key = pemFile('client.key', '-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n');
  const ca = pemFile('ca.crt', '-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----\n');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('plain gRPC by default', () => {
    expect(temporalConnectionOptions(loadConfig({}))).toEqual({ address: '127.0.0.1:7233' });
  });

  it('mutual TLS from the certificate, key and CA files, with a server name', () => {
    const config = loadConfig({
      TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
      TEMPORAL_TLS_CERT: cert,
      TEMPORAL_TLS_KEY: key,
      TEMPORAL_TLS_CA: ca,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    const options = temporalConnectionOptions(config);
    expect(options.address).toBe('ns.acct.tmprl.cloud:7233');
    expect(options.apiKey).toBeUndefined();
    expect(options.tls?.serverNameOverride).toBe('temporal.internal');
    expect(Buffer.from(options.tls!.serverRootCACertificate!).toString()).toBe(readFileSync(ca, 'utf8'));
    expect(options.tls?.clientCertPair?.crt.toString()).toBe(readFileSync(cert, 'utf8'));
    expect(options.tls?.clientCertPair?.key.toString()).toBe(readFileSync(key, 'utf8'));
  });

  it('an API key implies TLS (system CAs) and is sent as the API key', () => {
    const options = temporalConnectionOptions(loadConfig({ TEMPORAL_API_KEY: 'key-abc-123' }));
    expect(options).toEqual({ address: '127.0.0.1:7233', tls: {}, apiKey: 'key-abc-123' });
    expect(temporalConnectionOptions(loadConfig({ TEMPORAL_TLS: 'true' }))).toEqual({
      address: '127.0.0.1:7233',
      tls: {},
    });
  });

  it.each([
    [{ TEMPORAL_TLS_CERT: cert }, /TEMPORAL_TLS_KEY is not set but TEMPORAL_TLS_CERT is/],
    [{ TEMPORAL_TLS_KEY: key }, /TEMPORAL_TLS_CERT is not set but TEMPORAL_TLS_KEY is/],
    [
      { TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: '/no/such/key.pem' },
      /TEMPORAL_TLS_KEY="\/no\/such\/key.pem": no such file/,
    ],
    [{ TEMPORAL_TLS_CA: '/no/such/ca.pem' }, /TEMPORAL_TLS_CA=.*no such file/],
    [{ TEMPORAL_TLS: 'maybe' }, /TEMPORAL_TLS="maybe": expected true or false/],
    [{ TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'key-abc-123' }, /TEMPORAL_API_KEY needs TLS/],
  ])('%j is a configuration error naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
    expect(() => loadConfig(env)).not.toThrow(/key-abc-123/);
  });
});

describe('secrets are never printed', () => {
  it('configuration errors name the variable and hide or mask its value', () => {
    const message = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    const slack = message({ SLACK_WEBHOOK_URL: 'hooks.slack.com/services/T0/B0/tok3n' });
    expect(slack).toContain('SLACK_WEBHOOK_URL');
    expect(slack).not.toContain('tok3n');
    expect(message({ SLACK_WEBHOOK_URL: 'not a url' })).toMatch(/^Invalid SLACK_WEBHOOK_URL \(value not shown/);
    const db = message({ DATABASE_URL: 'mysql://u:pw123@db:5432/x' });
    expect(db).toContain('DATABASE_URL="mysql://u:***@db:5432/x"');
    const malformed = message({ DATABASE_URL: 'postgres:/u:pw123@db:5432/x' });
    expect(malformed).toContain('DATABASE_URL');
    expect(malformed).not.toContain('pw123');
    expect(message({ DATABASE_URL: 'postgres://u:pw123@db/x?sslmode=sometimes' })).toMatch(
      /DATABASE_URL="postgres:\/\/u:\*\*\*@db\/x\?sslmode=sometimes": sslmode=sometimes is not one of/,
    );
  });

  it('redact masks URL passwords, webhook paths, keys and configured secret values', () => {
    loadConfig({ ANALYST_PASSWORD: 's3cret-Analyst', TEMPORAL_API_KEY: 'tmprl-api-key-xyz' });
    const text = [
      'connect postgres://loader:hunter2@db.internal:5432/wh?sslmode=require failed',
      'POST https://hooks.slack.com/services/T000/B000/XXXXtoken returned 404',
      'password=plain&user=x',
      '{"apiKey":"abc123def"}',
      'Authorization: Bearer eyJhbGciOi.payload.sig',
      '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----',
      'role analyst: s3cret-Analyst, key tmprl-api-key-xyz (url-encoded s3cret%2DAnalyst)',
    ].join('\n');
    const out = redact(text);
    for (const secret of ['hunter2', 'XXXXtoken', 'T000/B000', 'plain', 'abc123def', 'eyJhbGciOi', 'MIIEvQIBADANBg']) {
      expect(out, secret).not.toContain(secret);
    }
    expect(out).not.toContain('s3cret-Analyst');
    expect(out).not.toContain('tmprl-api-key-xyz');
    // what is not secret stays readable
    expect(out).toContain('postgres://loader:***@db.internal:5432/wh?sslmode=require');
    expect(out).toContain('https://hooks.slack.com/services/***');
    expect(out).toContain('returned 404');
  });

  it('only lib/config.ts reads the environment', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
        const rel = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(rel);
        else if (rel.endsWith('.ts') && rel !== path.join('lib', 'config.ts')) {
          const source = readFileSync(path.join(root, rel), 'utf8');
          // handing the whole environment to a child process is not reading it
          if (/process\.env(?!,)(?!\s*\})/.test(source.replaceAll('...process.env', ''))) offenders.push(rel);
        }
      }
    };
    for (const dir of ['activities', 'lib', 'scripts', 'warehouse', 'workflows']) walk(dir);
    expect(offenders).toEqual([]);
  });
});

describe('make check with unreachable services and secrets in the configuration', () => {
  const run = (env: Record<string, string>) =>
    spawnSync('make', ['--no-print-directory', 'check', 'DATE=2024-03-01'], {
      cwd: root,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 120_000,
    });

  it('fails clearly and prints neither the database password nor the webhook token', () => {
    const out = run({
      DATABASE_URL: 'postgres://u:pw123@127.0.0.1:1/x',
      SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/tok',
    });
    const printed = out.stdout + out.stderr;
    expect(out.status).not.toBe(0);
    expect(printed).toContain('Cannot connect to 127.0.0.1:1 (DATABASE_URL)');
    expect(printed).not.toContain('pw123');
    expect(printed).not.toMatch(/\btok\b/);
  });

  it.each([
    ['a malformed database URL', { DATABASE_URL: 'postgres:/u:pw123@127.0.0.1:1/x' }, 'DATABASE_URL'],
    ['a webhook without a scheme', { SLACK_WEBHOOK_URL: 'hooks.slack.com/services/T/B/tok' }, 'SLACK_WEBHOOK_URL'],
    ['a database URL of another server type', { DATABASE_URL: 'mysql://u:pw123@127.0.0.1:1/x' }, 'DATABASE_URL'],
  ])('%s is a configuration error naming the variable, without the secret', (_, env, variable) => {
    const out = run(env);
    const printed = out.stdout + out.stderr;
    expect(out.status).not.toBe(0);
    expect(printed).toContain(`Invalid ${variable}`);
    expect(printed).not.toContain('pw123');
    expect(printed).not.toMatch(/\btok\b/);
  });
});

describe('layout', () => {
  it('tests import shared code from lib/, never from scripts/ (entry points are run, not imported)', () => {
    const offenders = readdirSync(path.join(root, 'test'))
      .filter((f) => f.endsWith('.ts'))
      .filter((f) => /from '\.\.\/scripts\//.test(readFileSync(path.join(root, 'test', f), 'utf8')));
    expect(offenders).toEqual([]);
  });
});
