import { type KafkaConnection, kafkaConnection, topicOffsets } from './kafka';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Config } from './config';

/**
 * The worker's Prometheus endpoint (SPEC section 10). One port, METRICS_PORT, serves /metrics with:
 * - the pipeline's own `nightshift_…` series, computed from the ops tables (and Kafka's high watermarks) at scrape
 *   time, so they are right across worker restarts and whichever of several workers is scraped;
 * - the Temporal SDK's runtime series (`temporal_…`), which the SDK's core exports on a loopback port of its own
 *   (TEMPORAL_METRICS_PORT): fetched and appended to the same response.
 */

type Queryable = Pick<pg.Pool, 'query'>;

/** Kafka's high watermark (next offset to be written) per partition of a topic. */
export type HighWatermarks = (topic: string) => Promise<{ partition: number; high: number }[]>;

/** High watermarks (read_committed: the last stable offset) through the project's Kafka client, per scrape. */
export function kafkaHighWatermarks(conn: KafkaConnection): HighWatermarks & { close(): Promise<void> } {
  const read = async (topic: string) =>
    (await topicOffsets(conn, topic)).map((o) => ({ partition: o.partition, high: o.high }));
  return Object.assign(read, { close: async () => undefined });
}

export interface PipelineMetricsOptions {
  pool: Queryable;
  /** The topic whose consumer lag is reported. */
  topic: string;
  highWatermarks: HighWatermarks;
}

async function rows<T>(pool: Queryable, text: string, values: unknown[] = []): Promise<T[]> {
  return (await pool.query(text, values)).rows as T[];
}

/** A counter whose value is read from the database at scrape time (totals kept in ops, not in this process). */
function tableCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
  read: () => Promise<{ labels: Record<L, string | number>; value: number }[]>,
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      const values = await read();
      this.reset();
      for (const v of values) if (v.value > 0) this.inc(v.labels, v.value);
    },
  });
}

function tableGauge<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
  read: () => Promise<{ labels: Record<L, string | number>; value: number }[]>,
): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      const values = await read();
      this.reset();
      for (const v of values) this.set(v.labels, v.value);
    },
  });
}

/** The registry of the pipeline's own series. */
export function createPipelineMetrics({ pool, topic, highWatermarks }: PipelineMetricsOptions): Registry {
  const registry = new Registry();

  tableCounter(
    registry,
    'nightshift_records_landed_total',
    'Kafka records landed in the lake (ops.lake_files, area events), per topic.',
    ['topic'],
    async () =>
      (
        await rows<{ topic: string; n: string }>(
          pool,
          `select lf.topic, sum(lf.row_count) as n from ops.lake_files as lf where lf.area = 'events' group by lf.topic`,
        )
      ).map((r) => ({ labels: { topic: r.topic }, value: Number(r.n) })),
  );
  tableCounter(
    registry,
    'nightshift_records_dead_lettered_total',
    'Kafka records dead-lettered with a reason (ops.lake_files, area dead_letter), per topic.',
    ['topic'],
    async () =>
      (
        await rows<{ topic: string; n: string }>(
          pool,
          `select lf.topic, sum(lf.row_count) as n from ops.lake_files as lf where lf.area = 'dead_letter' group by lf.topic`,
        )
      ).map((r) => ({ labels: { topic: r.topic }, value: Number(r.n) })),
  );
  tableGauge(
    registry,
    'nightshift_consumer_lag',
    "Records in Kafka not landed yet: the partition's high watermark minus ops.kafka_offsets.next_offset.",
    ['topic', 'partition'],
    async () => {
      const [high, landed] = await Promise.all([
        highWatermarks(topic),
        rows<{ partition: number; next_offset: string }>(
          pool,
          'select ko.partition, ko.next_offset from ops.kafka_offsets as ko where ko.topic = $1',
          [topic],
        ),
      ]);
      return high.map((h) => {
        const next = Number(landed.find((l) => l.partition === h.partition)?.next_offset ?? 0);
        return { labels: { topic, partition: h.partition }, value: Math.max(0, h.high - next) };
      });
    },
  );
  tableCounter(
    registry,
    'nightshift_stage_rows_total',
    'Rows inserted by the succeeded steps of ops.pipeline_runs, per stage (pipeline = whole runs: fact rows).',
    ['stage'],
    async () =>
      (
        await rows<{ step: string; n: string }>(
          pool,
          `select pr.step, coalesce(sum(pr.rows_inserted), 0) as n
           from ops.pipeline_runs as pr where pr.status = 'succeeded' group by pr.step`,
        )
      ).map((r) => ({ labels: { stage: r.step }, value: Number(r.n) })),
  );
  tableCounter(
    registry,
    'nightshift_stage_seconds_total',
    'Seconds spent in the succeeded steps of ops.pipeline_runs, per stage.',
    ['stage'],
    async () =>
      (
        await rows<{ step: string; s: string }>(
          pool,
          `select pr.step, coalesce(sum(extract(epoch from pr.finished_at - pr.started_at)), 0) as s
           from ops.pipeline_runs as pr where pr.status = 'succeeded' group by pr.step`,
        )
      ).map((r) => ({ labels: { stage: r.step }, value: Number(r.s) })),
  );
  tableCounter(
    registry,
    'nightshift_stage_runs_total',
    'Steps recorded in ops.pipeline_runs, per stage and status (running, succeeded, failed).',
    ['stage', 'status'],
    async () =>
      (
        await rows<{ step: string; status: string; n: string }>(
          pool,
          'select pr.step, pr.status, count(*) as n from ops.pipeline_runs as pr group by pr.step, pr.status',
        )
      ).map((r) => ({ labels: { stage: r.step, status: r.status }, value: Number(r.n) })),
  );
  tableGauge(
    registry,
    'nightshift_newest_loaded_date_seconds',
    'The newest date with a succeeded whole run, as the Unix time of its midnight UTC (0: none yet).',
    [],
    async () => {
      const [r] = await rows<{ t: string | null }>(
        pool,
        `select extract(epoch from max(pr.dt)::timestamp at time zone 'UTC') as t
         from ops.pipeline_runs as pr where pr.step = 'pipeline' and pr.status = 'succeeded'`,
      );
      return [{ labels: {}, value: Number(r?.t ?? 0) }];
    },
  );
  tableCounter(
    registry,
    'nightshift_check_results_total',
    'Data-quality check results recorded in ops.dq_results, per check and status.',
    ['check', 'status'],
    async () =>
      (
        await rows<{ check_name: string; status: string; n: string }>(
          pool,
          'select r.check_name, r.status, count(*) as n from ops.dq_results as r group by r.check_name, r.status',
        )
      ).map((r) => ({ labels: { check: r.check_name, status: r.status }, value: Number(r.n) })),
  );
  tableGauge(
    registry,
    'nightshift_check_status',
    'The latest result of each check on the newest checked date: 1 for its status.',
    ['check', 'status'],
    async () =>
      (
        await rows<{ check_name: string; status: string }>(
          pool,
          `select distinct on (r.check_name) r.check_name, r.status
           from ops.dq_results as r
           where r.dt = (select max(x.dt) from ops.dq_results as x)
           order by r.check_name, r.checked_at desc, r.dq_result_id desc`,
        )
      ).map((r) => ({ labels: { check: r.check_name, status: r.status }, value: 1 })),
  );
  tableCounter(
    registry,
    'nightshift_alerts_total',
    'Alerts decided on (ops.alerts), per kind and whether Slack received them.',
    ['kind', 'delivered'],
    async () =>
      (
        await rows<{ kind: string; delivered: boolean; n: string }>(
          pool,
          'select a.kind, a.delivered, count(*) as n from ops.alerts as a group by a.kind, a.delivered',
        )
      ).map((r) => ({ labels: { kind: r.kind, delivered: String(r.delivered) }, value: Number(r.n) })),
  );
  return registry;
}

export interface MetricsServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  /** The SDK core's own exporter, e.g. http://127.0.0.1:9465/metrics; its text is appended. */
  sdkMetricsUrl?: string;
  /** Bound on each scrape's database queries and SDK fetch. */
  timeoutMs?: number;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

async function sdkMetrics(url: string, timeoutMs: number): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return `# Temporal SDK metrics unavailable: HTTP ${res.status} from ${url}\n`;
    return await res.text();
  } catch (err) {
    return `# Temporal SDK metrics unavailable from ${url}: ${(err as Error).message}\n`;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Serves GET /metrics (the pipeline's series, then the SDK's); anything else is 404. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: scrape /metrics\n');
      return;
    }
    Promise.all([
      withTimeout(options.registry.metrics(), timeoutMs, 'collecting the nightshift metrics'),
      options.sdkMetricsUrl ? sdkMetrics(options.sdkMetricsUrl, timeoutMs) : Promise.resolve(''),
    ]).then(
      ([own, sdk]) => {
        res.writeHead(200, { 'content-type': options.registry.contentType }).end(`${own}\n${sdk}`);
      },
      (err: Error) => {
        res.writeHead(503, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${err.message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The SDK runtime's telemetry options: its Prometheus exporter on the loopback port /metrics merges from. */
export function sdkTelemetryOptions(config: Pick<Config, 'metricsPort' | 'temporalMetricsPort'>) {
  if (!config.metricsPort) return {};
  return {
    telemetryOptions: {
      metrics: { prometheus: { bindAddress: `127.0.0.1:${config.temporalMetricsPort}` } },
    },
  };
}

/** The worker's /metrics on METRICS_PORT (none when it is 0): the pipeline's series and the SDK's. */
export async function startWorkerMetrics(
  config: Pick<
    Config,
    'metricsPort' | 'temporalMetricsPort' | 'kafkaBrokers' | 'kafkaSsl' | 'kafkaSslCa' | 'kafkaSasl' | 'kafkaTopic'
  >,
  pool: Queryable,
): Promise<MetricsServer | null> {
  if (!config.metricsPort) return null;
  const highWatermarks = kafkaHighWatermarks(kafkaConnection(config));
  let server: MetricsServer;
  try {
    server = await startMetricsServer({
      port: config.metricsPort,
      registry: createPipelineMetrics({ pool, topic: config.kafkaTopic, highWatermarks }),
      sdkMetricsUrl: `http://127.0.0.1:${config.temporalMetricsPort}/metrics`,
    });
  } catch (err) {
    throw new Error(
      `Cannot serve metrics on port ${config.metricsPort} (METRICS_PORT): ${(err as Error).message}; ` +
        'free the port, pick another, or set METRICS_PORT=0 to serve none',
      { cause: err },
    );
  }
  return {
    port: server.port,
    async close() {
      await server.close();
      await highWatermarks.close();
    },
  };
}
