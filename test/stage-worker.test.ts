import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Table } from 'apache-arrow';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyStatement, createStageActivities } from '../activities/stage';
import { StagingChunks, warmStageThread } from '../activities/staging/threads';
import type { LakeEvent } from '../lib/events';
import { EventRows, lakeFilePath, toParquet, writeLakeFile } from '../lib/lake';
import { createTestEnv, type TestEnv } from './support';

/**
 * The stage run decodes the lake files and encodes the COPY in a worker thread (activities/staging/threads.ts):
 * what the worker meets part-way through the files must end the run as it would in one thread, and leave no
 * thread behind.
 */

let env: TestEnv;
let landingId: string;
beforeAll(async () => {
  env = await createTestEnv({ topic: false });
  const { rows } = await env.pool.query<{ landing_id: string }>(
    `insert into ops.landings (topic, started_at, records_read, records_landed, records_dead_lettered)
     values ('stage-worker', now(), 0, 0, 0) returning landing_id`,
  );
  landingId = rows[0].landing_id;
});
afterAll(async () => {
  await env?.cleanup();
});

function lakeEvent(date: string, eventId: string, i: number): LakeEvent {
  return {
    event_id: eventId,
    schema_version: 'v1',
    event_type: 'page_view',
    event_time_us: Date.parse(`${date}T00:00:00Z`) * 1000 + i * 1000,
    user_id: `u-${i % 500}`,
    session_id: `s-${i % 2000}`,
    device_type: 'desktop',
    device_os: 'Linux',
    device_browser: 'Firefox',
    country: 'DE',
    page: `/page/${i % 97}`,
    referrer: null,
    user_email: null,
    user_plan: null,
    user_country: null,
    order_id: null,
    product_id: null,
    amount: null,
    currency: null,
  };
}

/** Writes one lake file of `ids` (as event_ids) for `date` on `partition`, with `shape` applied, and lists it in the manifest. */
async function addLakeFile(date: string, partition: number, ids: string[], shape = (t: Table) => t): Promise<void> {
  const rows = new EventRows('stage-worker', partition);
  ids.forEach((id, i) => rows.push(lakeEvent(date, id, i), i, Date.now()));
  const relPath = lakeFilePath('events', date, partition, 0, ids.length - 1);
  const parquet = toParquet(shape(rows.toTable()));
  await writeLakeFile(env.config.lakeDir, relPath, parquet);
  await env.pool.query(
    `insert into ops.lake_files (landing_id, path, area, dt, topic, partition, first_offset, last_offset, row_count, bytes)
     values ($1, $2, 'events', $3::date, 'stage-worker', $4, 0, $5, $6, $7)`,
    [landingId, relPath, date, partition, ids.length - 1, ids.length, parquet.length],
  );
}

const uuids = (n: number) => Array.from({ length: n }, () => randomUUID());
/** Threads of this process: a stage run's worker thread is one while it lives. */
const threads = () => readdirSync('/proc/self/task').length;
/**
 * The staging table's pages and how many are all-visible, as the stage run's ANALYZE counted them: a COPY FREEZE
 * writes every page all-visible, a plain COPY none (the hint bits and the map are left to the first reader).
 */
async function visibility(table: string): Promise<{ pages: number; allVisible: number }> {
  const { rows } = await env.pool.query<{ pages: number; allVisible: number }>(
    'select relpages as "pages", relallvisible as "allVisible" from pg_class where oid = $1::regclass',
    [`staging.${table}`],
  );
  return rows[0];
}
const stageEvents = (date: string) =>
  createStageActivities({ config: env.config, pool: env.pool, db: env.db }).stageEvents({
    date,
    run: { workflowId: 'test-stage-worker', runId: randomUUID() },
  });

describe('the stage run in a worker thread', () => {
  it('an event_id the binary format cannot carry, met after other files were streamed, stages every row in the text format instead, frozen', async () => {
    const date = '2024-10-07';
    // the first file fills several COPY chunks before the worker meets the last one
    const first = uuids(60_000);
    const upper = uuids(3).map((id) => id.toUpperCase());
    await addLakeFile(date, 0, first);
    await addLakeFile(date, 1, upper);
    const staged = await stageEvents(date);
    expect(staged).toMatchObject({ files: 2, rowsRead: 60_003, rowsStaged: 60_003, rowsSetAside: 0 });
    const { rows } = await env.pool.query<{ n: number; upper: number }>(
      `select count(*)::int as n, count(*) filter (where event_id = any ($1::uuid[]))::int as upper
       from staging.events_20241007`,
      [upper],
    );
    expect(rows[0]).toEqual({ n: 60_003, upper: 3 });
    // the text COPY after the binary one was rolled back still writes frozen rows
    const pages = await visibility('events_20241007');
    expect(pages.pages).toBeGreaterThan(0);
    expect(pages.allVisible).toBe(pages.pages);
  });

  it('a COPY aborted part-way (the activity cancelled) ends its worker thread and leaves the connection usable', async () => {
    const date = '2024-10-10';
    await addLakeFile(date, 0, uuids(60_000));
    await addLakeFile(date, 1, uuids(60_000));
    const { rows: files } = await env.pool.query<{ lake_file_id: string; path: string }>(
      `select lake_file_id, path from ops.lake_files where dt = $1::date order by lake_file_id`,
      [date],
    );
    const refs = files.map((f) => ({ lakeFileId: Number(f.lake_file_id), path: f.path }));
    const client = await env.pool.connect();
    try {
      await client.query('begin');
      await client.query('create table staging.aborted (like staging.events including all)');
      const copy = async (signal?: AbortSignal, onFile: () => void = () => undefined) => {
        const chunks = new StagingChunks(env.config.lakeDir, refs, 'binary', onFile, 120_000);
        try {
          await pipeline(chunks, client.query(copyFrom(copyStatement(client, 'aborted', 'binary'))), { signal });
        } finally {
          await chunks.close();
        }
      };
      // a run that ends well keeps its thread
      await client.query('savepoint copied');
      await copy();
      await client.query('rollback to savepoint copied');
      const before = threads();
      const cancel = new AbortController();
      // PostgreSQL is told (CopyFail) and answers with the error the COPY ends with
      await expect(copy(cancel.signal, () => cancel.abort())).rejects.toThrow('The operation was aborted');
      // the aborted run took the kept thread and ended it
      expect(threads()).toBe(before - 1);
      await client.query('rollback to savepoint copied');
      const { rows } = await client.query<{ n: number }>('select count(*)::int as n from staging.aborted');
      expect(rows[0].n).toBe(0);
    } finally {
      await client.query('rollback');
      client.release();
    }
  });

  it('a warmed stage thread (what the worker prepares when it starts) is the one the next stage run takes, and it stages the date', async () => {
    // no thread kept from an earlier test: this run ends its own
    await addLakeFile('2024-10-11', 0, uuids(10));
    await addLakeFile('2024-10-11', 1, uuids(10), (t) =>
      t.select(t.schema.fields.map((f) => f.name).filter((n) => n !== 'user_id')),
    );
    await expect(stageEvents('2024-10-11')).rejects.toMatchObject({ type: 'LakeSchemaMismatch' });
    const before = threads();
    await warmStageThread();
    expect(threads()).toBe(before + 1);
    // a thread is kept already: no second one
    await warmStageThread();
    expect(threads()).toBe(before + 1);
    const date = '2024-10-12';
    const ids = uuids(30_000);
    await addLakeFile(date, 0, ids);
    const staged = await stageEvents(date);
    expect(staged).toMatchObject({ files: 1, rowsRead: 30_000, rowsStaged: 30_000, duplicates: 0 });
    // the run took the warmed thread and kept it again: still one
    expect(threads()).toBe(before + 1);
    const { rows } = await env.pool.query<{ n: number; matched: number }>(
      `select count(*)::int as n, count(*) filter (where event_id = any ($1::uuid[]))::int as matched
       from staging.events_20241012`,
      [ids],
    );
    expect(rows[0]).toEqual({ n: 30_000, matched: 30_000 });
    const pages = await visibility('events_20241012');
    expect(pages.pages).toBeGreaterThan(0);
    expect(pages.allVisible).toBe(pages.pages);
  });

  it('a lake file without a required column, met after other files were streamed, fails the run without retry: no staging rows, its thread ended', async () => {
    // a run that ends well keeps its worker thread for the next run
    await addLakeFile('2024-10-09', 0, uuids(10));
    await stageEvents('2024-10-09');
    const before = threads();
    const date = '2024-10-08';
    await addLakeFile(date, 0, uuids(60_000));
    await addLakeFile(date, 1, uuids(10), (t) =>
      t.select(t.schema.fields.map((f) => f.name).filter((n) => n !== 'user_id')),
    );
    await expect(stageEvents(date)).rejects.toMatchObject({
      name: 'ApplicationFailure',
      type: 'LakeSchemaMismatch',
      nonRetryable: true,
      message: expect.stringContaining('lacks column(s) user_id'),
    });
    // the failed run took the kept thread and ended it
    expect(threads()).toBe(before - 1);
    const { rows } = await env.pool.query<{ staged: string | null; runs: number }>(
      `select to_regclass('staging.events_20241008')::text as staged,
              (select count(*)::int from ops.date_stages where dt = $1::date) as runs`,
      [date],
    );
    expect(rows[0]).toEqual({ staged: null, runs: 0 });
    // the next run starts a thread of its own
    await expect(stageEvents('2024-10-09')).resolves.toMatchObject({ rowsStaged: 10 });
  });
});
