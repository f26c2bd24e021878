import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { childrenOf, freePort, postgresUser } from './private-postgres';

/**
 * A private PostgreSQL cluster for the fault tests, which kill it: initdb into a temp folder as the `postgres`
 * system user (initdb and postgres refuse root), on a free port, trust authentication for `postgres` over
 * 127.0.0.1. Never the shared cluster of the local stack.
 */

const exec = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';
const isRoot = process.getuid?.() === 0;

export interface FaultPostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  /**
   * `kill -9` of the postmaster, resolving once it and every backend it had are gone. With `backends`, its backends
   * are killed at the same instant, as a machine crash would; without, they notice the postmaster's death and exit
   * on their own, aborting their transactions first (see kill's note).
   */
  kill(options?: { backends?: boolean }): Promise<void>;
  /** Starts the server again on the same data and port: crash recovery runs (unlogged tables come back empty). */
  restart(): Promise<void>;
  /** Stops the server and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

async function asOwner(bin: string, args: string[]): Promise<void> {
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  await exec(cmd, argv, { timeout: 120_000 });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`private PostgreSQL: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function startFaultPostgres(): Promise<FaultPostgres> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-faults-pg-'));
  chmodSync(dir, 0o755); // the postgres user must traverse it
  if (isRoot) {
    const { uid, gid } = postgresUser();
    chownSync(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=60`;
  const start = async () => {
    try {
      await asOwner(path.join(PG_BIN, 'pg_ctl'), ['-D', data, '-l', log, '-w', '-t', '120', '-o', options, 'start']);
    } catch (err) {
      const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
      throw new Error(`private PostgreSQL on port ${port} did not start; ${log} ends:\n${tail}`, { cause: err });
    }
  };
  const postmasterPid = (): number | null => {
    const file = path.join(data, 'postmaster.pid');
    return existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) : null;
  };
  try {
    await asOwner(path.join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '-N']);
    await start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let removed = false;
  // PostgreSQL 15 cannot recover when the postmaster alone was killed while a transaction had created an unlogged
  // table: the orphaned backend aborts on its way out, which removes the table's init fork but leaves its main fork
  // for a checkpoint that never comes, and the abort record is not flushed; recovery then re-creates the init fork
  // from WAL and stops with 'could not create file "base/…": File exists'. Killing the backends too is the crash a
  // machine failure makes, or the postmaster's own restart after a backend was killed.
  const kill = async (options: { backends?: boolean } = {}) => {
    const pid = postmasterPid();
    if (!pid || !alive(pid)) return;
    // stopped first, the postmaster cannot react to its backends' deaths, nor they see its own before theirs
    if (options.backends) process.kill(pid, 'SIGSTOP');
    const children = childrenOf(pid);
    for (const victim of [...(options.backends ? children : []), pid]) {
      try {
        process.kill(victim, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // orphaned backends notice the postmaster's death and exit; a new postmaster needs them gone
    await waitFor(
      'the killed postmaster and its backends to exit',
      () => !alive(pid) && children.every((c) => !alive(c)),
    );
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    kill,
    async restart() {
      const pid = postmasterPid();
      if (pid && alive(pid)) return;
      await start();
    },
    async stop() {
      if (removed) return;
      removed = true;
      const pid = postmasterPid();
      if (pid && alive(pid)) {
        await asOwner(path.join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(kill);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
