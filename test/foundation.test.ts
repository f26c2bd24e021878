import http from 'node:http';
import { Connection } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config';
import { temporalConnectionOptions } from '../lib/temporal-client';
import { withAdmin } from '../lib/kafka';
import { TABLE_COLUMNS } from '../warehouse/database';
import { createDb, createPool } from '../warehouse/db';
import { migrateToLatest } from '../warehouse/migrate';
import { analystPassword, databaseUrlFor, dropDatabase, uniqueName } from './support';

const config = loadConfig();

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

async function pgErrorCode(
  client: pg.Client | pg.Pool | pg.PoolClient,
  text: string,
  values: unknown[] = [],
): Promise<string | undefined> {
  try {
    await client.query(text, values);
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

describe('the local stack', () => {
  it('PostgreSQL answers', async () => {
    const client = new pg.Client({ connectionString: config.databaseUrl });
    await client.connect();
    const { rows } = await client.query<{ version: number }>(
      `select current_setting('server_version_num')::int as version`,
    );
    await client.end();
    expect(rows[0].version).toBeGreaterThanOrEqual(150000);
  });

  it('Kafka answers and the events topic has several partitions', async () => {
    const metadata = await withAdmin(config, 'describing the cluster', (admin) =>
      admin.metadata({ topics: [config.kafkaTopic] }),
    );
    expect(metadata.brokers.size).toBeGreaterThanOrEqual(1);
    expect(metadata.topics.get(config.kafkaTopic)?.partitionsCount).toBeGreaterThan(1);
  });

  it('Temporal answers on gRPC and its Web UI on 8233', async () => {
    const connection = await Connection.connect(temporalConnectionOptions(config));
    try {
      const info = await connection.workflowService.getSystemInfo({});
      expect(info.serverVersion).toMatch(/\d+\.\d+/);
      const attributes = await connection.operatorService.listSearchAttributes({ namespace: config.temporalNamespace });
      expect(Object.keys(attributes.customAttributes)).toEqual(
        expect.arrayContaining(['PipelineDate', 'PipelineStep']),
      );
    } finally {
      await connection.close();
    }
    expect(await httpStatus(config.temporalUiUrl)).toBe(200);
  });
});

describe('migrations and the migrated schema', () => {
  const database = uniqueName('ns_test_fresh');
  const url = databaseUrlFor(config.databaseUrl, database);
  const admin = new pg.Client({ connectionString: config.databaseUrl });
  const pool = createPool(url, 2);
  const db = createDb(pool);
  let analyst: pg.Client;

  const snapshot = async () => {
    const { rows } = await pool.query(`
      select md5(string_agg(format('%s.%s.%s:%s:%s', table_schema, table_name, column_name, data_type, is_nullable), ',' order by 1)) as columns,
             (select count(*) from warehouse.dim_date) as dates,
             (select md5(string_agg(conname || pg_get_constraintdef(oid), ',' order by conname)) from pg_constraint
               where connamespace in (select oid from pg_namespace where nspname in ('warehouse', 'ops', 'marts'))) as constraints
      from information_schema.columns where table_schema in ('staging', 'warehouse', 'marts', 'ops')`);
    return rows[0];
  };

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`create database ${database}`);
  });
  afterAll(async () => {
    await analyst?.end();
    await db.destroy();
    await admin.end();
    await dropDatabase(config.databaseUrl, database);
  });

  it('apply to an empty database, and re-running them changes nothing', async () => {
    const applied = await migrateToLatest(db);
    expect(applied.length).toBeGreaterThanOrEqual(4);
    const first = await snapshot();
    expect(Number(first.dates)).toBeGreaterThan(365 * 50);
    expect(await migrateToLatest(db)).toEqual([]);
    expect(await snapshot()).toEqual(first);
    const analystUrl = new URL(url);
    analystUrl.username = 'analyst';
    analystUrl.password = analystPassword();
    analyst = new pg.Client({ connectionString: analystUrl.toString() });
    await analyst.connect();
  });

  it('lets analyst read warehouse, marts and ops', async () => {
    const { rows } = await analyst.query('select count(*)::int as n from warehouse.dim_date');
    expect(rows[0].n).toBeGreaterThan(0);
    const marts = await pool.query<{ name: string }>(
      `select format('%I.%I', schemaname, tablename) as name from pg_tables where schemaname in ('marts', 'ops')`,
    );
    for (const { name } of marts.rows) {
      await expect(analyst.query(`select * from ${name} limit 1`), name).resolves.toBeDefined();
    }
  });

  it('keeps analyst from writing anywhere or reading staging', async () => {
    await pool.query('create table staging.probe (id int)');
    expect(await pgErrorCode(analyst, 'select * from staging.probe')).toBe('42501');
    expect(
      await pgErrorCode(analyst, `insert into warehouse.dim_device (device_type, os, browser) values ('a', 'b', 'c')`),
    ).toBe('25006');
    await analyst.query('set default_transaction_read_only = off');
    expect(
      await pgErrorCode(analyst, `insert into warehouse.dim_device (device_type, os, browser) values ('a', 'b', 'c')`),
    ).toBe('42501');
    expect(await pgErrorCode(analyst, 'delete from ops.pipeline_runs')).toBe('42501');
    expect(await pgErrorCode(analyst, 'create table public.mine (id int)')).toBe('42501');
    expect(await pgErrorCode(analyst, 'create table warehouse.mine (id int)')).toBe('42501');
    expect(await pgErrorCode(analyst, 'create temporary table mine (id int)')).toBe('42501');
  });

  it('rejects two dim_user versions of one user with overlapping validity', async () => {
    const insert = `insert into warehouse.dim_user (user_id, plan, valid_from, valid_to, is_current) values ($1, $2, $3, $4, $5)`;
    const client = await pool.connect();
    try {
      await client.query('begin');
      await client.query(insert, ['u1', 'free', '2024-01-01T00:00:00Z', '2024-01-10T00:00:00Z', false]);
      expect(await pgErrorCode(client, insert, ['u1', 'pro', '2024-01-05T00:00:00Z', null, true])).toBe('23P01');
      await client.query('rollback');
      // an update that makes two ranges overlap is rejected too
      await client.query('begin');
      await client.query(insert, ['u1', 'free', '2024-01-01T00:00:00Z', '2024-01-10T00:00:00Z', false]);
      await client.query(insert, ['u1', 'pro', '2024-01-10T00:00:00Z', null, true]);
      expect(
        await pgErrorCode(
          client,
          `update warehouse.dim_user set valid_to = '2024-01-11T00:00:00Z' where user_id = 'u1' and not is_current`,
        ),
      ).toBe('23P01');
      await client.query('rollback');
    } finally {
      client.release();
    }
    await pool.query(insert, ['u2', 'free', '2024-01-01T00:00:00Z', '2024-01-10T00:00:00Z', false]);
    await pool.query(insert, ['u2', 'pro', '2024-01-10T00:00:00Z', null, true]);
    const { rows } = await pool.query(
      `select count(*)::int as n from warehouse.dim_user where user_id in ('u1', 'u2')`,
    );
    expect(rows[0].n).toBe(2);
  });

  it('lets at most one of two concurrent transactions writing overlapping versions of one user commit', async () => {
    const insert = `insert into warehouse.dim_user (user_id, plan, valid_from, valid_to, is_current) values ($1, $2, $3, $4, false)`;
    const first = await pool.connect();
    const second = await pool.connect();
    try {
      await first.query('begin');
      await second.query('begin');
      await first.query(insert, ['u3', 'free', '2024-01-01T00:00:00Z', '2024-01-10T00:00:00Z']);
      // the second insert's check waits for the first transaction, which has not committed yet (pg_locks is
      // cluster-wide, so the admin connection sees the wait)
      const { rows: pid } = await second.query<{ pid: number }>('select pg_backend_pid() as pid');
      const secondInsert = pgErrorCode(second, insert, ['u3', 'pro', '2024-01-05T00:00:00Z', '2024-01-20T00:00:00Z']);
      await expect
        .poll(
          async () =>
            (
              await admin.query<{ waiting: boolean }>(
                `select exists (select from pg_locks where pid = $1 and locktype = 'advisory' and not granted) as waiting`,
                [pid[0].pid],
              )
            ).rows[0].waiting,
          { timeout: 10_000, interval: 20 },
        )
        .toBe(true);
      await first.query('commit');
      expect(await secondInsert).toBe('23P01');
      await second.query('rollback');
    } finally {
      first.release();
      second.release();
    }
    const { rows } = await pool.query(`select plan, valid_from, valid_to from warehouse.dim_user where user_id = 'u3'`);
    expect(rows).toEqual([
      { plan: 'free', valid_from: new Date('2024-01-01T00:00:00Z'), valid_to: new Date('2024-01-10T00:00:00Z') },
    ]);
  });

  it('rejects a duplicate event_id in fact_events', async () => {
    const insert = `insert into warehouse.fact_events (event_id, event_time, date_key, user_key, device_key, event_type, lake_file_id, source_offset)
                    values ($1, '2024-01-01T10:00:00Z', 20240101, 1, 0, 'page_view', 1, $2)`;
    const id = '6f1c1f36-8c53-4e1e-9a5b-2f1d6f0c9a11';
    await pool.query('select warehouse.fact_partition_create(20240101)');
    await pool.query('select warehouse.fact_partition_attach(20240101)');
    await pool.query(insert, [id, 1]);
    expect(await pgErrorCode(pool, insert, [id, 2])).toBe('23505');
  });

  it('documents every table and column with a comment', async () => {
    const { rows } = await pool.query<{ name: string }>(`
      select format('%s.%s', c.relname, a.attname) as name
      from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      where n.nspname in ('warehouse', 'marts', 'ops') and c.relkind in ('r', 'p', 'v', 'm') and not c.relispartition
        and (obj_description(c.oid, 'pg_class') is null or col_description(c.oid, a.attnum) is null)`);
    expect(rows.map((r) => r.name)).toEqual([]);
  });

  it('matches the Kysely Database interface column for column', async () => {
    const { rows } = await pool.query<{ name: string; columns: string[] }>(`
      select table_schema || '.' || table_name as name, array_agg(column_name::text order by column_name) as columns
      from information_schema.columns
      where table_schema in ('warehouse', 'marts', 'ops') and table_name not like 'kysely_%'
        and not (select c.relispartition from pg_class c where c.oid = format('%I.%I', table_schema, table_name)::regclass)
      group by 1`);
    const actual = Object.fromEntries(rows.map((r) => [r.name, r.columns]));
    const declared = Object.fromEntries(Object.entries(TABLE_COLUMNS).map(([name, cols]) => [name, [...cols].sort()]));
    expect(actual).toEqual(declared);
  });
});
