import { Producer } from '@platformatic/kafka';
import { afterEach, expect, it, vi } from 'vitest';
import { topicOffsets } from '../lib/kafka';
import { produceEvents } from '../lib/produce';
import { createTestEnv, type TestEnv } from './support';

/** `make produce`, the bench and the tests' producer (lib/kafka.ts EventSender) against the real broker. */

let env: TestEnv | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await env?.cleanup();
  env = undefined;
});

it('sends one produce request at a time, and the topic holds every record once', async () => {
  env = await createTestEnv({ partitions: 4 });
  // Two requests in flight let a partition refused by the first (NOT_LEADER_OR_FOLLOWER, as on a topic just
  // created) put the second's sequence numbers out of order; the client then sent the second whole again under a
  // new producer id, and the partitions the broker had taken got their records twice.
  const send = Producer.prototype.send;
  let inFlight = 0;
  let most = 0;
  let requests = 0;
  vi.spyOn(Producer.prototype, 'send').mockImplementation(function (this: Producer, ...args: unknown[]) {
    inFlight++;
    requests++;
    most = Math.max(most, inFlight);
    const sent = (send as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    return sent.finally(() => inFlight--);
  } as typeof send);

  // about 7 MB of values: requests of 768 KB each
  const produced = await produceEvents(env.config, {
    events: 20_000,
    days: 2,
    start: '2024-12-01',
    seed: 21,
    badRate: 0.01,
  });
  expect(requests).toBeGreaterThan(4);
  expect(most).toBe(1);
  const held = (await topicOffsets(env.config, env.config.kafkaTopic)).reduce((a, o) => a + o.high, 0);
  expect(held).toBe(produced.events);
});
