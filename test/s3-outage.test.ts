import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLandActivities } from '../activities/land';
import { createStageActivities, stageDate } from '../activities/stage';
import { topicOffsets } from '../lib/kafka';
import { readLakeFile } from '../lib/lake';
import { type LakeStore, lakeOf } from '../lib/lake-store';
import { produceEvents } from '../lib/produce';
import { createTestEnv, type TestEnv } from './support';

/**
 * The S3 server going away mid-landing and mid-stage, on a private versitygw (its own port and folder, killed with
 * SIGKILL and started again over the same folder): the failed step leaves no trace the retry cannot clean up, and the
 * retried run ends with every record exactly once and no object outside the manifest.
 */

const VERSITYGW = path.resolve(__dirname, '..', '.tools', 'versitygw', 'bin', 'versitygw');
const BUCKET = 'nightshift-lake';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A private S3 server that a test can kill and start again over the same folder. */
class PrivateS3 {
  private proc: ChildProcess | null = null;
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-s3-'));
  constructor(readonly port: number) {
    mkdirSync(path.join(this.dir, BUCKET));
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (!existsSync(VERSITYGW)) throw new Error(`${VERSITYGW} is missing: run make install`);
    const proc = spawn(
      VERSITYGW,
      ['--port', `127.0.0.1:${this.port}`, '--health', '/health', '--quiet', 'posix', this.dir],
      {
        env: { ...process.env, ROOT_ACCESS_KEY: 'nightshift', ROOT_SECRET_KEY: 'nightshift-local-secret' },
        stdio: 'ignore',
      },
    );
    this.proc = proc;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`versitygw exited with ${proc.exitCode}`);
      const ok = await fetch(`${this.endpoint}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      if (Date.now() > deadline) throw new Error('versitygw did not answer /health within 30 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** SIGKILL: no graceful end to any request in flight. */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (proc === null || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  }

  async remove(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function setup(): Promise<{ s3: PrivateS3; e: TestEnv; store: LakeStore }> {
  const s3 = new PrivateS3(await freePort());
  cleanups.push(() => s3.remove());
  await s3.start();
  const e = await createTestEnv({ partitions: 4, lake: 's3', s3Endpoint: s3.endpoint });
  cleanups.push(() => e.cleanup());
  return { s3, e, store: lakeOf(e.config) };
}

async function manifest(e: TestEnv) {
  return e.db.selectFrom('ops.lake_files').selectAll().orderBy('lake_file_id').execute();
}

/** Every (partition, offset) of the committed lake files, read back from S3. */
async function lakeOffsets(e: TestEnv, store: LakeStore): Promise<Map<number, number[]>> {
  const byPartition = new Map<number, number[]>();
  for (const f of await manifest(e)) {
    const table = await readLakeFile(store, f.path);
    expect(table.numRows).toBe(f.row_count);
    const partitions = table.getChild('kafka_partition')!.toArray() as Int32Array;
    const offsets = table.getChild('kafka_offset')!.toArray() as BigInt64Array;
    for (let i = 0; i < table.numRows; i++) {
      const list = byPartition.get(partitions[i]) ?? [];
      list.push(Number(offsets[i]));
      byPartition.set(partitions[i], list);
    }
  }
  return byPartition;
}

describe('the S3 server stopped and started again', () => {
  it('mid-landing: the retried landing ends with every record exactly once and no stray object', async () => {
    const { s3, e, store } = await setup();
    await produceEvents(e.config, { events: 30_000, days: 2, start: '2024-12-01', seed: 21, badRate: 0.02 });
    let commits = 0;
    const tuning = { commitEvery: 8_000, maxRowsPerFile: 3_000 };
    // the server dies once the second chunk's files are written: that chunk commits, the next chunk's writes fail
    const failed = createLandActivities(
      { config: e.config, pool: e.pool, db: e.db },
      {
        ...tuning,
        beforeCommit: async () => {
          if (++commits === 2) await s3.kill();
        },
      },
    ).landEvents({});
    await expect(failed).rejects.toThrow();
    const committedBefore = await manifest(e);
    expect(committedBefore.length).toBeGreaterThan(0);
    const landedBefore = committedBefore.reduce((n, f) => n + f.row_count, 0);
    expect(landedBefore).toBeLessThan(30_000);

    await s3.start();
    const retry = await createLandActivities({ config: e.config, pool: e.pool, db: e.db }, tuning).landEvents({});
    expect(retry.recordsRead).toBe(30_000 - landedBefore);

    const high = new Map((await topicOffsets(e.config, e.config.kafkaTopic)).map((o) => [o.partition, o.high]));
    expect([...high.values()].reduce((a, b) => a + b, 0)).toBe(30_000);
    const offsets = await lakeOffsets(e, store);
    for (const [partition, h] of high) {
      const got = (offsets.get(partition) ?? []).sort((a, b) => a - b);
      expect(got.length, `partition ${partition}`).toBe(h);
      got.forEach((o, i) => expect(o).toBe(i));
    }
    const listed = [...(await store.list('events/')), ...(await store.list('dead_letter/'))].sort();
    expect(listed).toEqual((await manifest(e)).map((f) => f.path).sort());
  });

  it('mid-stage: the stage fails without recording anything, and once the server is back stages every manifest row', async () => {
    const { s3, e, store } = await setup();
    const produced = await produceEvents(e.config, {
      events: 6_000,
      days: 1,
      start: '2024-12-01',
      seed: 4,
      badRate: 0,
    });
    await createLandActivities({ config: e.config, pool: e.pool, db: e.db }, { maxRowsPerFile: 500 }).landEvents({});
    const files = (await manifest(e)).filter((f) => f.area === 'events' && f.dt === '2024-12-01');
    expect(files.length).toBeGreaterThan(4);

    // the server dies after the third object was read, while the COPY streams
    let reads = 0;
    const dying: LakeStore = {
      kind: store.kind,
      describe: (p) => store.describe(p),
      put: (p, b) => store.put(p, b),
      list: (p) => store.list(p),
      remove: (p) => store.remove(p),
      async get(p) {
        if (++reads === 3) await s3.kill();
        return store.get(p);
      },
    };
    const client = await e.pool.connect();
    try {
      await client.query('begin');
      await expect(stageDate(client, dying, '2024-12-01')).rejects.toThrow();
      await client.query('rollback');
    } finally {
      client.release();
    }
    expect(reads).toBeGreaterThanOrEqual(3);
    expect(await e.db.selectFrom('ops.date_stages').selectAll().execute()).toEqual([]);

    await s3.start();
    const staged = await createStageActivities({ config: e.config, pool: e.pool, db: e.db }).stageEvents({
      date: '2024-12-01',
      run: { workflowId: 'test-s3-outage', runId: 'run-1' },
    });
    const listed = files.reduce((n, f) => n + f.row_count, 0);
    expect(listed).toBe(produced.byDate['2024-12-01']);
    expect(staged.rowsRead).toBe(listed);
    expect(staged.files).toBe(files.length);
  });
});
