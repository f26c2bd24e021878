import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createLandActivities, type LandTuning } from '../activities/land';
import { EXIT, parseCommandLine, runCommand, wholeNumber } from '../lib/cli';
import { type Config, loadConfig } from '../lib/config';
import { createTopic, deleteTopic } from '../lib/kafka';
import { lakeEnvironment, lakeOf } from '../lib/lake-store';
import { withDateLock } from '../lib/locks';
import { stageDate } from '../activities/stage';
import { createDb, createPool } from '../warehouse/db';
import { migrateToLatest } from '../warehouse/migrate';
import { produceEvents } from '../lib/produce';

/**
 * Measures landing throughput and peak memory: produces N events (default 1,000,000) into a fresh topic, then lands
 * them into a fresh database and lake in a child process, whose peak RSS is the landing's alone.
 * Usage: node --import tsx scripts/measure-landing-rss.ts [--events N] [--keep] [--topic NAME] [--tuning JSON] [--stage]
 * --topic lands an existing topic (e.g. one kept by an earlier --keep run) instead of producing a new one, so that
 * before/after pairs land the same records; that topic is never deleted. --tuning passes LandTuning knobs as JSON,
 * e.g. '{"workers":1}'. --stage then stages the day with the most events in the same process, as a worker runs the
 * steps one after the other, and reports the peak RSS of both.
 * Needs the local stack (make up); cleans up its topic, database and lake unless --keep.
 */

const CHILD_FLAG = '--child-land';

interface ChildResult {
  seconds: number;
  maxRssMiB: number;
  /** CPU seconds of the landing process, all threads: a fairer figure than wall time on a shared machine. */
  cpuSeconds: number;
  output: Awaited<ReturnType<ReturnType<typeof createLandActivities>['landEvents']>>;
  /** With --stage: the day with the most events staged after the landing, in the same process (as a worker would). */
  stage?: { date: string; rows: number; seconds: number; maxRssMiB: number; cpuSeconds: number };
}

/**
 * The child: lands the topic named by the environment and prints its figures as JSON; `tuning` is the landing's
 * LandTuning as JSON (--tuning), `stage` stages the landing's largest day in the same process afterwards (--stage).
 */
async function child(tuningJson: string, stage: boolean): Promise<void> {
  const config = loadConfig();
  const pool = createPool(config.databaseUrl, 2);
  const db = createDb(pool);
  try {
    const started = process.hrtime.bigint();
    const tuning = JSON.parse(tuningJson) as LandTuning;
    const output = await createLandActivities({ config, pool, db }, tuning).landEvents({});
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const usage = process.resourceUsage();
    const cpuSeconds = (usage.userCPUTime + usage.systemCPUTime) / 1e6;
    const result: ChildResult = { seconds, maxRssMiB: usage.maxRSS / 1024, cpuSeconds, output };
    if (stage && output.perDate.length > 0) {
      const date = output.perDate.reduce((a, b) => (b.landed > a.landed ? b : a)).date;
      const stageStarted = process.hrtime.bigint();
      const staged = await withDateLock(pool, date, (client) => stageDate(client, lakeOf(config), date));
      const after = process.resourceUsage();
      result.stage = {
        date,
        rows: staged.rowsStaged,
        seconds: Number(process.hrtime.bigint() - stageStarted) / 1e9,
        maxRssMiB: after.maxRSS / 1024,
        cpuSeconds: (after.userCPUTime + after.systemCPUTime) / 1e6 - cpuSeconds,
      };
    }
    process.stdout.write(JSON.stringify(result));
  } finally {
    await db.destroy();
  }
}

async function adminQuery(config: Config, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: config.databaseUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv, {
    events: { type: 'string', default: '1000000' },
    keep: { type: 'boolean', default: false },
    topic: { type: 'string', default: '' },
    tuning: { type: 'string', default: '{}' },
    stage: { type: 'boolean', default: false },
    [CHILD_FLAG.slice(2)]: { type: 'boolean', default: false },
  });
  if (parsed === 'help') {
    console.log(
      'usage: node --import tsx scripts/measure-landing-rss.ts [--events N] [--keep] [--topic NAME] [--tuning JSON] [--stage]',
    );
    return EXIT.ok;
  }
  if (parsed.values[CHILD_FLAG.slice(2)]) {
    await child(String(parsed.values.tuning), parsed.values.stage === true);
    return EXIT.ok;
  }
  const events = wholeNumber('--events', String(parsed.values.events), 1);
  const keep = parsed.values.keep === true;
  const existingTopic = String(parsed.values.topic);

  const base = loadConfig();
  const suffix = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const database = `ns_measure_${suffix}`;
  const url = new URL(base.databaseUrl);
  url.pathname = `/${database}`;
  const config: Config = {
    ...base,
    databaseUrl: url.toString(),
    kafkaTopic: existingTopic === '' ? `measure_landing_${suffix}` : existingTopic,
    lakeDir: mkdtempSync(path.join(os.tmpdir(), 'nightshift-measure-')),
    lakeS3: null,
  };

  await adminQuery(base, `create database ${database}`);
  if (existingTopic === '') await createTopic(config, config.kafkaTopic, 4);
  try {
    const db = createDb(createPool(config.databaseUrl, 1));
    await migrateToLatest(db).finally(() => db.destroy());

    if (existingTopic === '') {
      const produced = await produceEvents(config, { events, days: 3, start: '2024-12-01', seed: 42, badRate: 0.01 });
      console.log(
        `produced ${produced.events} events (${produced.bad} bad) in ${produced.seconds.toFixed(1)} s: ${Math.round(produced.eventsPerSecond)} events/s`,
      );
    }

    const childArgs = [
      CHILD_FLAG,
      '--tuning',
      String(parsed.values.tuning),
      ...(parsed.values.stage ? ['--stage'] : []),
    ];
    const run = spawnSync(process.execPath, [...process.execArgv, __filename, ...childArgs], {
      env: {
        ...process.env,
        DATABASE_URL: config.databaseUrl,
        KAFKA_TOPIC: config.kafkaTopic,
        ...lakeEnvironment(config),
      },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 16 << 20,
    });
    if (run.status !== 0) throw new Error(`the landing child failed with exit code ${run.status}`);
    const r = JSON.parse(run.stdout) as ChildResult;
    console.log(
      `landed ${r.output.recordsRead} records (${r.output.recordsLanded} events, ${r.output.recordsDeadLettered} dead letters) into ${r.output.files} files, ${(r.output.bytes / 2 ** 20).toFixed(1)} MiB`,
    );
    console.log(
      `landing: ${r.seconds.toFixed(1)} s, ${Math.round(r.output.recordsRead / r.seconds)} events/s, peak RSS ${r.maxRssMiB.toFixed(0)} MiB, ${r.cpuSeconds.toFixed(1)} CPU s (${Math.round(r.output.recordsRead / r.cpuSeconds)} events per CPU second)`,
    );
    if (r.stage !== undefined) {
      console.log(
        `stage of ${r.stage.date}: ${r.stage.rows} rows in ${r.stage.seconds.toFixed(1)} s, ${r.stage.cpuSeconds.toFixed(1)} CPU s, peak RSS over landing and stage ${r.stage.maxRssMiB.toFixed(0)} MiB`,
      );
    }
  } finally {
    if (keep) {
      console.log(
        `kept: DATABASE_URL=${config.databaseUrl} KAFKA_TOPIC=${config.kafkaTopic} LAKE_DIR=${config.lakeDir}`,
      );
    } else {
      rmSync(config.lakeDir, { recursive: true, force: true });
      if (existingTopic === '') await deleteTopic(config, config.kafkaTopic).catch(() => undefined);
      await adminQuery(base, `drop database if exists ${database} with (force)`);
    }
  }
  return EXIT.ok;
}

runCommand('measure-landing-rss', main);
