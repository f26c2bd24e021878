import { sql } from 'kysely';
import { type Client } from '@temporalio/client';
import { EXIT, EXIT_CODES_HELP, parseCommandLine, runCommand } from '../lib/cli';
import { type Config, loadConfig } from '../lib/config';
import { topicOffsets } from '../lib/kafka';
import { closeClient, connectClient } from '../lib/temporal-client';
import { addDays, utcDate, workflowUiUrl } from '../lib/temporal';
import { createDb, createPool, type Db } from '../warehouse/db';
import { formatSummary, startBackfill, watchBackfill } from './backfill';
import { produceEvents } from '../lib/produce';
import { createWorker } from '../lib/worker';

/**
 * `make demo` (after `make up`): produces a week of realistic events, backfills that week through Temporal on the
 * worker, and prints what landed where. DEMO_EVENTS (default 210000) and DEMO_DAYS (default 7) size it.
 */

const SEED = 42;
/** A steady trickle of bad records, under the dead-letter check's 1 %. */
const BAD_RATE = 0.002;
/** The incident the demo plants on purpose: a burst of malformed records on its last date, for the dead-letter check. */
const INCIDENT_BAD_RECORDS = 2500;

async function topicRecordCount(config: Config): Promise<number> {
  const offsets = await topicOffsets(config, config.kafkaTopic);
  return offsets.reduce((sum, p) => sum + p.high - p.low, 0);
}

async function workerPolling(client: Client, config: Config): Promise<boolean> {
  const response = await client.workflowService.describeTaskQueue({
    namespace: config.temporalNamespace,
    // TASK_QUEUE_KIND_NORMAL = 1, TASK_QUEUE_TYPE_WORKFLOW = 1 (@temporalio/proto is not a direct dependency)
    taskQueue: { name: config.temporalTaskQueue, kind: 1 },
    taskQueueType: 1,
  });
  return (response.pollers?.length ?? 0) > 0;
}

function table(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '  (no rows)';
  const cols = Object.keys(rows[0]);
  const cell = (v: unknown) => (v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => `  ${values.map((v, i) => v.padEnd(widths[i])).join('  ')}`.trimEnd();
  return [
    line(cols),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(cols.map((c) => cell(r[c])))),
  ].join('\n');
}

async function printWarehouse(db: Db, from: string, to: string): Promise<void> {
  const counts = await sql<{ table: string; rows: number }>`
    select 'warehouse.fact_events' as table, count(*)::int as rows from warehouse.fact_events
    union all select 'warehouse.dim_user', count(*)::int from warehouse.dim_user
    union all select 'warehouse.dim_device', count(*)::int from warehouse.dim_device
    union all select 'marts.daily_active_users', count(*)::int from marts.daily_active_users
    union all select 'marts.revenue_daily', count(*)::int from marts.revenue_daily
    union all select 'marts.revenue_per_user', count(*)::int from marts.revenue_per_user
    union all select 'marts.churn_risk', count(*)::int from marts.churn_risk
    union all select 'marts.funnel_daily', count(*)::int from marts.funnel_daily
    union all select 'ops.lake_files', count(*)::int from ops.lake_files`.execute(db);
  console.log('\nRows per table\n' + table(counts.rows));

  const checks = await sql<Record<string, unknown>>`
    with latest as (
      select distinct on (dt, check_name) dt, check_name, status, observed, threshold
      from ops.dq_results where dt between ${from}::date and ${to}::date
      order by dt, check_name, checked_at desc, dq_result_id desc
    )
    select check_name as check, count(*) filter (where status = 'pass')::int as pass,
           count(*) filter (where status = 'warn')::int as warn, count(*) filter (where status = 'fail')::int as fail,
           count(*) filter (where status = 'skip')::int as skip
    from latest group by check_name order by check_name`.execute(db);
  console.log(`\nData-quality checks, ${from}..${to} (dates per status)\n` + table(checks.rows));

  const problems = await sql<Record<string, unknown>>`
    select distinct on (dt, check_name) to_char(dt, 'YYYY-MM-DD') as date, check_name as check, status, observed, threshold
    from ops.dq_results where dt between ${from}::date and ${to}::date
    order by dt, check_name, checked_at desc, dq_result_id desc`.execute(db);
  const notPassing = problems.rows.filter((r) => r.status === 'warn' || r.status === 'fail');
  if (notPassing.length) console.log('\nChecks not passing\n' + table(notPassing));

  const dau = await sql<Record<string, unknown>>`
    select to_char(date, 'YYYY-MM-DD') as date, dau, new_users, returning_users, events
    from marts.daily_active_users where date between ${from}::date and ${to}::date order by date`.execute(db);
  console.log('\nmarts.daily_active_users\n' + table(dau.rows));

  const revenue = await sql<Record<string, unknown>>`
    select to_char(date, 'YYYY-MM-DD') as date, plan, country, currency, orders, revenue, avg_order_value, paying_users
    from marts.revenue_daily where date between ${from}::date and ${to}::date
    order by revenue desc nulls last limit 5`.execute(db);
  console.log('\nmarts.revenue_daily (top 5 by revenue)\n' + table(revenue.rows));

  const funnel = await sql<Record<string, unknown>>`
    select to_char(date, 'YYYY-MM-DD') as date, step, users, conversion_from_previous, conversion_from_first
    from marts.funnel_daily where date = ${to}::date order by step_order`.execute(db);
  console.log(`\nmarts.funnel_daily (${to})\n` + table(funnel.rows));
}

export const HELP = `Produce a week of events, run them through Temporal, print a summary and where to look.

usage: nightshift demo   (make demo starts the stack first)

DEMO_EVENTS (default 210000) and DEMO_DAYS (default 7) size it.
${EXIT_CODES_HELP}`;

export async function main(argv: string[]): Promise<number> {
  if (parseCommandLine(argv, {}) === 'help') {
    console.log(HELP);
    return EXIT.ok;
  }
  const config = loadConfig();
  const { events, days } = config.demo;
  // the last `days` full UTC days before today
  let to = addDays(utcDate(new Date()), -1);
  let from = addDays(to, -(days - 1));

  const client = await connectClient(config);
  const pool = createPool(config.databaseUrl, 8);
  const db = createDb(pool);
  let ownWorker: Awaited<ReturnType<typeof createWorker>> | undefined;
  let ownWorkerRun: Promise<void> | undefined;
  try {
    const existing = await topicRecordCount(config);
    if (existing > 0) {
      console.log(
        `Kafka topic ${config.kafkaTopic} already holds ${existing} records: not producing more (a second demo re-loads the same days).`,
      );
      // an earlier demo's days, when they were landed: run those rather than days nothing was produced for
      const landed = await sql<{ first: string | null; last: string | null }>`
        select min(dt)::text as first, max(dt)::text as last from ops.lake_files
        where area = 'events' and dt > current_date - 60 and dt < current_date`.execute(db);
      const { first, last } = landed.rows[0] ?? {};
      if (first && last) [from, to] = [first, last];
    } else {
      console.log(
        `Producing ${events} events for ${from}..${to} into ${config.kafkaTopic} (seed ${SEED}, ${BAD_RATE * 100} % bad records)…`,
      );
      const produced = await produceEvents(config, { events, days, start: from, seed: SEED, badRate: BAD_RATE });
      console.log(`  ${produced.events} records (${produced.bad} bad) in ${produced.seconds.toFixed(1)} s`);
      const burst = Math.min(INCIDENT_BAD_RECORDS, Math.ceil(events / days / 10));
      await produceEvents(config, { events: burst, days: 1, start: to, seed: SEED + 1, badRate: 1 });
      console.log(`  planted incident: ${burst} malformed records on ${to} (its dead_letters check should fail)`);
    }

    if (await workerPolling(client, config)) {
      console.log(
        `A worker is polling task queue ${config.temporalTaskQueue} (the one \`make up\` started, log .data/logs/worker.log).`,
      );
    } else {
      console.log(`No worker polls task queue ${config.temporalTaskQueue}: starting one in this process.`);
      ownWorker = await createWorker(config, { config, pool, db }, { identity: `nightshift-demo@${process.pid}` });
      ownWorkerRun = ownWorker.worker.run();
    }

    const started = Date.now();
    const run = await startBackfill(client, config, { from, to, concurrency: 3, mode: 'all' });
    console.log(`\n${run.started ? 'Started' : 'Attached to'} ${run.workflowId}: ${run.url}`);
    const output = await watchBackfill(client, run.workflowId);
    console.log(`\n${formatSummary(output)}`);
    console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s through Temporal)`);

    await printWarehouse(db, from, to);
    console.log(
      `\nPlanted incident: a burst of malformed records on ${to}; its dead_letters check fails on purpose and is the ` +
        'one alert of the backfill summary. Every other check passes, or is skipped while the volume baseline warms up.',
    );

    console.log(`
Where to look
  Temporal UI     ${config.temporalUiUrl}/namespaces/${config.temporalNamespace}/workflows  (search: PipelineDate = '${to}')
  this backfill   ${workflowUiUrl(config.temporalUiUrl, config.temporalNamespace, run.workflowId)}
  the warehouse   make psql   (read-only analyst; try: select * from marts.daily_active_users order by date;)
  load history    select * from ops.pipeline_runs order by started_at desc;   (in make psql)
  more            make backfill FROM=${from} TO=${to} MODE=failed · make schedule · .tools/venv/bin/temporal workflow list`);
    return output.failed.length ? EXIT.failed : EXIT.ok;
  } finally {
    if (ownWorker) {
      ownWorker.worker.shutdown();
      await ownWorkerRun;
      await ownWorker.connection.close();
    }
    await closeClient(client);
    await db.destroy();
  }
}

if (require.main === module) runCommand('demo', main);
