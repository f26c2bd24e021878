import type pg from 'pg';
import type { HighWatermarks } from './metrics';

/** What `make status` says about the pipeline beside the services: newest loaded date, Kafka lag, the last run. */

export interface PipelineStatus {
  newestLoaded: string | null;
  lastRun: { workflowId: string; date: string; status: string; step: string | null; error: string | null } | null;
  /** Records in Kafka not landed yet, over the topic's partitions (null when Kafka did not answer). */
  lag: { total: number; partitions: number } | null;
}

export async function pipelineStatus(
  pool: Pick<pg.Pool, 'query'>,
  topic: string,
  highWatermarks: HighWatermarks,
): Promise<PipelineStatus> {
  const { rows: loaded } = await pool.query<{ dt: string | null }>(
    `select to_char(max(pr.dt), 'YYYY-MM-DD') as dt
     from ops.pipeline_runs as pr where pr.step = 'pipeline' and pr.status = 'succeeded'`,
  );
  const { rows: runs } = await pool.query<{
    workflow_id: string;
    dt: string;
    status: string;
    error: string | null;
    step: string | null;
  }>(
    `select pr.workflow_id, to_char(pr.dt, 'YYYY-MM-DD') as dt, pr.status, pr.error,
            (select s.step from ops.pipeline_runs as s
             where s.run_id = pr.run_id and s.dt = pr.dt and s.step <> 'pipeline'
             order by s.started_at desc, s.run_step_id desc limit 1) as step
     from ops.pipeline_runs as pr
     where pr.step = 'pipeline'
     order by pr.started_at desc, pr.run_step_id desc
     limit 1`,
  );
  let lag: PipelineStatus['lag'] = null;
  try {
    const high = await highWatermarks(topic);
    const { rows: landed } = await pool.query<{ partition: number; next_offset: string }>(
      'select ko.partition, ko.next_offset from ops.kafka_offsets as ko where ko.topic = $1',
      [topic],
    );
    const total = high.reduce(
      (sum, h) => sum + Math.max(0, h.high - Number(landed.find((l) => l.partition === h.partition)?.next_offset ?? 0)),
      0,
    );
    lag = { total, partitions: high.length };
  } catch {
    lag = null;
  }
  const r = runs[0];
  return {
    newestLoaded: loaded[0]?.dt ?? null,
    lastRun: r ? { workflowId: r.workflow_id, date: r.dt, status: r.status, step: r.step, error: r.error } : null,
    lag,
  };
}

export function formatPipelineStatus(s: PipelineStatus, topic: string): string {
  const run = s.lastRun
    ? `${s.lastRun.workflowId} ${s.lastRun.status}` +
      (s.lastRun.status === 'running' && s.lastRun.step ? ` on ${s.lastRun.step}` : '') +
      (s.lastRun.status === 'failed' && s.lastRun.error ? ` (${s.lastRun.error.slice(0, 120)})` : '')
    : 'none yet';
  const lag = s.lag
    ? `${s.lag.total} records over ${s.lag.partitions} partitions of ${topic}`
    : 'unknown (Kafka did not answer)';
  return [
    `newest loaded date  ${s.newestLoaded ?? 'none yet'}`,
    `last run            ${run}`,
    `Kafka lag           ${lag}`,
  ].join('\n');
}
