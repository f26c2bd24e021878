import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A private single-node Kafka broker for tests that kill, pause or restart it (never the shared one on 9092):
 * the jars of .tools/kafka/libs, the stack's own properties template (so its SASL_SSL listener is tested too),
 * a self-signed certificate and SCRAM users made as scripts/stack/up.sh makes them, on free ports, in a temp dir.
 */

const ROOT = path.resolve(__dirname, '..');
const LIBS = path.join(ROOT, '.tools/kafka/libs/*');
const STACK = path.join(ROOT, 'scripts/stack');
export const PRIVATE_SASL_USER = 'nightshift';

export interface PrivateBroker {
  /** host:port of the PLAINTEXT listener. */
  plaintext: string;
  /** host:port of the SASL_SSL listener. */
  saslSsl: string;
  /** PEM file the clients trust for the SASL_SSL listener. */
  caFile: string;
  saslPassword: string;
  kill(): Promise<void>;
  start(): Promise<void>;
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startPrivateBroker(): Promise<PrivateBroker> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-kafka-'));
  const [port, controllerPort, saslSslPort] = [await freePort(), await freePort(), await freePort()];
  const tlsPassword = randomBytes(12).toString('hex');
  const saslPassword = randomBytes(12).toString('hex');
  const keystore = path.join(dir, 'broker.p12');
  const caFile = path.join(dir, 'ca.pem');
  execFileSync('keytool', [
    ...['-genkeypair', '-alias', 'broker', '-keyalg', 'RSA', '-keysize', '2048', '-validity', '30'],
    ...['-dname', 'CN=127.0.0.1', '-ext', 'SAN=IP:127.0.0.1,DNS:localhost', '-ext', 'BC:c=ca:true'],
    ...['-storetype', 'PKCS12', '-keystore', keystore, '-storepass', tlsPassword],
  ]);
  execFileSync('keytool', [
    ...['-exportcert', '-rfc', '-alias', 'broker', '-keystore', keystore, '-storepass', tlsPassword, '-file', caFile],
  ]);
  const properties = path.join(dir, 'server.properties');
  const vars: Record<string, string> = {
    HOST: '127.0.0.1',
    PORT: String(port),
    CONTROLLER_PORT: String(controllerPort),
    SASL_SSL_PORT: String(saslSslPort),
    TLS_DIR: dir,
    TLS_PASSWORD: tlsPassword,
    SASL_USER: PRIVATE_SASL_USER,
    SASL_PASSWORD: saslPassword,
    LOG_DIRS: path.join(dir, 'data'),
    TOPIC: 'events',
  };
  const template = readFileSync(path.join(STACK, 'kafka-server.properties.template'), 'utf8');
  writeFileSync(
    properties,
    template.replace(/@([A-Z_]+)@/g, (m, name: string) => vars[name] ?? m),
  );
  const clusterId = randomBytes(16).toString('base64url');
  const tools = ['-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', LIBS];
  execFileSync('java', [
    ...tools,
    `-Dlog4j2.configurationFile=${path.join(STACK, 'kafka-log4j2-tools.properties')}`,
    'kafka.tools.StorageTool',
    ...['format', '--standalone', '-t', clusterId, '-c', properties],
    ...['--add-scram', `SCRAM-SHA-256=[name=${PRIVATE_SASL_USER},password=${saslPassword}]`],
    ...['--add-scram', `SCRAM-SHA-512=[name=${PRIVATE_SASL_USER},password=${saslPassword}]`],
  ]);
  let child: ChildProcess | null = null;

  const start = async (): Promise<void> => {
    const log = openSync(path.join(dir, 'broker.log'), 'a');
    child = spawn(
      'java',
      [
        ...['-Xms256m', '-Xmx256m', '-XX:+UseSerialGC', '-Djava.awt.headless=true', `-Dkafka.logs.dir=${dir}`],
        `-Dlog4j2.configurationFile=${path.join(STACK, 'kafka-log4j2.properties')}`,
        ...['-cp', LIBS, 'kafka.Kafka', properties],
      ],
      { stdio: ['ignore', log, log] },
    );
    const started = child;
    for (let i = 0; i < 600; i++) {
      if (started.exitCode !== null) throw new Error(`private Kafka broker exited; see ${dir}/broker.log`);
      if ((await portOpen(port)) && (await portOpen(saslSslPort))) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`private Kafka broker did not open port ${port} within 120 s; see ${dir}/broker.log`);
  };

  const kill = async (): Promise<void> => {
    const c = child;
    child = null;
    if (c === null || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };

  await start();
  return {
    plaintext: `127.0.0.1:${port}`,
    saslSsl: `127.0.0.1:${saslSslPort}`,
    caFile,
    saslPassword,
    kill,
    start,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    async stop() {
      child?.kill('SIGCONT');
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
