import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A local HTTP server standing in for Slack's incoming webhook: records what it accepts, or never answers. */

export interface SlackStandIn {
  url: string;
  /** Message bodies accepted (HTTP 200). */
  received: { text: string; blocks: unknown[] }[];
  /** Requests seen, answered or not. */
  requests: number;
  close(): Promise<void>;
}

export async function startSlackStandIn(options: { hang?: boolean } = {}): Promise<SlackStandIn> {
  const open = new Set<http.ServerResponse>();
  const state: SlackStandIn = { url: '', received: [], requests: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    state.requests += 1;
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      // a hanging Slack accepts the connection and the request, and never answers
      if (options.hang) {
        open.add(res);
        return;
      }
      state.received.push(JSON.parse(body));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/XXXX`;
  state.close = () =>
    new Promise((resolve) => {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
