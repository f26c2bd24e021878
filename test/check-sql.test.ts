import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKS, DQ_DEFAULTS, checkSqlFiles, checkValues, dateKeyOf, factsSource } from '../lib/checks';
import { CHECKS_SQL_DIR, runSqlFile } from '../warehouse/sql';
import { createTestEnv, type TestEnv } from './support';
import { cleanupEnv, seedWarehouse } from './seed-warehouse';

/** The checks' SQL lives in warehouse/checks/, one file per check, and each file runs as it is in psql. */

const ROOT = path.resolve(__dirname, '..');
const files = readdirSync(CHECKS_SQL_DIR)
  .filter((f) => f.endsWith('.sql'))
  .map((f) => f.replace(/\.sql$/, ''))
  .sort();
const text = (name: string) => readFileSync(path.join(CHECKS_SQL_DIR, `${name}.sql`), 'utf8');
/** The psql variables a file uses: :'value' and :"identifier". */
const variables = (sql: string) => [...new Set([...sql.matchAll(/(?<!:):['"](\w+)['"]/g)].map((m) => m[1]))].sort();
/** The `-v name=value` pairs of the file's "in psql:" header line. */
const documented = (sql: string) =>
  Object.fromEntries(
    [...(sql.match(/^-- in psql: (.*)$/m)?.[1] ?? '').matchAll(/-v (\w+)=(\S*)/g)].map((m) => [m[1], m[2]]),
  );

describe('the checks SQL files', () => {
  it('every check has its warehouse/checks/<name>.sql and every file there is used', () => {
    expect(CHECKS.map((c) => c.name).every((name) => files.includes(name))).toBe(true);
    expect([...checkSqlFiles()].sort()).toEqual(files);
  });

  it('each file starts with its grain and documents a psql command binding every variable it uses', () => {
    for (const name of files) {
      const sql = text(name);
      expect(sql.startsWith('-- grain: one row'), name).toBe(true);
      expect(sql, name).toContain(`-f warehouse/checks/${name}.sql`);
      expect(Object.keys(documented(sql)).sort(), name).toEqual(variables(sql));
      // lower-case SQL: no upper-case keyword outside comments and literals
      const code = sql.replace(/--.*$/gm, '').replace(/'[^']*'/g, "''");
      expect(code, name).not.toMatch(/\b(SELECT|FROM|WHERE|WITH|JOIN|GROUP BY|ORDER BY)\b/);
    }
  });

  describe('in psql', () => {
    let env: TestEnv;
    let date: string;
    const stagingTable = () => `events_${dateKeyOf(date)}`;

    beforeAll(async () => {
      env = await createTestEnv({ topic: false });
      const seeded = await seedWarehouse(env.pool, { start: '2024-12-01', days: 5, users: 40, churn: 0, seed: 3 });
      date = seeded.dates[seeded.dates.length - 1];
      // a staging table with one repeated event_id, for reconciliation_staging_duplicates.sql
      await env.pool.query(`create table staging.${stagingTable()} (like staging.events)`);
      await env.pool.query(
        `insert into staging.${stagingTable()} (event_id, schema_version, event_type, event_time, user_id, kafka_topic, kafka_partition, kafka_offset, lake_file_id)
         select id, 'v1', 'login', now(), 'u1', 'events', 0, n, 1
         from (values (1, gen_random_uuid()), (2, gen_random_uuid())) as v (n, id), generate_series(1, v.n)`,
      );
    });
    afterAll(async () => {
      await cleanupEnv(env);
    });

    it('each file runs as it is in psql with its documented variables and returns what the worker gets', async () => {
      const ctx = {
        date,
        dateKey: dateKeyOf(date),
        scheduled: false,
        now: new Date(`${date}T23:00:00Z`),
        config: DQ_DEFAULTS,
      };
      const client = await env.pool.connect();
      try {
        const facts = await factsSource(client, ctx.dateKey);
        // the seeded date has its partition, which the checks name
        expect(facts).toEqual({ table: `fact_events_${ctx.dateKey}`, partition: true });
        const values = { ...checkValues(ctx, facts) } as Record<string, unknown>;
        const identifiers = { staging_table: stagingTable(), facts_table: facts.table };
        for (const name of files) {
          const sql = text(name);
          const vars = Object.keys(documented(sql)).flatMap((v) => [
            '-v',
            `${v}=${v in identifiers ? identifiers[v as keyof typeof identifiers] : String(values[v] ?? '')}`,
          ]);
          const psql = spawnSync(
            'psql',
            [
              env.config.databaseUrl,
              '-X',
              '-q',
              '--csv',
              '-v',
              'ON_ERROR_STOP=1',
              ...vars,
              '-f',
              `warehouse/checks/${name}.sql`,
            ],
            { cwd: ROOT, encoding: 'utf8' },
          );
          expect(psql.status, `${name}: ${psql.stderr}`).toBe(0);
          const [header, ...lines] = psql.stdout.trim().split('\n');

          const [worker] = await runSqlFile(client, name, { values, identifiers }, CHECKS_SQL_DIR);
          expect(header.split(','), name).toEqual(worker.fields.map((f) => f.name));
          expect(lines.length, name).toBe(worker.rows.length);
          expect(lines.length, name).toBeGreaterThan(0);
          if (name === 'reconciliation_staging_duplicates') expect(lines).toEqual(['1']);
          if (name === 'volume') expect(lines.at(-1)).toMatch(new RegExp(`^${date},[1-9]\\d*,f$`));
        }
      } finally {
        client.release();
      }
    });
  });
});
