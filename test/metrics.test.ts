import net from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { topicOffsets } from '../lib/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { kafkaHighWatermarks } from '../lib/metrics';
import { formatPipelineStatus, pipelineStatus } from '../lib/pipeline-status';
import { closeClient } from '../lib/temporal-client';
import { produceEvents } from '../lib/produce';
import { dailyPipelineWorkflow } from '../workflows';
import { createTestEnv, type TestEnv } from './support';
import { killAndWait, spawnWorker, testClient } from './temporal-support';

/** The worker's /metrics after a run: the SDK's temporal_… series and the pipeline's nightshift_… ones, equal to ops. */

const DATE = '2023-03-07';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `name{labels} value` lines of the exposition text, keyed by `name{labels}`. */
function series(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

describe('Prometheus metrics on the worker', () => {
  let env: TestEnv;
  let client: Client;
  let worker: ChildProcess;
  let port: number;

  beforeAll(async () => {
    env = await createTestEnv({ partitions: 3 });
    client = await testClient(env.config);
    port = await freePort();
    worker = await spawnWorker(env.config, {
      METRICS_PORT: String(port),
      TEMPORAL_METRICS_PORT: String(await freePort()),
    });
  });
  afterAll(async () => {
    if (worker) await killAndWait(worker, 'SIGTERM');
    await closeClient(client);
    await env.cleanup();
  });

  it('after a run, /metrics shows temporal_ series and nightshift_ series equal to ops', async () => {
    await produceEvents(env.config, { events: 900, days: 1, start: DATE, seed: 5, badRate: 0.05 });
    await client.workflow.execute(dailyPipelineWorkflow, {
      workflowId: `daily-${DATE}`,
      taskQueue: env.config.temporalTaskQueue,
      args: [{ date: DATE }],
    });
    // records produced after the run: lag, also while no run is going
    await produceEvents(env.config, { events: 40, days: 1, start: DATE, seed: 6, badRate: 0 });

    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const m = series(text);
    const topic = env.config.kafkaTopic;

    expect(text).toMatch(/^temporal_\w+/m);
    expect([...m.keys()].some((k) => k.startsWith('temporal_activity_execution_latency'))).toBe(true);

    const q = async (query: string, values: unknown[] = []) => (await env.pool.query(query, values)).rows;
    const [files] = await q(
      `select sum(row_count) filter (where area = 'events')::int as landed,
              sum(row_count) filter (where area = 'dead_letter')::int as dead from ops.lake_files`,
    );
    expect(files.dead).toBeGreaterThan(0);
    expect(m.get(`nightshift_records_landed_total{topic="${topic}"}`)).toBe(files.landed);
    expect(m.get(`nightshift_records_dead_lettered_total{topic="${topic}"}`)).toBe(files.dead);

    const high = await topicOffsets(env.config, topic);
    const landed = await q('select partition, next_offset::int as next from ops.kafka_offsets where topic = $1', [
      topic,
    ]);
    let lag = 0;
    for (const h of high) {
      const next = landed.find((l) => l.partition === h.partition)?.next ?? 0;
      lag += Number(h.high) - next;
      expect(m.get(`nightshift_consumer_lag{topic="${topic}",partition="${h.partition}"}`)).toBe(Number(h.high) - next);
    }
    expect(lag).toBe(40);

    const stages = await q(
      `select step, sum(rows_inserted)::int as rows_, sum(extract(epoch from finished_at - started_at))::float as s
       from ops.pipeline_runs where status = 'succeeded' group by step`,
    );
    expect(stages.map((s) => s.step)).toEqual(expect.arrayContaining(['land', 'facts', 'checks', 'pipeline']));
    for (const s of stages.filter((x) => x.rows_ > 0)) {
      expect(m.get(`nightshift_stage_rows_total{stage="${s.step}"}`)).toBe(s.rows_);
    }
    const facts = stages.find((s) => s.step === 'facts')!;
    expect(m.get('nightshift_stage_seconds_total{stage="facts"}')).toBeCloseTo(facts.s, 3);

    expect(m.get('nightshift_newest_loaded_date_seconds')).toBe(Date.parse(`${DATE}T00:00:00Z`) / 1000);

    const checks = await q('select check_name, status, count(*)::int as n from ops.dq_results group by 1, 2');
    expect(checks.length).toBeGreaterThan(0);
    for (const c of checks) {
      expect(m.get(`nightshift_check_results_total{check="${c.check_name}",status="${c.status}"}`)).toBe(c.n);
      expect(m.get(`nightshift_check_status{check="${c.check_name}",status="${c.status}"}`)).toBe(1);
    }
    const alerts = await q('select kind, delivered, count(*)::int as n from ops.alerts group by 1, 2');
    for (const a of alerts) {
      expect(m.get(`nightshift_alerts_total{kind="${a.kind}",delivered="${a.delivered}"}`)).toBe(a.n);
    }

    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);

    // make status says the same beside the services' health
    const watermarks = kafkaHighWatermarks(env.config);
    const status = await pipelineStatus(env.pool, topic, watermarks);
    await watermarks.close();
    expect(status).toEqual({
      newestLoaded: DATE,
      lastRun: { workflowId: `daily-${DATE}`, date: DATE, status: 'succeeded', step: 'alert', error: null },
      lag: { total: 40, partitions: 3 },
    });
    expect(formatPipelineStatus(status, topic)).toContain(
      `Kafka lag           40 records over 3 partitions of ${topic}`,
    );
  });
});
