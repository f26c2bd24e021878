import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config';
import { createDb, createPool } from '../warehouse/db';
import { configureAnalystRole, migrateToLatest } from '../warehouse/migrate';
import { type PrivatePostgres, startPrivatePostgres } from './private-postgres';

/**
 * PostgreSQL over TLS through `sslmode` in DATABASE_URL, and the analyst role's password from ANALYST_PASSWORD,
 * against private clusters (a self-signed CA made by openssl): the shared cluster of the stack is never touched.
 */

const root = path.resolve(__dirname, '..');

function withParams(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

/** Whether this session is encrypted, as the server sees it. */
async function sessionSsl(pool: pg.Pool): Promise<boolean> {
  const { rows } = await pool.query<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
  return rows[0].ssl;
}

async function connectError(url: string): Promise<Error> {
  const pool = createPool(url, 1);
  try {
    await pool.query('select 1');
  } catch (err) {
    return err as Error;
  } finally {
    await pool.end();
  }
  throw new Error(`expected ${url} to be refused`);
}

describe('PostgreSQL over TLS (a server that requires it)', () => {
  let server: PrivatePostgres;
  beforeAll(async () => {
    server = await startPrivatePostgres({ ssl: 'required', passwordAuth: true });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it.each([
    ['require', (_s: PrivatePostgres) => ({ sslmode: 'require' })],
    ['verify-ca', (s: PrivatePostgres) => ({ sslmode: 'verify-ca', sslrootcert: s.caFile! })],
    ['verify-full', (s: PrivatePostgres) => ({ sslmode: 'verify-full', sslrootcert: s.caFile! })],
  ])('the pool connects with sslmode=%s and the session is encrypted', async (_, params) => {
    const url = withParams(server.url, params(server));
    expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe(url);
    const pool = createPool(url, 1);
    try {
      expect(await sessionSsl(pool)).toBe(true);
    } finally {
      await pool.end();
    }
  });

  it('verify-full without the CA refuses the self-signed certificate', async () => {
    const err = await connectError(withParams(server.url, { sslmode: 'verify-full' }));
    expect((err as Error & { code?: string }).code ?? err.message).toMatch(/SELF_SIGNED|self.signed|UNABLE_TO_VERIFY/i);
  });

  it('sslmode=disable is rejected by a server that requires TLS', async () => {
    const err = await connectError(withParams(server.url, { sslmode: 'disable' }));
    expect(err.message).toMatch(/no encryption/);
  });

  it('psql reads the same sslmode and sslrootcert from the URL', () => {
    const url = withParams(server.url, { sslmode: 'verify-full', sslrootcert: server.caFile! });
    const out = spawnSync('psql', [url, '-qAtXc', 'select ssl from pg_stat_ssl where pid = pg_backend_pid()'], {
      encoding: 'utf8',
    });
    expect(out.stderr).toBe('');
    expect(out.stdout.trim()).toBe('t');
  });

  describe('the analyst role', () => {
    const password = `an'alyst "pw" $1; drop role analyst; --`;
    let adminUrl: string;

    beforeAll(async () => {
      adminUrl = withParams(server.url, { sslmode: 'verify-full', sslrootcert: server.caFile! });
      const db = createDb(createPool(adminUrl, 1));
      try {
        await migrateToLatest(db);
      } finally {
        await db.destroy();
      }
    });

    const psql = (env: Record<string, string>, ...args: string[]) =>
      spawnSync('bash', ['scripts/psql.sh', ...args], {
        cwd: root,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: adminUrl, ...env },
        encoding: 'utf8',
      });

    it('is created by the migrations unable to log in, with no password', async () => {
      const pool = createPool(adminUrl, 1);
      try {
        const { rows } = await pool.query<{ rolcanlogin: boolean; has_password: boolean }>(
          `select rolcanlogin, rolpassword is not null as has_password from pg_authid where rolname = 'analyst'`,
        );
        expect(rows).toEqual([{ rolcanlogin: false, has_password: false }]);
      } finally {
        await pool.end();
      }
      const refused = psql({ ANALYST_PASSWORD: 'anything' }, '-c', 'select 1');
      expect(refused.status).not.toBe(0);
    });

    it('gets its password from configuration, bound rather than spliced, and make psql logs in with it over TLS', async () => {
      const db = createDb(createPool(adminUrl, 1));
      try {
        expect(await configureAnalystRole(db, password)).toBe('set');
        expect(await configureAnalystRole(db, null)).toBe('unset');
      } finally {
        await db.destroy();
      }
      const out = psql(
        { ANALYST_PASSWORD: password },
        '-qAtXc',
        'select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()',
      );
      expect(out.stderr).toBe('');
      expect(out.stdout.trim()).toBe('analyst|t');
      // the command line psql ran with carries no password (it came through PGPASSWORD)
      const wrong = psql({ ANALYST_PASSWORD: 'not-the-password' }, '-c', 'select 1');
      expect(wrong.status).not.toBe(0);
      expect(wrong.stderr).toMatch(/password authentication failed for user "analyst"/);
      expect(wrong.stderr + wrong.stdout).not.toContain('not-the-password');
    });

    it('make psql without ANALYST_PASSWORD says what to set', () => {
      const out = psql({ ANALYST_PASSWORD: '' }, '-c', 'select 1');
      expect(out.status).toBe(2);
      expect(out.stderr).toContain('ANALYST_PASSWORD is not set');
    });
  });
});

describe('PostgreSQL without TLS', () => {
  let server: PrivatePostgres;
  beforeAll(async () => {
    server = await startPrivatePostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('sslmode=require refuses a server that does not offer TLS, sslmode=disable connects in plain', async () => {
    const err = await connectError(withParams(server.url, { sslmode: 'require' }));
    expect(err.message).toMatch(/does not support SSL/);
    const pool = createPool(withParams(server.url, { sslmode: 'disable' }), 1);
    try {
      expect(await sessionSsl(pool)).toBe(false);
    } finally {
      await pool.end();
    }
  });
});
