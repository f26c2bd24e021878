import { readFileSync } from 'node:fs';
import {
  Admin,
  type BaseOptions,
  compatibilityPartitioner,
  ProduceAcks,
  Producer,
  FetchIsolationLevels,
  ListOffsetTimestamps,
  SASLMechanisms,
} from '@platformatic/kafka';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from './config';

/**
 * Every Kafka connection of the project goes through @platformatic/kafka with the options made here, so the
 * brokers, TLS and SASL settings of lib/config apply to the landing, `make produce`, the bench and the tests alike.
 */

/** What a Kafka client needs from the configuration (plain data: it is also handed to landing worker threads). */
export type KafkaConnection = Pick<Config, 'kafkaBrokers' | 'kafkaSsl' | 'kafkaSslCa' | 'kafkaSasl'>;

/** Only the Kafka settings of `config` (to hand to a worker thread). */
export function kafkaConnection(config: KafkaConnection): KafkaConnection {
  const { kafkaBrokers, kafkaSsl, kafkaSslCa, kafkaSasl } = config;
  return { kafkaBrokers, kafkaSsl, kafkaSslCa, kafkaSasl };
}

/** A request the broker does not answer within this long fails (and is retried by the client, see RETRIES). */
export const REQUEST_TIMEOUT_MS = 30_000;
/** Attempts after the first, one second apart, before a request's error reaches the caller. */
const RETRIES = 3;

const MECHANISMS = {
  plain: SASLMechanisms.PLAIN,
  'scram-sha-256': SASLMechanisms.SCRAM_SHA_256,
  'scram-sha-512': SASLMechanisms.SCRAM_SHA_512,
} as const;

export interface ClientTuning {
  requestTimeoutMs?: number;
  retries?: number;
}

export function kafkaClientOptions(
  conn: KafkaConnection,
  clientId: string,
  tuning: ClientTuning = {},
): BaseOptions & { bootstrapBrokers: string[] } {
  const options: BaseOptions & { bootstrapBrokers: string[] } = {
    clientId,
    bootstrapBrokers: conn.kafkaBrokers,
    connectTimeout: 10_000,
    requestTimeout: tuning.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
    timeout: tuning.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
    retries: tuning.retries ?? RETRIES,
    retryDelay: 1000,
  };
  if (conn.kafkaSsl) {
    let ca: Buffer | undefined;
    if (conn.kafkaSslCa !== null) {
      try {
        ca = readFileSync(conn.kafkaSslCa);
      } catch (err) {
        throw ApplicationFailure.nonRetryable(
          `cannot read KAFKA_SSL_CA=${JSON.stringify(conn.kafkaSslCa)}: point it at the PEM file of the CA that signed the brokers' certificates (${(err as Error).message})`,
          'KafkaConfig',
        );
      }
    }
    options.tls = ca === undefined ? {} : { ca };
  }
  if (conn.kafkaSasl !== null) {
    options.sasl = {
      mechanism: MECHANISMS[conn.kafkaSasl.mechanism],
      username: conn.kafkaSasl.username,
      password: conn.kafkaSasl.password,
    };
  }
  return options;
}

/**
 * Rethrows a Kafka client error: rejected credentials or a failed TLS handshake as non-retryable, naming the
 * variables to fix (never their secret values); anything else (a broker down, a timeout) as it is, for the retry policy.
 */
export function kafkaError(err: unknown, conn: KafkaConnection, doing: string): Error {
  if (err instanceof ApplicationFailure) return err;
  const auth = findInChain(
    err,
    (e) =>
      e.code === 'PLT_KFK_AUTHENTICATION' ||
      e.apiId === 'SASL_AUTHENTICATION_FAILED' ||
      e.apiId === 'UNSUPPORTED_SASL_MECHANISM' ||
      e.apiId === 'ILLEGAL_SASL_STATE',
  );
  if (auth !== null) {
    const who =
      conn.kafkaSasl === null
        ? 'no SASL credentials (KAFKA_SASL_MECHANISM is unset)'
        : `KAFKA_SASL_MECHANISM=${conn.kafkaSasl.mechanism}, KAFKA_SASL_USERNAME=${JSON.stringify(conn.kafkaSasl.username)}`;
    return ApplicationFailure.nonRetryable(
      `Kafka refused the SASL authentication while ${doing} with ${who}: check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (${auth.message})`,
      'KafkaAuthentication',
    );
  }
  const tls = tlsFailure(err);
  if (tls !== null) {
    return ApplicationFailure.nonRetryable(
      `TLS to Kafka failed while ${doing} (${tls.message}): check KAFKA_SSL, KAFKA_SSL_CA and that KAFKA_BROKERS names the TLS listener`,
      'KafkaTls',
    );
  }
  // transient (a broker down, a request timed out): thrown for the retry policy, saying what failed underneath
  const leaves = leafMessages(err);
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`Kafka ${message.replace(/\.$/, '')} while ${doing}${leaves ? ` (${leaves})` : ''}`, { cause: err });
}

/** The distinct messages of the innermost errors of `err` (the client wraps each retry's error). */
function leafMessages(err: unknown): string {
  const seen = new Set<unknown>();
  const leaves = new Set<string>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift() as ErrorLike | null;
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const inner = [e.cause, ...(Array.isArray(e.errors) ? (e.errors as unknown[]) : [])].filter((x) => x != null);
    if (inner.length === 0 && e !== err) leaves.add(String(e.message));
    queue.push(...inner);
  }
  return [...leaves].join('; ');
}

interface ErrorLike {
  code?: unknown;
  apiId?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/** The first error in `err`, its causes and aggregated errors that matches, or null. */
function findInChain(err: unknown, match: (e: ErrorLike) => boolean): { message: string } | null {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift() as ErrorLike | null;
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    if (match(e)) return { message: `${typeof e.code === 'string' ? `${e.code}: ` : ''}${String(e.message)}` };
    queue.push(e.cause);
    if (Array.isArray(e.errors)) queue.push(...(e.errors as unknown[]));
  }
  return null;
}

/** A TLS certificate or handshake error anywhere in the error's causes, or null. */
function tlsFailure(err: unknown): { message: string } | null {
  return findInChain(
    err,
    (e) =>
      typeof e.code === 'string' &&
      /^(ERR_TLS_|ERR_SSL_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_)/.test(
        e.code,
      ),
  );
}

/** Runs `fn` with a connected admin client, closed afterwards. */
export async function withAdmin<T>(
  conn: KafkaConnection,
  doing: string,
  fn: (admin: Admin) => Promise<T>,
  tuning: ClientTuning = {},
): Promise<T> {
  const admin = new Admin(kafkaClientOptions(conn, 'nightshift-admin', tuning));
  try {
    return await fn(admin);
  } catch (err) {
    throw kafkaError(err, conn, doing);
  } finally {
    await admin.close().catch(() => undefined);
  }
}

export async function createTopic(conn: KafkaConnection, topic: string, partitions: number): Promise<void> {
  await withAdmin(conn, `creating topic "${topic}"`, async (admin) => {
    await admin.createTopics({ topics: [topic], partitions, replicas: 1 });
    // wait until every partition has a leader, so producing right away works
    for (let attempt = 0; ; attempt++) {
      const md = await admin.metadata({ topics: [topic], forceUpdate: true }).catch(() => null);
      const t = md?.topics.get(topic);
      if (t !== undefined && t.partitions.length === partitions && t.partitions.every((p) => p.leader >= 0)) return;
      if (attempt >= 50) throw new Error(`topic "${topic}" has no leader for every partition after 10 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
}

export async function deleteTopic(conn: KafkaConnection, topic: string): Promise<void> {
  await withAdmin(conn, `deleting topic "${topic}"`, (admin) => admin.deleteTopics({ topics: [topic] }));
}

export interface PartitionOffsets {
  partition: number;
  /** First offset still held (log start). */
  low: number;
  /**
   * Offset after the last record a read_committed reader may read now: the last stable offset (the high watermark
   * unless a transaction is open), so a landing never waits on a transaction that has not ended.
   */
  high: number;
}

/** Low and (read_committed) high offsets of every partition of `topic`, sorted by partition. */
export async function topicOffsets(conn: KafkaConnection, topic: string): Promise<PartitionOffsets[]> {
  return withAdmin(conn, `reading the offsets of topic "${topic}"`, async (admin) => {
    const md = await admin.metadata({ topics: [topic] });
    const count = md.topics.get(topic)?.partitionsCount ?? 0;
    const partitions = Array.from({ length: count }, (_, i) => i);
    const at = async (timestamp: bigint) => {
      const res = await admin.listOffsets({
        topics: [{ name: topic, partitions: partitions.map((p) => ({ partitionIndex: p, timestamp })) }],
        isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      });
      const out = new Map<number, number>();
      for (const t of res) for (const p of t.partitions) out.set(p.partitionIndex, Number(p.offset));
      return out;
    };
    const low = await at(ListOffsetTimestamps.EARLIEST);
    const high = await at(ListOffsetTimestamps.LATEST);
    return partitions.map((p) => ({ partition: p, low: low.get(p) ?? 0, high: high.get(p) ?? 0 }));
  });
}

// --- producing (make produce, the bench, tests) ---------------------------------------------------------

/**
 * Bytes of values per produce request: below the broker's message.max.bytes (1 MB) even when every record of a
 * request goes to one partition (the client does not split a request's batch of a partition).
 */
const BATCH_BYTES = 768 << 10;

/**
 * Sends keyed records in batches through @platformatic/kafka's idempotent producer, acks from all in-sync replicas.
 * Keys map to partitions by murmur2 as Java's (and librdkafka's murmur2_random) default partitioner.
 *
 * One request is in flight at a time; the next batch fills meanwhile. With two, a partition refused by the first
 * (NOT_LEADER_OR_FOLLOWER, as on a topic just created) makes the second's sequence numbers out of order there, and
 * the client then re-sends the second request whole under a new producer id: its partitions the broker had already
 * written got their records twice (one run in a hundred of 5,000 records under load). Retried alone, a request keeps
 * its sequence numbers, and the broker drops the partitions it has already written.
 */
export class EventSender {
  private batch: { key: Buffer; value: Buffer }[] = [];
  private batchBytes = 0;
  private inFlight: Promise<void> = Promise.resolve();

  private constructor(
    private readonly producer: Producer<Buffer, Buffer, Buffer, Buffer>,
    private readonly conn: KafkaConnection,
    private readonly topic: string,
    private readonly onAcked?: (records: number) => void,
  ) {}

  static connect(conn: KafkaConnection, topic: string, onAcked?: (records: number) => void): EventSender {
    const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
      ...kafkaClientOptions(conn, 'nightshift-produce'),
      // a request retried after a timeout must not write its records twice
      idempotent: true,
      acks: ProduceAcks.ALL,
      partitioner: compatibilityPartitioner,
    });
    return new EventSender(producer, conn, topic, onAcked);
  }

  async send(key: Buffer, value: Buffer): Promise<void> {
    this.batch.push({ key, value });
    this.batchBytes += key.length + value.length;
    if (this.batchBytes >= BATCH_BYTES) await this.flush();
  }

  /** Waits for the request in flight, then sends the batch without waiting for its acks. */
  private async flush(): Promise<void> {
    await this.inFlight;
    if (this.batch.length === 0) return;
    const messages = this.batch.map((m) => ({ topic: this.topic, key: m.key, value: m.value }));
    this.batch = [];
    this.batchBytes = 0;
    this.inFlight = this.producer.send({ messages }).then(
      () => this.onAcked?.(messages.length),
      (err: unknown) => {
        throw kafkaError(err, this.conn, `producing to topic "${this.topic}"`);
      },
    );
    // a failure is thrown by the next flush or close; until then it must not count as unhandled
    this.inFlight.catch(() => undefined);
  }

  async close(): Promise<void> {
    try {
      await this.flush();
      await this.inFlight;
    } finally {
      await this.producer.close();
    }
  }
}
