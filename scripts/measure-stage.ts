import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { createStageActivities as CreateStageActivities } from '../activities/stage';
import { EXIT, calendarDate, parseCommandLine, runCommand, wholeNumber } from '../lib/cli';
import { type Config, loadConfig } from '../lib/config';
import { createDb, createPool } from '../warehouse/db';
import { migrateToLatest } from '../warehouse/migrate';
import { writeLake } from './bench/lake';
import { median, rss } from './bench/measure';

/**
 * Times the stage step alone: N generated events written once into a temporary lake, then the date staged whole
 * `--runs` times by each build given with `--code` (a folder holding activities/stage, e.g. this checkout's dist/
 * and an older build's), the builds taking turns, so their times are compared back to back on the same data.
 * Prints each run's seconds, the CPU seconds of this process (all its threads) and of the database's PostgreSQL
 * backends during it (read from /proc: run it on the database's machine), the peak RSS of this process, and the
 * median per build. On a shared machine the CPU seconds say more than the seconds. Runs in a
 * database of its own, dropped afterwards; --keep keeps it and the lake, and --database with --lake-dir stages a
 * kept one again (a fresh process per build and run: each stage run then starts cold, as the first of a worker).
 */

const USAGE =
  'usage: node --import tsx scripts/measure-stage.ts [--events 1000000] [--runs 3] [--code dist]... [--date 2024-12-17] [--seed 7] [--partitions 4] [--keep] [--database NAME --lake-dir DIR]';

/** CPU seconds so far of each PostgreSQL backend connected to the pool's database, by pid (Linux /proc). */
async function backendCpu(pool: pg.Pool): Promise<Map<number, number>> {
  const { rows } = await pool.query<{ pid: number }>(
    'select pid from pg_stat_activity where datname = current_database()',
  );
  const cpu = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      // fields 14 and 15 (utime, stime) after the parenthesised command name, in clock ticks of 1/100 s
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      cpu.set(pid, (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // not on this machine, or gone
    }
  }
  return cpu;
}

function cpuSince(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, s] of after) sum += s - (before.get(pid) ?? 0);
  return sum;
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv, {
    events: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    code: { type: 'string', multiple: true, default: ['.'] },
    date: { type: 'string', default: '2024-12-17' },
    seed: { type: 'string', default: '7' },
    partitions: { type: 'string', default: '4' },
    keep: { type: 'boolean', default: false },
    database: { type: 'string' },
    'lake-dir': { type: 'string' },
  });
  if (parsed === 'help') {
    console.log(USAGE);
    return EXIT.ok;
  }
  const v = parsed.values;
  const o = {
    events: wholeNumber('--events', v.events, 1),
    date: calendarDate('--date', v.date),
    seed: wholeNumber('--seed', v.seed, 0),
    partitions: wholeNumber('--partitions', v.partitions, 1),
  };
  const runs = wholeNumber('--runs', v.runs, 1);
  const builds = (v.code as string[]).map((dir) => {
    const file = path.resolve(dir, 'activities/stage');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const stage = require(file) as { createStageActivities: typeof CreateStageActivities };
    return {
      dir,
      stage,
      seconds: [] as number[],
      cpu: [] as number[],
      pgCpu: [] as number[],
      peakMiB: [] as number[],
    };
  });

  const base = loadConfig();
  const reuse = v.database !== undefined && v['lake-dir'] !== undefined;
  const database = v.database ?? `nightshift_measure_${Date.now().toString(36)}_${randomBytes(2).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base.databaseUrl });
  await admin.connect();
  if (!reuse) await admin.query(`create database ${database}`);
  const url = new URL(base.databaseUrl);
  url.pathname = `/${database}`;
  const lakeDir = reuse ? v['lake-dir']! : mkdtempSync(path.join(os.tmpdir(), 'nightshift-measure-'));
  const config: Config = { ...base, databaseUrl: url.toString(), lakeDir, lakeS3: null };
  const pool = createPool(config.databaseUrl, 4);
  const db = createDb(pool);
  const keep = v.keep || reuse;
  try {
    if (!reuse) {
      await migrateToLatest(db);
      const lake = await writeLake(config, pool, o, [o.date]);
      console.log(`lake: ${lake.rows[0]} events in ${lake.files} files, ${(lake.bytes / 1e6).toFixed(1)} MB`);
      if (keep) console.log(`kept: --database ${database} --lake-dir ${lakeDir}`);
    }
    for (let run = 0; run < runs; run++) {
      for (const b of builds) {
        const stage = b.stage.createStageActivities({ config, pool, db });
        const pgBefore = await backendCpu(pool);
        rss.reset();
        const cpuBefore = process.cpuUsage();
        const started = performance.now();
        const result = await stage.stageEvents({
          date: o.date,
          run: { workflowId: 'measure-stage', runId: `${database}-${builds.indexOf(b)}-${run}` },
        });
        const seconds = (performance.now() - started) / 1000;
        const cpu = process.cpuUsage(cpuBefore);
        b.seconds.push(seconds);
        b.cpu.push((cpu.user + cpu.system) / 1e6);
        b.pgCpu.push(cpuSince(pgBefore, await backendCpu(pool)));
        b.peakMiB.push(rss.peakMiB());
        console.log(
          `${b.dir}: run ${run + 1}: ${result.rowsStaged} rows in ${seconds.toFixed(2)} s, CPU ${b.cpu.at(-1)!.toFixed(2)} s here + ${b.pgCpu.at(-1)!.toFixed(2)} s PostgreSQL, peak RSS ${b.peakMiB.at(-1)!.toFixed(0)} MiB`,
        );
      }
    }
    const first = median(builds[0].seconds);
    for (const b of builds) {
      console.log(
        `${b.dir}: median ${median(b.seconds).toFixed(2)} s (${(median(b.seconds) / first).toFixed(2)} x ${builds[0].dir}), CPU ${median(b.cpu).toFixed(2)} s here + ${median(b.pgCpu).toFixed(2)} s PostgreSQL, peak RSS ${Math.max(...b.peakMiB).toFixed(0)} MiB`,
      );
    }
  } finally {
    rss.stop();
    await db.destroy();
    if (!keep) {
      rmSync(lakeDir, { recursive: true, force: true });
      await admin.query(`drop database if exists ${database}`);
    }
    await admin.end();
  }
  return EXIT.ok;
}

runCommand('measure-stage', main);
