import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '../lib/config';
import { closeClient, connectClient, temporalConnectionOptions } from '../lib/temporal-client';
import { makeTestCertificates, type TestCertificates } from './test-certificates';

/**
 * Temporal over mutual TLS. The dev server has no TLS flags (`temporal server start-dev --help` lists none), so
 * a private TLS endpoint in front of the stack's dev server terminates TLS: it demands a client certificate
 * signed by a fresh CA (made by openssl) and forwards the decrypted gRPC to the server. Both connection kinds,
 * the client's Connection and the worker's NativeConnection, must complete a real mTLS handshake through it.
 */

describe('Temporal over mutual TLS', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nightshift-temporal-tls-'));
  let certs: TestCertificates;
  let endpoint: tls.Server;
  let address: string;
  /** The client certificate subject of every handshake the endpoint accepted. */
  const accepted: string[] = [];
  let refused = 0;

  beforeAll(async () => {
    certs = await makeTestCertificates(dir);
    const upstream = loadConfig().temporalAddress;
    const [host, port] = upstream.split(':');
    endpoint = tls.createServer(
      {
        cert: readFileSync(certs.serverCert),
        key: readFileSync(certs.serverKey),
        ca: readFileSync(certs.ca),
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ['h2'],
      },
      (socket) => {
        accepted.push(String(socket.getPeerCertificate().subject?.CN));
        const server = net.connect(Number(port), host);
        socket.pipe(server).pipe(socket);
        socket.on('error', () => server.destroy());
        server.on('error', () => socket.destroy());
      },
    );
    endpoint.on('tlsClientError', () => (refused += 1));
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(endpoint.address() as net.AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => endpoint?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const mtlsConfig = (): Config =>
    loadConfig({
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TLS_CERT: certs.clientCert,
      TEMPORAL_TLS_KEY: certs.clientKey,
      TEMPORAL_TLS_CA: certs.ca,
      TEMPORAL_TLS_SERVER_NAME: 'localhost',
    });

  it('the client connects with the configured certificate and calls the server', async () => {
    const before = accepted.length;
    const client = await connectClient(mtlsConfig());
    try {
      const info = await client.workflowService.getSystemInfo({});
      expect(info.serverVersion).toBeTruthy();
    } finally {
      await closeClient(client);
    }
    expect(accepted.slice(before)).toContain('nightshift-client');
  });

  it("the worker's native connection does the same", async () => {
    const before = accepted.length;
    const connection = await NativeConnection.connect(temporalConnectionOptions(mtlsConfig()));
    try {
      const info = await connection.workflowService.getSystemInfo({});
      expect(info.serverVersion).toBeTruthy();
    } finally {
      await connection.close();
    }
    expect(accepted.slice(before)).toContain('nightshift-client');
  });

  it('without a client certificate the handshake is refused, and the error names TEMPORAL_ADDRESS and the TLS settings', async () => {
    const before = refused;
    const config = loadConfig({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS_CA: certs.ca });
    await expect(connectClient(config)).rejects.toThrow(
      new RegExp(`Cannot reach Temporal at ${address} \\(TEMPORAL_ADDRESS, TLS\\).*TEMPORAL_TLS_`),
    );
    expect(refused).toBeGreaterThan(before);
  });
});
