import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyStatement } from '../activities/stage';
import { StagingChunks } from '../activities/staging/threads';
import { createLandActivities } from '../activities/land';
import { CopyBinaryBuffer, writeNumeric } from '../lib/copy-binary';
import { parseEvent } from '../lib/events';
import { EventRows, toParquet, writeLakeFile } from '../lib/lake';
import { type LakeLocation, lakeOf } from '../lib/lake-store';
import { produceEvents } from '../lib/produce';
import { createTestEnv, type TestEnv } from './support';

/**
 * The stage run's binary COPY (lib/copy-binary.ts) against the text COPY it replaced: PostgreSQL must end up with
 * the same rows from the same lake files, and each amount with the value PostgreSQL's own text input gives.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv({ partitions: 2 });
});
afterAll(async () => {
  await env?.cleanup();
});

async function copyInto(
  client: pg.ClientBase,
  table: string,
  format: 'text' | 'binary',
  files: { lakeFileId: number; path: string }[],
  lake: LakeLocation,
) {
  const copy = client.query(copyFrom(copyStatement(client, table, format)));
  const chunks = new StagingChunks(lake, files, format, () => undefined, 0);
  try {
    await pipeline(chunks, copy);
  } finally {
    await chunks.close();
  }
  return Number(copy.rowCount);
}

describe('binary COPY of the staging rows', () => {
  it('stages generated lake files row for row as the text format does', async () => {
    await produceEvents(env.config, { events: 3_000, days: 2, start: '2024-11-04', seed: 9, badRate: 0 });
    await createLandActivities({ config: env.config, pool: env.pool, db: env.db }).landEvents({});
    const { rows: files } = await env.pool.query<{ lake_file_id: string; path: string }>(
      `select lake_file_id, path from ops.lake_files where area = 'events' order by lake_file_id`,
    );
    const refs = files.map((f) => ({ lakeFileId: Number(f.lake_file_id), path: f.path }));
    expect(refs.length).toBeGreaterThan(1);
    const client = await env.pool.connect();
    try {
      await client.query('create table staging.copy_text (like staging.events including all)');
      await client.query('create table staging.copy_binary (like staging.events including all)');
      const lake = lakeOf(env.config);
      const text = await copyInto(client, 'copy_text', 'text', refs, lake);
      const binary = await copyInto(client, 'copy_binary', 'binary', refs, lake);
      expect(binary).toBe(text);
      expect(text).toBe(3_000);
      const hash = (table: string) =>
        client.query<{ h: string; purchases: number }>(
          `select md5(string_agg(t::text, '|' order by t.event_id, t.kafka_partition, t.kafka_offset)) as h,
                  count(amount)::int as purchases
           from staging.${table} as t`,
        );
      const [a, b] = [(await hash('copy_text')).rows[0], (await hash('copy_binary')).rows[0]];
      expect(a.purchases).toBeGreaterThan(0);
      expect(b).toEqual(a);
    } finally {
      client.release();
    }
  });

  it('stages long, non-ASCII and missing values across many rows as the text format does', async () => {
    // The encoder sizes and writes rows in blocks, column by column: rows of every shape, more than a block's
    // worth, with NULLs in runs and alone, values longer than the short-copy limit, and multi-byte UTF-8.
    const rows = new EventRows('events', 0);
    const now = new Date('2024-11-10T00:00:00Z');
    const n = 1_500;
    for (let i = 0; i < n; i++) {
      const purchase = i % 7 === 0;
      const event: Record<string, unknown> = {
        schema_version: 'v1',
        event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
        event_type: purchase ? 'purchase' : 'page_view',
        event_time: `2024-11-04T10:${String(i % 60).padStart(2, '0')}:00.${String(i % 1000).padStart(3, '0')}Z`,
        user_id: `u-${i % 97}`,
      };
      if (i % 3 !== 0) event.session_id = `s-${i}`;
      if (i % 5 !== 0 && (i < 600 || i > 900))
        event.device = { type: 'mobile', os: i % 2 ? 'iOS' : null, browser: 'Safari' };
      if (i % 4 !== 0) {
        event.context = {
          country: 'DE',
          page: i % 11 === 0 ? `/${'städte/zürich-🚲-'.repeat(8)}${i}` : `/p/${i}`,
          referrer: i % 13 === 0 ? 'x'.repeat(65 + (i % 200)) : null,
        };
      }
      if (purchase) event.purchase = { order_id: `o-${i}`, product_id: 'sku-ä', amount: i / 7 + 0.05, currency: 'EUR' };
      const parsed = parseEvent(Buffer.from(JSON.stringify(event)), now);
      if (!parsed.ok) throw new Error(`fixture event ${i} must be valid: ${parsed.reason}`);
      rows.push(parsed.event, i, 1_730_714_400_000 + i);
    }
    const lake = lakeOf(env.config);
    const path = 'events/dt=2024-11-04/p0-0-1499.parquet';
    await writeLakeFile(lake, path, toParquet(rows.toTable()));
    const refs = [{ lakeFileId: 41, path }];
    const client = await env.pool.connect();
    try {
      await client.query('create table staging.shapes_text (like staging.events including all)');
      await client.query('create table staging.shapes_binary (like staging.events including all)');
      expect(await copyInto(client, 'shapes_text', 'text', refs, lake)).toBe(n);
      expect(await copyInto(client, 'shapes_binary', 'binary', refs, lake)).toBe(n);
      const summary = (table: string) =>
        client.query(
          `select md5(string_agg(t::text, '|' order by t.event_id)) as h, count(session_id)::int as sessions,
                  count(device_os)::int as oses, count(referrer)::int as referrers, max(length(page))::int as longest,
                  count(amount)::int as amounts
           from staging.${table} as t`,
        );
      const [text, binary] = [(await summary('shapes_text')).rows[0], (await summary('shapes_binary')).rows[0]];
      expect(binary).toEqual(text);
      expect(text).toMatchObject({ sessions: 1_000, amounts: 215 });
      expect(text.longest).toBeGreaterThan(64);
      expect(text.referrers).toBeGreaterThan(0);
    } finally {
      client.release();
    }
  });

  it('writes each amount as the numeric PostgreSQL reads from its text, rounded by numeric(14,2) the same way', async () => {
    const amounts = fc.sample(
      fc.oneof(
        fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }),
        fc.double({ min: 0, max: 1e-3, noNaN: true }),
        fc.integer({ min: 0, max: 99_999_999 }).map((cents) => cents / 100),
        fc.integer({ min: 0, max: 99_999_999 }).map((m) => m / 1000 + 0.0005),
        fc.constantFrom(0, -0, 1e-7, 5e-324, 123.455, 0.005, 999999999999.99, 1e21, 1.5e-7, 42),
      ),
      { seed: 20261127, numRuns: 2_000 },
    );
    const out = new CopyBinaryBuffer();
    out.header();
    for (const v of amounts) {
      out.int16(1);
      writeNumeric(out, v);
    }
    out.trailer();
    const client = await env.pool.connect();
    try {
      await client.query('create temp table binary_amounts (n bigserial, exact numeric)');
      const copy = client.query(copyFrom('copy binary_amounts (exact) from stdin with (format binary)'));
      await pipeline(Readable.from(out.take(true)), copy);
      expect(Number(copy.rowCount)).toBe(amounts.length);
      const { rows } = await client.query<{ differs: number }>(
        `with expected as (
           select ordinality as n, t.v::numeric as exact from unnest($1::text[]) with ordinality as t(v)
         ), got as (
           select n, exact from binary_amounts
         )
         select count(*)::int as differs
         from expected join got using (n)
         where expected.exact <> got.exact or expected.exact::text <> got.exact::text
            or expected.exact::numeric(30, 2) <> got.exact::numeric(30, 2)`,
        [amounts.map(String)],
      );
      expect(rows[0].differs).toBe(0);
    } finally {
      client.release();
    }
  });
});
