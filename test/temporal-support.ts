import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Runtime, DefaultLogger } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import { sql } from 'kysely';
import type { Config } from '../lib/config';
import { lakeEnvironment } from '../lib/lake-store';
import { connectClient } from '../lib/temporal-client';
import { createWorker, type NightshiftWorker } from '../lib/worker';
import { produceEvents } from '../lib/produce';
import type { TestEnv } from './support';
import type { Db } from '../warehouse/db';

/** Temporal helpers for tests: an in-process worker on the test's own task queue, a worker in a child process. */

export const ROOT = path.resolve(__dirname, '..');

let runtimeInstalled = false;
/** Worker logs at WARN: a test's output shows problems, not every poll. */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  } catch {
    // already installed by an earlier import in this process
  }
}

export interface RunningWorker extends NightshiftWorker {
  /** Resolves when the worker has stopped. */
  running: Promise<void>;
  stop(): Promise<void>;
}

/** Starts an in-process worker for the test environment; `stop()` drains it and closes its connection. */
export async function startWorker(env: TestEnv): Promise<RunningWorker> {
  quietRuntime();
  const nw = await createWorker(env.config, { config: env.config, pool: env.pool, db: env.db });
  const running = nw.worker.run().finally(() => nw.connection.close());
  return {
    ...nw,
    running,
    async stop() {
      if (nw.worker.getState() === 'RUNNING') nw.worker.shutdown();
      await running;
    },
  };
}

export async function testClient(config: Config): Promise<Client> {
  return connectClient(config);
}

/** The environment variables that point a child process at the test's database, topic, lake and task queue. */
export function envFor(config: Config): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: config.databaseUrl,
    KAFKA_TOPIC: config.kafkaTopic,
    ...lakeEnvironment(config),
    TEMPORAL_TASK_QUEUE: config.temporalTaskQueue,
    TEMPORAL_ADDRESS: config.temporalAddress,
    TEMPORAL_NAMESPACE: config.temporalNamespace,
    // several test workers at once: no Prometheus endpoint unless a test asks for one on a port of its own
    METRICS_PORT: '0',
  };
}

/** `scripts/worker.ts` in a child process (what `make worker` runs); resolves once it polls. */
export async function spawnWorker(
  config: Config,
  extraEnv: NodeJS.ProcessEnv = {},
  cwd: string = ROOT,
): Promise<ChildProcess> {
  // absolute paths: the worker may run in a working folder of its own
  const tsx = pathToFileURL(path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const child = spawn(process.execPath, ['--import', tsx, path.join(ROOT, 'scripts', 'worker.ts')], {
    cwd,
    // the warm-up at start is tested in-process (landing and stage-worker tests); here it would only slow each start
    env: { ...envFor(config), WORKER_WARM_UP: 'false', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('polling task queue')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`worker exited with ${code} before polling:\n${output}`)));
  });
  return child;
}

export async function killAndWait(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  return exited;
}

/** Small deterministic test data: `days` days from `start`, ~`perDay` events a day, no bad records. */
export async function produceDays(config: Config, start: string, days: number, perDay = 400, seed = 7): Promise<void> {
  await produceEvents(config, { events: days * perDay, days, start, seed, badRate: 0 });
}

export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * A fingerprint of the warehouse and marts by natural keys (surrogate keys depend on load order, which concurrent
 * loads do not fix): equal fingerprints mean the same warehouse state.
 */
export async function warehouseHashes(db: Db): Promise<Record<string, string>> {
  const q = async (name: string, query: ReturnType<typeof sql<{ h: string | null; n: number }>>) => {
    const { rows } = await query.execute(db);
    return [name, `${rows[0].n}:${rows[0].h ?? ''}`] as const;
  };
  return Object.fromEntries(
    await Promise.all([
      q(
        'fact_events',
        sql`select count(*)::int as n, md5(string_agg(concat_ws('|', f.event_id, f.event_time, f.date_key, u.user_id, u.valid_from,
              d.device_type, d.os, d.browser, f.event_type, f.session_id, f.page, f.country, f.order_id, f.product_id, f.amount,
              f.currency), ',' order by f.event_id)) as h
            from warehouse.fact_events f
            join warehouse.dim_user u on u.user_key = f.user_key
            join warehouse.dim_device d on d.device_key = f.device_key`,
      ),
      q(
        'dim_user',
        sql`select count(*)::int as n, md5(string_agg(concat_ws('|', user_id, email, plan, country, valid_from, valid_to, is_current,
              is_inferred), ',' order by user_id, valid_from)) as h from warehouse.dim_user`,
      ),
      q(
        'dim_device',
        sql`select count(*)::int as n, md5(string_agg(concat_ws('|', device_type, os, browser), ',' order by device_type, os, browser)) as h
            from warehouse.dim_device`,
      ),
      q(
        'daily_active_users',
        sql`select count(*)::int as n, md5(string_agg(concat_ws('|', date, dau, new_users, returning_users, events), ',' order by date)) as h
            from marts.daily_active_users`,
      ),
      q(
        'revenue_daily',
        sql`select count(*)::int as n, md5(string_agg(concat_ws('|', date, plan, country, currency, orders, revenue, paying_users), ','
              order by date, plan, country, currency)) as h from marts.revenue_daily`,
      ),
    ]),
  );
}
