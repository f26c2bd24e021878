import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, loadConfig } from '../lib/config';

const root = path.resolve(__dirname, '..');

describe('configuration', () => {
  it('defaults point at the local stack', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBe('postgres://nightshift:nightshift@127.0.0.1:5432/nightshift');
    expect(config.temporalAddress).toBe('127.0.0.1:7233');
    expect(config.kafkaBrokers).toEqual(['127.0.0.1:9092']);
    expect(config.kafkaTopic).toBe('events');
    expect(config.lakeDir).toBe('.data/lake');
    expect(config.slackWebhookUrl).toBeNull();
  });

  it.each([
    ['DATABASE_URL', 'mysql://localhost/x'],
    ['TEMPORAL_ADDRESS', 'localhost'],
    ['KAFKA_BROKERS', '127.0.0.1:9092,nope'],
    ['KAFKA_TOPIC', 'bad topic'],
    ['SLACK_WEBHOOK_URL', 'not a url'],
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
  });

  it('.env.example documents every variable the configuration reads', () => {
    const example = readFileSync(path.join(root, '.env.example'), 'utf8');
    const config = readFileSync(path.join(root, 'lib/config.ts'), 'utf8');
    const read = new Set([...config.matchAll(/(?:env\.|^\s+)([A-Z][A-Z0-9]*_[A-Z0-9_]+)\b/gm)].map((m) => m[1]));
    for (const file of ['lib/checks.ts', 'lib/slack.ts']) {
      const source = readFileSync(path.join(root, file), 'utf8');
      for (const m of source.matchAll(/name: '([A-Z][A-Z0-9_]+)'/g)) read.add(m[1]);
    }
    expect(read.size).toBeGreaterThanOrEqual(9 + 8 + 6);
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
