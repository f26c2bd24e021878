import { spawnSync } from 'node:child_process';
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
  readLakeFile,
  readLakeFiles,
  toParquet,
  writeLakeFile,
} from '../lib/lake';
import { lakeOf } from '../lib/lake-store';
import { produceEvents } from '../lib/produce';
import type { Config } from '../lib/config';
import { createTestEnv, LAKE_KINDS, testLake, type TestEnv } from './support';

/** The lake's Parquet files: the columns and types loaders rely on, readable by an independent reader (DuckDB). */

const TOOLS = path.resolve(__dirname, '..', '.tools');
const PYTHON = path.join(TOOLS, 'venv', 'bin', 'python');
/** DuckDB with the httpfs extension for S3 (PyPI has duckdb-extension-httpfs only up to 1.5.5; scripts/stack/install.sh). */
const PYTHON_S3 = path.join(TOOLS, 'duckdb-s3', 'bin', 'python');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/**
 * Runs DuckDB over the lake: the schema of each area (hive partitioning on) and its row count. An S3 lake is read over
 * S3 itself (httpfs, the extension loaded by path, the endpoint and credentials in a secret), as the README shows.
 */
function duckdb(config: Config): Record<string, { columns: Record<string, string>; rows: number }> {
  const s3 = config.lakeS3;
  const connect =
    s3 === null
      ? ''
      : `
import duckdb_extension_httpfs, glob, os
ext = glob.glob(os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), 'extensions', '*', 'httpfs.duckdb_extension'))[0]
duckdb.sql(f"LOAD '{ext}'")
endpoint = os.environ['S3_ENDPOINT'].split('://', 1)
duckdb.execute("CREATE SECRET lake (TYPE s3, KEY_ID ?, SECRET ?, REGION ?, ENDPOINT ?, URL_STYLE 'path', USE_SSL ?)",
  [os.environ['S3_KEY_ID'], os.environ['S3_SECRET'], os.environ['S3_REGION'], endpoint[1], endpoint[0] == 'https'])
`;
  const code = `
import duckdb, json, sys
${connect}
out = {}
for area in ('events', 'dead_letter'):
    rel = f"read_parquet('{sys.argv[1]}/{area}/*/*.parquet', hive_partitioning = true)"
    cols = duckdb.sql(f"describe select * from {rel}").fetchall()
    rows = duckdb.sql(f"select count(*) from {rel}").fetchall()[0][0]
    out[area] = {'columns': {c[0]: c[1] for c in cols}, 'rows': rows}
print(json.dumps(out))
`;
  const run = spawnSync(s3 === null ? PYTHON : PYTHON_S3, ['-c', code, config.lakeDir], {
    encoding: 'utf8',
    env:
      s3 === null
        ? process.env
        : {
            ...process.env,
            S3_ENDPOINT: s3.endpoint ?? `https://s3.${s3.region}.amazonaws.com`,
            S3_KEY_ID: s3.accessKeyId ?? '',
            S3_SECRET: s3.secretAccessKey ?? '',
            S3_REGION: s3.region,
          },
  });
  if (run.status !== 0)
    throw new Error(`DuckDB failed (is duckdb installed in .tools/venv?): ${run.stderr || run.error}`);
  return JSON.parse(run.stdout);
}

describe.each(LAKE_KINDS)('lake files (%s lake)', (kind) => {
  it('open in DuckDB with the expected columns and types, as many rows as the manifest lists', async () => {
    const env: TestEnv = await createTestEnv({ partitions: 2, lake: kind });
    cleanups.push(() => env.cleanup());
    await produceEvents(env.config, { events: 3_000, days: 2, start: '2024-12-01', seed: 9, badRate: 0.05 });
    const out = await createLandActivities({ config: env.config, pool: env.pool, db: env.db }).landEvents({});

    const lake = duckdb(env.config);
    const manifest = await env.db
      .selectFrom('ops.lake_files')
      .select(['area', (eb) => eb.fn.sum<string>('row_count').as('rows')])
      .groupBy('area')
      .execute();
    const listed = Object.fromEntries(manifest.map((m) => [m.area, Number(m.rows)]));
    expect(lake.events.rows).toBe(listed.events);
    expect(lake.dead_letter.rows).toBe(listed.dead_letter);
    expect(lake.events.rows).toBe(out.recordsLanded);
    expect(lake.dead_letter.rows).toBe(out.recordsDeadLettered);
    expect(out.recordsDeadLettered).toBeGreaterThan(0);
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
    const made = testLake(kind);
    cleanups.push(() => made.remove());
    const lakeDir = lakeOf(made);
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
    await expect(readLakeFile(lakeDir, 'events/dt=2024-12-17/missing.parquet')).rejects.toThrow(
      /cannot read lake file/,
    );
    if (kind === 'file') {
      const dir = made.lakeDir;
      expect(partitionPath(dir, 'events', '2024-12-17')).toBe(path.join(dir, 'events', 'dt=2024-12-17'));
      await expect(readEventFile(path.join(dir, 'events/dt=2024-12-17/missing.parquet'))).rejects.toThrow(
        /cannot read lake file/,
      );
    }
  });
});
