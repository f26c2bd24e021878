import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLandActivities } from '../activities/land';
import { parseEvent } from '../lib/events';
import {
  DeadLetterRows,
  EventRows,
  lakeFilePath,
  partitionPath,
  readEventFile,
  readLakeFiles,
  toParquet,
  writeLakeFile,
} from '../lib/lake';
import { produceEvents } from '../lib/produce';
import { createTestEnv, type TestEnv } from './support';

/** The lake's Parquet files: the columns and types loaders rely on, readable by an independent reader (DuckDB). */

const PYTHON = path.resolve(__dirname, '..', '.tools', 'venv', 'bin', 'python');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function tempLake(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-lake-test-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs DuckDB over the lake: the schema of each area (hive partitioning on) and its row count. */
function duckdb(lakeDir: string): Record<string, { columns: Record<string, string>; rows: number }> {
  const code = `
import duckdb, json, sys
out = {}
for area in ('events', 'dead_letter'):
    rel = f"read_parquet('{sys.argv[1]}/{area}/*/*.parquet', hive_partitioning = true)"
    cols = duckdb.sql(f"describe select * from {rel}").fetchall()
    rows = duckdb.sql(f"select count(*) from {rel}").fetchall()[0][0]
    out[area] = {'columns': {c[0]: c[1] for c in cols}, 'rows': rows}
print(json.dumps(out))
`;
  const run = spawnSync(PYTHON, ['-c', code, lakeDir], { encoding: 'utf8' });
  if (run.status !== 0)
    throw new Error(`DuckDB failed (is duckdb installed in .tools/venv?): ${run.stderr || run.error}`);
  return JSON.parse(run.stdout);
}

describe('lake files', () => {
  it('open in DuckDB with the expected columns and types', async () => {
    const env: TestEnv = await createTestEnv({ partitions: 2 });
    cleanups.push(() => env.cleanup());
    await produceEvents(env.config, { events: 3_000, days: 2, start: '2024-12-01', seed: 9, badRate: 0.05 });
    const out = await createLandActivities({ config: env.config, pool: env.pool, db: env.db }).landEvents({});

    const lake = duckdb(env.config.lakeDir);
    expect(lake.events.rows).toBe(out.recordsLanded);
    expect(lake.dead_letter.rows).toBe(out.recordsDeadLettered);
    expect(lake.events.columns).toEqual({
      event_id: 'VARCHAR',
      schema_version: 'VARCHAR',
      event_type: 'VARCHAR',
      event_time: 'TIMESTAMP WITH TIME ZONE',
      user_id: 'VARCHAR',
      session_id: 'VARCHAR',
      device_type: 'VARCHAR',
      device_os: 'VARCHAR',
      device_browser: 'VARCHAR',
      country: 'VARCHAR',
      page: 'VARCHAR',
      referrer: 'VARCHAR',
      user_email: 'VARCHAR',
      user_plan: 'VARCHAR',
      user_country: 'VARCHAR',
      order_id: 'VARCHAR',
      product_id: 'VARCHAR',
      amount: 'DOUBLE',
      currency: 'VARCHAR',
      kafka_topic: 'VARCHAR',
      kafka_partition: 'INTEGER',
      kafka_offset: 'BIGINT',
      kafka_timestamp: 'TIMESTAMP WITH TIME ZONE',
      dt: 'DATE',
    });
    expect(lake.dead_letter.columns).toEqual({
      reason: 'VARCHAR',
      kafka_topic: 'VARCHAR',
      kafka_partition: 'INTEGER',
      kafka_offset: 'BIGINT',
      kafka_timestamp: 'TIMESTAMP WITH TIME ZONE',
      raw: 'BLOB',
      event_id: 'VARCHAR',
      event_time: 'TIMESTAMP WITH TIME ZONE',
      dt: 'DATE',
    });
  });

  it('reads back what was written, non-ASCII text and nulls included, one file at a time', async () => {
    const lakeDir = tempLake();
    const now = new Date('2024-12-18T00:00:00Z');
    const rows = new EventRows('events', 3);
    const raw = (o: object) => Buffer.from(JSON.stringify(o));
    const base = {
      schema_version: 'v1',
      event_type: 'page_view',
      user_id: 'u-1',
      event_time: '2024-12-17T10:00:00.000123+01:00',
    };
    const a = parseEvent(
      raw({
        ...base,
        event_id: '00000000-0000-4000-8000-000000000001',
        context: { page: '/städte/zürich 🚲', country: 'CH' },
      }),
      now,
    );
    const b = parseEvent(raw({ ...base, event_id: '00000000-0000-4000-8000-000000000002' }), now);
    if (!a.ok || !b.ok) throw new Error('fixture events must be valid');
    rows.push(a.event, 10, 1_734_426_000_000);
    rows.push(b.event, 11, 1_734_426_000_001);
    const eventsPath = lakeFilePath('events', '2024-12-17', 3, rows.firstOffset, rows.lastOffset);
    expect(eventsPath).toBe('events/dt=2024-12-17/p3-10-11.parquet');
    await writeLakeFile(lakeDir, eventsPath, toParquet(rows.toTable()));

    const dead = new DeadLetterRows('events', 3);
    dead.push('not valid JSON: Unexpected end of JSON input', Buffer.from('{"a":'), 12, 1_734_426_000_002, null, null);
    const deadPath = lakeFilePath('dead_letter', '2024-12-17', 3, 12, 12);
    await writeLakeFile(lakeDir, deadPath, toParquet(dead.toTable()));

    const seen: number[] = [];
    for await (const { lakeFileId, table } of readLakeFiles(lakeDir, [
      { lakeFileId: 1, path: eventsPath },
      { lakeFileId: 2, path: deadPath },
    ])) {
      seen.push(lakeFileId);
      if (lakeFileId === 1) {
        expect(table.getChild('page')!.toArray()).toEqual(['/städte/zürich 🚲', null]);
        expect(table.getChild('country')!.toArray()).toEqual(['CH', null]);
        expect(table.getChild('event_time')!.type.toString()).toBe('Timestamp<MICROSECOND, UTC>');
        expect(Number(table.getChild('event_time')!.data[0].values[0])).toBe(
          Date.parse('2024-12-17T09:00:00Z') * 1000 + 123,
        );
        expect(Array.from(table.getChild('kafka_offset')!.toArray() as BigInt64Array, Number)).toEqual([10, 11]);
      } else {
        expect(table.getChild('reason')!.get(0)).toBe('not valid JSON: Unexpected end of JSON input');
        expect(Buffer.from(table.getChild('raw')!.get(0) as Uint8Array).toString()).toBe('{"a":');
        expect(table.getChild('event_id')!.get(0)).toBeNull();
      }
    }
    expect(seen).toEqual([1, 2]);
    expect(partitionPath(lakeDir, 'events', '2024-12-17')).toBe(path.join(lakeDir, 'events', 'dt=2024-12-17'));
    await expect(readEventFile(path.join(lakeDir, 'events/dt=2024-12-17/missing.parquet'))).rejects.toThrow(
      /cannot read lake file/,
    );
  });
});
