import { execFile } from 'node:child_process';
import {
  chownSync,
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTestCertificates } from './test-certificates';

/**
 * A private PostgreSQL cluster for tests that must stop, kill or reconfigure a server: initdb into a temp folder, on
 * a free port, trust authentication for user `postgres` over 127.0.0.1. Never the shared cluster of the local stack.
 *
 *   const pg = await startPrivatePostgres({ ssl: 'required' });
 *   … connect to pg.url …
 *   await pg.kill(); await pg.restart();   // a crash, then recovery on the same data and port
 *   await pg.stop();                       // always, in afterAll: stops the server and removes its folder
 */

const run = promisify(execFile);

export interface PrivatePostgresOptions {
  /**
   * TLS: `off` (default, the server refuses TLS), `on` (TLS and plain both accepted) or `required` (plain
   * connections rejected). With TLS the server certificate is made by openssl, signed by a fresh CA, for
   * 127.0.0.1 and localhost.
   */
  ssl?: 'off' | 'on' | 'required';
  /**
   * Password authentication (scram-sha-256) over TCP for every role but `postgres`, which stays trusted; by
   * default every role is trusted.
   */
  passwordAuth?: boolean;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
}

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres (add sslmode yourself). */
  url: string;
  port: number;
  /** The cluster's folder (data, socket, log and certificates). */
  dir: string;
  /** The CA certificate file that signed the server certificate (with ssl on or required). */
  caFile: string | null;
  /** SIGKILL of the postmaster (a crash); `restart()` brings it back on the same data and port. */
  kill(): Promise<void>;
  /** Starts the server again after `kill()` (crash recovery runs) or `stopServer()`. */
  restart(): Promise<void>;
  /** A clean shutdown that keeps the folder (`restart()` brings it back). */
  stopServer(): Promise<void>;
  /** Stops the server (if running) and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

function pgBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)) : [];
  if (versions.length === 0) throw new Error(`no PostgreSQL server under ${root}: run \`make install\``);
  return path.join(root, versions.sort((a, b) => Number(a) - Number(b)).pop()!, 'bin');
}

const isRoot = process.getuid?.() === 0;

/** Runs a server binary as the cluster owner: initdb and postgres refuse root. */
async function asOwner(bin: string, args: string[]): Promise<string> {
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const { stdout } = await run(cmd, argv, { timeout: 60_000 });
  return stdout;
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Creates and starts a private cluster; call `stop()` when done. */
export async function startPrivatePostgres(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const bin = pgBin();
  const ssl = options.ssl ?? 'off';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-pg-'));
  chmodSync(dir, 0o755); // the postgres user must traverse it
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  let certs: { ca: string; cert: string; key: string } | null = null;
  const owner = () => {
    if (!isRoot) return;
    const { uid, gid } = postgresUser();
    for (const name of readdirSync(dir)) chownSync(path.join(dir, name), uid, gid);
    chownSync(dir, uid, gid);
  };
  try {
    if (ssl !== 'off') {
      const made = await makeTestCertificates(dir);
      certs = { ca: made.ca, cert: made.serverCert, key: made.serverKey };
    }
    owner();
    if (certs) chmodSync(certs.key, 0o600);
    await asOwner(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '-N']);
    const host = ssl === 'required' ? 'hostssl' : 'host';
    const hba = [
      'local all all trust',
      `${host} all postgres 127.0.0.1/32 trust`,
      `${host} all all 127.0.0.1/32 ${options.passwordAuth ? 'scram-sha-256' : 'trust'}`,
      ...(ssl === 'required' ? ['hostnossl all all 127.0.0.1/32 reject'] : []),
    ];
    writeFileSync(path.join(data, 'pg_hba.conf'), `${hba.join('\n')}\n`);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const port = await freePort();
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    fsync: 'off',
    ...(certs ? { ssl: 'on', ssl_cert_file: certs.cert, ssl_key_file: certs.key } : {}),
    ...options.settings,
  };
  const serverOptions = [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}='${v}'`)].join(' ');
  const pgCtl = (args: string[]) => asOwner(path.join(bin, 'pg_ctl'), ['-D', data, ...args]);
  const start = async () => {
    try {
      await pgCtl(['-l', log, '-w', '-t', '60', '-o', serverOptions, 'start']);
    } catch (err) {
      const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
      throw new Error(`private PostgreSQL on port ${port} did not start; its log (${log}) ends:\n${tail}`, {
        cause: err,
      });
    }
  };
  const postmasterPid = () => {
    const file = path.join(data, 'postmaster.pid');
    return existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) : null;
  };
  const running = () => {
    const pid = postmasterPid();
    if (!pid) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    await start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let removed = false;
  const kill = async () => {
    const pid = postmasterPid();
    if (!pid || !running()) return;
    // the postmaster and its backends at once, as a machine crash would: no backend lingers on shared memory
    for (const child of [pid, ...childrenOf(pid)]) {
      try {
        process.kill(child, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await waitUntil(() => !running() && childrenOf(pid).length === 0);
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    caFile: certs?.ca ?? null,
    kill,
    async restart() {
      if (running()) return;
      await start();
    },
    async stopServer() {
      if (running()) await pgCtl(['-m', 'fast', '-w', 'stop']);
    },
    async stop() {
      if (removed) return;
      if (running()) await pgCtl(['-m', 'immediate', '-w', 'stop']).catch(kill);
      rmSync(dir, { recursive: true, force: true });
      removed = true;
    },
  };
}

/** Pids whose parent is `pid` (Linux /proc). */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces, so split after its closing parenthesis
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return children;
}

/** The same function under the short name: `start({ ssl })`. */
export { startPrivatePostgres as start };

/** The postgres system user's uid and gid: a cluster's folder must belong to it when the tests run as root. */
export function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('no postgres system user: install PostgreSQL with `make install`');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Polls a condition (no fixed sleep): the postmaster's exit after SIGKILL is observed, not assumed. */
async function waitUntil(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('private PostgreSQL: the postmaster did not exit');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
