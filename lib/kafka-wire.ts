import net from 'node:net';
import { gunzipSync } from 'node:zlib';
import { Kafka, logLevel } from 'kafkajs';

/**
 * A minimal, fast Kafka producer speaking the wire protocol directly (Produce v3, record batches of magic v2),
 * for `make produce` and the benchmark. kafkajs encodes every message through generic encoders, computes CRC32C
 * in pure JS byte by byte and groups a request's messages by partition in O(n²): about 40 µs per event here.
 * This writer appends each record straight into its partition's batch buffer and checksums it with a
 * slice-by-8 CRC32C. Metadata (partition leaders, broker addresses) still comes from kafkajs's admin client.
 * Keys map to partitions exactly as kafkajs's DefaultPartitioner (Java's murmur2) maps them.
 */

// --- murmur2, as Java's (and kafkajs's) default partitioner -------------------------------------------

const M = 0x5bd1e995;

/** Kafka's murmur2 of the key bytes (32-bit, signed as Java's int). */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const tail = length & ~3;
  switch (length & 3) {
    case 3:
      h ^= data[tail + 2] << 16;
    // falls through
    case 2:
      h ^= data[tail + 1] << 8;
    // falls through
    case 1:
      h ^= data[tail];
      h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition kafkajs's DefaultPartitioner picks for a keyed message. */
export function partitionForKey(key: Uint8Array, numPartitions: number): number {
  return (murmur2(key) & 0x7fffffff) % numPartitions;
}

// --- CRC32C (Castagnoli), slice-by-8 -------------------------------------------------------------------

const CRC_TABLES: Int32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Int32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    tables[0][n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[0][n];
    for (let t = 1; t < 8; t++) {
      c = tables[0][c & 0xff] ^ (c >>> 8);
      tables[t][n] = c;
    }
  }
  return tables;
})();

/** CRC32C of bytes[start, end), unsigned. */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC_TABLES;
  let crc = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = crc ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    crc =
      t7[a & 0xff] ^
      t6[(a >>> 8) & 0xff] ^
      t5[(a >>> 16) & 0xff] ^
      t4[a >>> 24] ^
      t3[bytes[i + 4]] ^
      t2[bytes[i + 5]] ^
      t1[bytes[i + 6]] ^
      t0[bytes[i + 7]];
  }
  for (; i < end; i++) crc = t0[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

// --- record batches ------------------------------------------------------------------------------------

/** Bytes of a record batch header before its records (magic v2). */
const BATCH_HEADER = 61;

function varintSize(zigzagged: number): number {
  let size = 1;
  while (zigzagged >= 0x80) {
    zigzagged = Math.floor(zigzagged / 128);
    size++;
  }
  return size;
}

/** One partition's record batch under construction: records are appended in place. */
class BatchBuilder {
  buf: Buffer;
  pos = BATCH_HEADER;
  count = 0;
  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  private varint(v: number): void {
    let z = v >= 0 ? v * 2 : -v * 2 - 1; // zigzag, exact for |v| < 2^52
    const buf = this.buf;
    while (z >= 0x80) {
      buf[this.pos++] = (z & 0x7f) | 0x80;
      z = Math.floor(z / 128);
    }
    buf[this.pos++] = z;
  }

  /** Appends a record with timestamp delta 0 and no headers. */
  append(key: Uint8Array, value: Uint8Array): void {
    const offsetDelta = this.count;
    const bodySize =
      1 +
      1 +
      varintSize(offsetDelta * 2) +
      varintSize(key.length * 2) +
      key.length +
      varintSize(value.length * 2) +
      value.length +
      1;
    const need = this.pos + 5 + bodySize;
    if (need > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, this.pos);
      this.buf = bigger;
    }
    this.varint(bodySize);
    this.buf[this.pos++] = 0; // attributes
    this.buf[this.pos++] = 0; // timestamp delta
    this.varint(offsetDelta);
    this.varint(key.length);
    this.buf.set(key, this.pos);
    this.pos += key.length;
    this.varint(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
    this.buf[this.pos++] = 0; // headers
    this.count++;
  }

  /** Fills in the header and returns the finished batch (a copy, so the builder can be reused). */
  finish(timestampMs: number): Buffer {
    const b = this.buf;
    b.writeBigInt64BE(0n, 0); // base offset
    b.writeInt32BE(this.pos - 12, 8); // batch length
    b.writeInt32BE(-1, 12); // partition leader epoch
    b.writeInt8(2, 16); // magic
    b.writeInt16BE(0, 21); // attributes: no compression, create time
    b.writeInt32BE(this.count - 1, 23); // last offset delta
    b.writeBigInt64BE(BigInt(timestampMs), 27); // first timestamp
    b.writeBigInt64BE(BigInt(timestampMs), 35); // max timestamp
    b.writeBigInt64BE(-1n, 43); // producer id
    b.writeInt16BE(-1, 51); // producer epoch
    b.writeInt32BE(-1, 53); // base sequence
    b.writeInt32BE(this.count, 57); // records
    b.writeUInt32BE(crc32c(b, 21, this.pos), 17);
    const out = Buffer.from(b.subarray(0, this.pos));
    this.pos = BATCH_HEADER;
    this.count = 0;
    return out;
  }
}

// --- connections -----------------------------------------------------------------------------------------

const PRODUCE = 0;
const PRODUCE_VERSION = 3;

const ERROR_NAMES: Record<number, string> = {
  1: 'OFFSET_OUT_OF_RANGE',
  2: 'CORRUPT_MESSAGE',
  3: 'UNKNOWN_TOPIC_OR_PARTITION',
  6: 'NOT_LEADER_OR_FOLLOWER',
  7: 'REQUEST_TIMED_OUT',
  10: 'MESSAGE_TOO_LARGE',
  19: 'NOT_ENOUGH_REPLICAS',
  29: 'TOPIC_AUTHORIZATION_FAILED',
  87: 'INVALID_RECORD',
};

/** One broker connection: size-prefixed requests, responses matched by correlation id (Kafka answers in order). */
class Connection {
  private correlation = 0;
  private readonly waiting = new Map<number, { resolve: (body: Buffer) => void; reject: (err: Error) => void }>();
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failure: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    const fail = (err: Error) => {
      this.failure ??= err;
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('Kafka connection closed')));
  }

  static open(host: string, port: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new Connection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Size of the response being received, once its 4-byte prefix is in. */
  private expected = -1;

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < 4) return;
        if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
        this.expected = this.chunks[0].readInt32BE(0);
      }
      // concatenate only once the whole response is in: a fetch response arrives in many chunks
      if (this.buffered < 4 + this.expected) return;
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
      const body = all.subarray(4, 4 + this.expected);
      const rest = all.subarray(4 + this.expected);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.expected = -1;
      const id = body.readInt32BE(0);
      const w = this.waiting.get(id);
      this.waiting.delete(id);
      w?.resolve(body.subarray(4));
    }
  }

  /** Sends a request (api key, version, body) and resolves with the response body after the correlation id. */
  request(apiKey: number, version: number, clientId: string, body: Buffer[]): Promise<Buffer> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.correlation++;
    const client = Buffer.from(clientId);
    const header = Buffer.allocUnsafe(4 + 2 + 2 + 4 + 2 + client.length);
    const size = header.length - 4 + body.reduce((s, b) => s + b.length, 0);
    header.writeInt32BE(size, 0);
    header.writeInt16BE(apiKey, 4);
    header.writeInt16BE(version, 6);
    header.writeInt32BE(id, 8);
    header.writeInt16BE(client.length, 12);
    client.copy(header, 14);
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.socket.cork();
      this.socket.write(header);
      for (const b of body) this.socket.write(b);
      this.socket.uncork();
    });
  }

  close(): void {
    this.failure ??= new Error('Kafka connection closed');
    this.socket.end();
  }
}

// --- the producer ---------------------------------------------------------------------------------------

export interface FastProducerOptions {
  brokers: string[];
  topic: string;
  clientId?: string;
  /** Bytes of records buffered across partitions before a produce request is sent. */
  requestBytes?: number;
  /** Produce requests awaiting their answer. */
  inFlight?: number;
  /** Called with the number of records each time a request is acknowledged. */
  onAcked?: (records: number) => void;
}

/** Appends keyed records to per-partition batches and sends them with acks=1, a few requests in flight. */
export class FastProducer {
  private readonly builders: BatchBuilder[];
  private buffered = 0;
  private readonly inFlightSet = new Set<Promise<void>>();
  private failure: unknown = null;
  private readonly requestBytes: number;
  private readonly maxInFlight: number;
  private readonly topicName: Buffer;

  private constructor(
    private readonly options: FastProducerOptions,
    /** Leader connection of each partition. */
    private readonly leaders: Connection[],
    private readonly connections: Connection[],
  ) {
    this.builders = leaders.map(() => new BatchBuilder(256 << 10));
    this.requestBytes = options.requestBytes ?? 1 << 20;
    this.maxInFlight = options.inFlight ?? 4;
    this.topicName = Buffer.from(options.topic);
  }

  get partitions(): number {
    return this.leaders.length;
  }

  /** Reads the topic's partition leaders through kafkajs's admin client and connects to them. */
  static async connect(options: FastProducerOptions): Promise<FastProducer> {
    const admin = new Kafka({
      clientId: options.clientId ?? 'nightshift-produce',
      brokers: options.brokers,
      logLevel: logLevel.ERROR,
    }).admin();
    await admin.connect();
    let brokers: { nodeId: number; host: string; port: number }[];
    let partitions: { partitionId: number; leader: number }[];
    try {
      const topics = await admin.listTopics();
      if (!topics.includes(options.topic)) {
        throw new Error(
          `Kafka topic "${options.topic}" does not exist on ${options.brokers.join(',')}: run \`make up\` (it creates "events") or create the topic first`,
        );
      }
      brokers = (await admin.describeCluster()).brokers;
      partitions = (await admin.fetchTopicMetadata({ topics: [options.topic] })).topics[0].partitions;
    } finally {
      await admin.disconnect();
    }
    const byNode = new Map<number, Connection>();
    const leaders: Connection[] = [];
    try {
      for (const p of [...partitions].sort((a, b) => a.partitionId - b.partitionId)) {
        let c = byNode.get(p.leader);
        if (c === undefined) {
          const b = brokers.find((x) => x.nodeId === p.leader);
          if (b === undefined)
            throw new Error(`partition ${p.partitionId} of "${options.topic}" has no live leader (broker ${p.leader})`);
          c = await Connection.open(b.host, b.port);
          byNode.set(p.leader, c);
        }
        leaders[p.partitionId] = c;
      }
    } catch (err) {
      for (const c of byNode.values()) c.close();
      throw err;
    }
    return new FastProducer(options, leaders, [...byNode.values()]);
  }

  /** Buffers one record for the key's partition; resolves at once unless a request must wait for room in flight. */
  async send(key: Buffer, value: Buffer): Promise<void> {
    if (this.failure !== null) throw this.failure;
    const b = this.builders[partitionForKey(key, this.builders.length)];
    const before = b.pos;
    b.append(key, value);
    this.buffered += b.pos - before;
    if (this.buffered >= this.requestBytes || b.pos >= this.requestBytes / 2) await this.flush();
  }

  /** Sends everything buffered, one request per leader; waits when too many requests are in flight. */
  async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const now = Date.now();
    const byConnection = new Map<Connection, { partition: number; batch: Buffer; records: number }[]>();
    this.builders.forEach((b, partition) => {
      if (b.count === 0) return;
      const records = b.count;
      const batch = b.finish(now);
      const c = this.leaders[partition];
      const list = byConnection.get(c) ?? [];
      list.push({ partition, batch, records });
      byConnection.set(c, list);
    });
    this.buffered = 0;
    for (const [connection, batches] of byConnection) {
      const p = this.produce(connection, batches)
        .catch((err: unknown) => {
          this.failure ??= err;
        })
        .finally(() => this.inFlightSet.delete(p));
      this.inFlightSet.add(p);
    }
    while (this.inFlightSet.size >= this.maxInFlight) await Promise.race(this.inFlightSet);
    if (this.failure !== null) throw this.failure;
  }

  private async produce(
    connection: Connection,
    batches: { partition: number; batch: Buffer; records: number }[],
  ): Promise<void> {
    const head = Buffer.allocUnsafe(2 + 2 + 4 + 4 + 2 + this.topicName.length + 4);
    let o = head.writeInt16BE(-1, 0); // transactional id: null
    o = head.writeInt16BE(1, o); // acks
    o = head.writeInt32BE(30_000, o); // timeout
    o = head.writeInt32BE(1, o); // topics
    o = head.writeInt16BE(this.topicName.length, o);
    o += this.topicName.copy(head, o);
    head.writeInt32BE(batches.length, o);
    const body: Buffer[] = [head];
    for (const { partition, batch } of batches) {
      const ph = Buffer.allocUnsafe(8);
      ph.writeInt32BE(partition, 0);
      ph.writeInt32BE(batch.length, 4);
      body.push(ph, batch);
    }
    const res = await connection.request(PRODUCE, PRODUCE_VERSION, this.options.clientId ?? 'nightshift-produce', body);
    // [topic: string, [partition int32, error int16, base offset int64, log append time int64]], throttle int32
    let r = 0;
    const topics = res.readInt32BE(r);
    r += 4;
    for (let t = 0; t < topics; t++) {
      r += 2 + res.readInt16BE(r);
      const parts = res.readInt32BE(r);
      r += 4;
      for (let i = 0; i < parts; i++) {
        const partition = res.readInt32BE(r);
        const code = res.readInt16BE(r + 4);
        r += 4 + 2 + 8 + 8;
        if (code !== 0) {
          throw new Error(
            `Kafka rejected the records for partition ${partition} of "${this.options.topic}": error ${code} ${ERROR_NAMES[code] ?? ''}`.trim(),
          );
        }
      }
    }
    this.options.onAcked?.(batches.reduce((s, b) => s + b.records, 0));
  }

  /** Sends what is buffered and waits for every answer. */
  async close(): Promise<void> {
    try {
      if (this.failure === null) await this.flush();
      await Promise.all(this.inFlightSet);
      if (this.failure !== null) throw this.failure;
    } finally {
      for (const c of this.connections) c.close();
    }
  }
}

// --- fetching ------------------------------------------------------------------------------------------

const FETCH = 1;
const FETCH_VERSION = 4;
const READ_COMMITTED = 1;

/** A record as the landing needs it; `value` is a view into the fetch response (copy it to keep it). */
export interface FetchedRecord {
  offset: number;
  timestampMs: number;
  value: Buffer | null;
}

export interface FetchedPartition {
  partition: number;
  records: FetchedRecord[];
  /** The offset after the last batch of the response (records, control batches and gaps included). */
  nextOffset: number;
}

function readVarint(buf: Buffer, pos: { p: number }): number {
  let result = 0;
  let shift = 1;
  let b: number;
  do {
    b = buf[pos.p++];
    result += (b & 0x7f) * shift;
    shift *= 128;
  } while (b & 0x80);
  return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
}

/**
 * Reads Kafka partitions from given offsets straight from their leaders (Fetch v4, read-committed), without a
 * consumer group: the landing keeps its offsets in PostgreSQL, and kafkajs's group join and per-message decoding
 * cost seconds and a tenth of the landing's time. Record batches must be magic v2, uncompressed or gzip.
 */
export class PartitionReader {
  private constructor(
    private readonly topic: string,
    private readonly clientId: string,
    private readonly leaders: Map<number, Connection>,
    private readonly connections: Connection[],
  ) {}

  static async connect(
    brokers: string[],
    topic: string,
    partitions: number[],
    clientId = 'nightshift-land',
  ): Promise<PartitionReader> {
    const admin = new Kafka({ clientId, brokers, logLevel: logLevel.ERROR }).admin();
    await admin.connect();
    let nodes: { nodeId: number; host: string; port: number }[];
    let meta: { partitionId: number; leader: number }[];
    try {
      nodes = (await admin.describeCluster()).brokers;
      meta = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions;
    } finally {
      await admin.disconnect();
    }
    const byNode = new Map<number, Connection>();
    const leaders = new Map<number, Connection>();
    try {
      for (const partition of partitions) {
        const m = meta.find((x) => x.partitionId === partition);
        const node = m === undefined ? undefined : nodes.find((x) => x.nodeId === m.leader);
        if (m === undefined || node === undefined)
          throw new Error(`partition ${partition} of "${topic}" has no live leader`);
        let c = byNode.get(node.nodeId);
        if (c === undefined) {
          c = await Connection.open(node.host, node.port);
          byNode.set(node.nodeId, c);
        }
        leaders.set(partition, c);
      }
    } catch (err) {
      for (const c of byNode.values()) c.close();
      throw err;
    }
    return new PartitionReader(topic, clientId, leaders, [...byNode.values()]);
  }

  /** The leaders' connections with the partitions each leads, for one fetch request per leader. */
  groups(partitions: number[]): { connection: object; partitions: number[] }[] {
    const out = new Map<Connection, number[]>();
    for (const p of partitions) {
      const c = this.leaders.get(p) as Connection;
      out.set(c, [...(out.get(c) ?? []), p]);
    }
    return [...out].map(([connection, ps]) => ({ connection, partitions: ps }));
  }

  /** Fetches from one leader the given partitions at the given offsets; returns the decoded records per partition. */
  async fetch(
    connection: object,
    positions: { partition: number; offset: number }[],
    limits: { maxWaitMs: number; maxBytes: number; maxBytesPerPartition: number },
  ): Promise<FetchedPartition[]> {
    const topicName = Buffer.from(this.topic);
    const req = Buffer.allocUnsafe(4 + 4 + 4 + 4 + 1 + 4 + 2 + topicName.length + 4 + positions.length * 16);
    let o = req.writeInt32BE(-1, 0); // replica id
    o = req.writeInt32BE(limits.maxWaitMs, o);
    o = req.writeInt32BE(1, o); // min bytes
    o = req.writeInt32BE(limits.maxBytes, o);
    o = req.writeInt8(READ_COMMITTED, o);
    o = req.writeInt32BE(1, o);
    o = req.writeInt16BE(topicName.length, o);
    o += topicName.copy(req, o);
    o = req.writeInt32BE(positions.length, o);
    for (const { partition, offset } of positions) {
      o = req.writeInt32BE(partition, o);
      o = req.writeBigInt64BE(BigInt(offset), o);
      o = req.writeInt32BE(limits.maxBytesPerPartition, o);
    }
    const res = await (connection as Connection).request(FETCH, FETCH_VERSION, this.clientId, [req]);
    const wanted = new Map(positions.map((p) => [p.partition, p.offset]));
    let r = 4; // throttle time
    const topics = res.readInt32BE(r);
    r += 4;
    const out: FetchedPartition[] = [];
    for (let t = 0; t < topics; t++) {
      r += 2 + res.readInt16BE(r);
      const parts = res.readInt32BE(r);
      r += 4;
      for (let i = 0; i < parts; i++) {
        const partition = res.readInt32BE(r);
        const code = res.readInt16BE(r + 4);
        r += 4 + 2 + 8 + 8;
        const abortedCount = res.readInt32BE(r);
        r += 4;
        const aborted: { producerId: bigint; firstOffset: number }[] = [];
        for (let a = 0; a < abortedCount; a++) {
          aborted.push({ producerId: res.readBigInt64BE(r), firstOffset: Number(res.readBigInt64BE(r + 8)) });
          r += 16;
        }
        const size = res.readInt32BE(r);
        r += 4;
        const records = size > 0 ? res.subarray(r, r + size) : Buffer.alloc(0);
        r += Math.max(size, 0);
        if (code !== 0) {
          throw new Error(
            `Kafka refused to fetch partition ${partition} of "${this.topic}" at offset ${wanted.get(partition)}: error ${code} ${ERROR_NAMES[code] ?? ''}`.trim(),
          );
        }
        out.push(decodeBatches(partition, records, wanted.get(partition) ?? 0, aborted));
      }
    }
    return out;
  }

  close(): void {
    for (const c of this.connections) c.close();
  }
}

/** Decodes the record batches of one partition's fetch response, skipping control and aborted batches. */
function decodeBatches(
  partition: number,
  buf: Buffer,
  from: number,
  abortedList: { producerId: bigint; firstOffset: number }[],
): FetchedPartition {
  const records: FetchedRecord[] = [];
  let nextOffset = from;
  const active = new Set<bigint>();
  let b = 0;
  while (b + 61 <= buf.length) {
    const baseOffset = Number(buf.readBigInt64BE(b));
    const batchLength = buf.readInt32BE(b + 8);
    const end = b + 12 + batchLength;
    if (end > buf.length) break; // a partial batch at the end of the response: fetched again next time
    const magic = buf.readInt8(b + 16);
    if (magic !== 2)
      throw new Error(
        `partition ${partition}: record batch at offset ${baseOffset} has magic ${magic}; only v2 batches (Kafka >= 0.11) are read`,
      );
    const attributes = buf.readInt16BE(b + 21);
    const lastOffset = baseOffset + buf.readInt32BE(b + 23);
    const firstTimestamp = Number(buf.readBigInt64BE(b + 27));
    const maxTimestamp = Number(buf.readBigInt64BE(b + 35));
    const producerId = buf.readBigInt64BE(b + 43);
    const count = buf.readInt32BE(b + 57);
    const control = (attributes & 0x20) !== 0;
    const transactional = (attributes & 0x10) !== 0;
    for (const a of abortedList) if (a.producerId === producerId && a.firstOffset <= lastOffset) active.add(producerId);
    if (control) {
      active.delete(producerId);
    } else if (!(transactional && active.has(producerId))) {
      let body = buf.subarray(b + 61, end);
      const codec = attributes & 0x07;
      if (codec === 1) body = gunzipSync(body);
      else if (codec !== 0)
        throw new Error(
          `partition ${partition}: record batch at offset ${baseOffset} uses compression codec ${codec}; only none and gzip are read`,
        );
      const logAppend = (attributes & 0x08) !== 0;
      const pos = { p: 0 };
      for (let i = 0; i < count; i++) {
        const len = readVarint(body, pos);
        const recordEnd = pos.p + len;
        pos.p++; // attributes
        const tsDelta = readVarint(body, pos);
        const offset = baseOffset + readVarint(body, pos);
        const keyLen = readVarint(body, pos);
        if (keyLen > 0) pos.p += keyLen;
        const valueLen = readVarint(body, pos);
        const value = valueLen < 0 ? null : body.subarray(pos.p, pos.p + valueLen);
        pos.p = recordEnd; // headers are not read
        if (offset >= from)
          records.push({ offset, timestampMs: logAppend ? maxTimestamp : firstTimestamp + tsDelta, value });
      }
    }
    nextOffset = Math.max(nextOffset, lastOffset + 1);
    b = end;
  }
  return { partition, records, nextOffset };
}
