import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  /** The CA that signed both certificates. */
  ca: string;
  /** Server certificate for localhost and 127.0.0.1, and its key. */
  serverCert: string;
  serverKey: string;
  /** Client certificate (CN nightshift-client), and its key. */
  clientCert: string;
  clientKey: string;
}

/** A fresh CA with a server and a client certificate, made by openssl into `dir` (PEM files, valid 2 days). */
export async function makeTestCertificates(dir: string): Promise<TestCertificates> {
  const f = (name: string) => path.join(dir, name);
  const ssl = (args: string[]) => run('openssl', args, { timeout: 60_000 });
  await ssl([
    ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=nightshift test CA'],
    ...['-keyout', f('ca.key'), '-out', f('ca.crt')],
  ]);
  const sign = async (name: string, subject: string, extensions: string) => {
    await ssl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      subject,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
    ]);
    writeFileSync(f(`${name}.ext`), extensions);
    await ssl([
      ...['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial'],
      ...['-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`)],
    ]);
  };
  await sign('server', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await sign('client', '/CN=nightshift-client', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: f('ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
  };
}
