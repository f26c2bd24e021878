import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../lib/cli';
import { type TestEnv, createTestEnv, uniqueName } from './support';

const ROOT = path.resolve(__dirname, '..');
const COMMANDS = ['worker', 'migrate', 'produce', 'check', 'backfill', 'schedule', 'demo', 'bench', 'psql'];

/** `nightshift …` from the TypeScript sources (the loader is a development convenience) or from a compiled build. */
function nightshift(args: string[], options: { entry?: string[]; env?: NodeJS.ProcessEnv } = {}) {
  const entry = options.entry ?? ['--import', 'tsx', 'scripts/nightshift.ts'];
  const run = spawnSync(process.execPath, [...entry, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('the nightshift command', () => {
  it('lists its commands, and each answers --help with its usage and the exit codes', () => {
    const list = nightshift(['--help']);
    expect(list.code).toBe(EXIT.ok);
    for (const command of COMMANDS) expect(list.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));

    for (const command of COMMANDS) {
      const help = nightshift([command, '--help']);
      expect(help.code, `${command} --help: ${help.stderr}`).toBe(EXIT.ok);
      expect(help.stdout).toContain(`nightshift ${command}`);
      if (command !== 'psql') expect(help.stdout).toContain('2 bad arguments, 3 bad configuration');
    }
  });

  it.each([
    [['backfill', '--date', '2024-02-30'], /--date: "2024-02-30" is not a calendar date/],
    [['backfill'], /give --date, or both --from and --to/],
    [['check'], /--date is required/],
    [['check', '--date', '2024-13-01'], /"2024-13-01" is not a calendar date/],
    [['produce', '--events', 'many'], /--events "many" is not a whole number >= 0/],
    [['produce', '--bad-rate', '2'], /--bad-rate "2" is not a share between 0 and 1/],
    [['produce', '--nope'], /Unknown option '--nope'/],
    [['schedule', 'pause'], /give create or delete, not "pause"/],
    [['schedule', 'create', '--cron', '0 2 * *'], /not a five-field cron expression/],
    [['migrate', 'now'], /unexpected argument "now"/],
    [['bench', '--cold', '--no-settle'], /--cold settles the machine: leave out --no-settle/],
    [['reload'], /unknown command "reload"; one of worker, migrate/],
  ])('%j is bad input: exit 2, naming the value, nothing started', (args, message) => {
    const run = nightshift(args);
    expect(run.code).toBe(EXIT.usage);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).toBe('');
  });

  it('without a command it prints the list and exits 2', () => {
    const run = nightshift([]);
    expect(run.code).toBe(EXIT.usage);
    expect(run.stdout).toContain('usage: nightshift <command>');
  });

  it('a bad setting is a configuration error: exit 3, naming the variable', () => {
    const run = nightshift(['check', '--date', '2024-03-01'], { env: { TEMPORAL_ADDRESS: 'not an address' } });
    expect(run.code, run.stderr).toBe(EXIT.config);
    expect(run.stderr).toContain('TEMPORAL_ADDRESS');
  });

  it('psql passes its arguments to psql and exits with its code', () => {
    const ok = nightshift(['psql', '-XAtc', 'select 40 + 2']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe('42');
    const bad = nightshift(['psql', '-XAtc', 'select * from no_such_table']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('no_such_table');
  });
});

describe('the compiled build (make build)', () => {
  // inside the project, so the compiled code finds node_modules as dist/ does; never the running worker's dist/
  const out = path.join('.cache', uniqueName('build'), 'dist');
  const compiled = [path.join(out, 'scripts', 'nightshift.js')];
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv({ topic: false });
    const build = spawnSync('bash', ['scripts/build.sh'], {
      cwd: ROOT,
      env: { ...process.env, BUILD_OUT: out },
      encoding: 'utf8',
    });
    expect(build.status, build.stderr).toBe(0);
  });

  afterAll(async () => {
    await env?.cleanup();
    rmSync(path.join(ROOT, path.dirname(out)), { recursive: true, force: true });
  });

  it('holds the landing thread and the SQL files beside the code', () => {
    for (const file of [
      'scripts/worker.js',
      'activities/landing/worker.js',
      'warehouse/sql/fact_events.sql',
      'warehouse/marts/daily_active_users.sql',
      'warehouse/checks/volume.sql',
      'migrations/20261122_0001_schemas_and_roles.js',
    ]) {
      expect(existsSync(path.join(ROOT, out, file)), file).toBe(true);
    }
  });

  it('runs without a TypeScript loader: bad input exits 2, and migrate loads every compiled migration', () => {
    const bad = nightshift(['backfill', '--date', '2024-02-30'], { entry: compiled });
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.stderr).toContain('"2024-02-30" is not a calendar date');

    // a database of the migrated template: migrate imports every dist/migrations/*.js to compare, applies none
    // (an empty database would run the role grants of 0001, which race other tests' on the shared cluster)
    const migrate = nightshift(['migrate'], { entry: compiled, env: { DATABASE_URL: env.config.databaseUrl } });
    expect(migrate.code, migrate.stderr).toBe(EXIT.ok);
    expect(migrate.stdout.split('\n')[0]).toBe('migrations: up to date');
  });
});
