import { spawn } from 'node:child_process';
import path from 'node:path';
import type { KafkaConnection } from '../lib/kafka';
import { generateEvents } from '../lib/generator';

/**
 * Writes records with librdkafka (Python's confluent-kafka in .tools/venv, see test/independent-producer.py), an
 * implementation independent of the landing's client: compressed batches and transactions as real producers send them.
 */

const ROOT = path.resolve(__dirname, '..');
const PYTHON = path.join(ROOT, '.tools/venv/bin/python');
const SCRIPT = path.join(__dirname, 'independent-producer.py');

export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

export type ProduceStep =
  | { kind: 'plain'; partition: number; compression: Compression; values: string[] }
  | { kind: 'commit' | 'abort'; partition: number; compression?: Compression; values: string[]; interleave: string[] };

/** librdkafka settings for `conn`: the same brokers, TLS and SASL the project's own clients use. */
export function librdkafkaConfig(conn: KafkaConnection): Record<string, string> {
  const c: Record<string, string> = { 'bootstrap.servers': conn.kafkaBrokers.join(',') };
  if (conn.kafkaSsl || conn.kafkaSasl !== null) {
    c['security.protocol'] = `${conn.kafkaSasl === null ? '' : 'sasl_'}${conn.kafkaSsl ? 'ssl' : 'plaintext'}`;
  }
  if (conn.kafkaSslCa !== null) c['ssl.ca.location'] = conn.kafkaSslCa;
  if (conn.kafkaSasl !== null) {
    c['sasl.mechanism'] = conn.kafkaSasl.mechanism.toUpperCase();
    c['sasl.username'] = conn.kafkaSasl.username;
    c['sasl.password'] = conn.kafkaSasl.password;
  }
  return c;
}

export async function produceIndependently(
  conn: KafkaConnection,
  topic: string,
  steps: ProduceStep[],
  transactionalId = `nightshift-test-${topic}`,
): Promise<number> {
  const input = JSON.stringify({ config: librdkafkaConfig(conn), topic, steps, transactionalId });
  const child = spawn(PYTHON, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end(input);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`test/independent-producer.py exited with ${code}: ${err.slice(-2000)}`);
  return (JSON.parse(out.trim().split('\n').pop() ?? '{}') as { delivered: number }).delivered;
}

/** `count` valid v1 events as JSON strings with their event_ids; `seed` keeps ids distinct between calls. */
export function eventValues(count: number, seed: number): { values: string[]; ids: string[] } {
  const values: string[] = [];
  const ids: string[] = [];
  for (const r of generateEvents({ events: count, days: 1, start: '2024-12-01', seed, badRate: 0 })) {
    const text = r.value.toString();
    values.push(text);
    ids.push((JSON.parse(text) as { event_id: string }).event_id);
  }
  return { values, ids };
}
