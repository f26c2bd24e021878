/**
 * Times the landing's validator (lib/events.ts parseEvent) on generated records, without Kafka or the lake:
 *   node --import tsx scripts/measure-validation.ts [--events 1000000] [--rounds 5]
 * Prints the best of the rounds in records/s.
 */
import { parseArgs } from 'node:util';
import { parseEvent } from '../lib/events';
import { generateEvents } from '../lib/generator';

function main(): void {
  const { values } = parseArgs({
    options: { events: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '5' } },
  });
  const events = Number(values.events);
  const rounds = Number(values.rounds);
  const raws = [...generateEvents({ events, days: 7, start: '2024-12-01', seed: 1, badRate: 0.01 })].map(
    (r) => r.value,
  );
  const now = new Date('2024-12-20T00:00:00Z');
  let best = 0;
  let accepted = 0;
  for (let round = 0; round < rounds; round++) {
    accepted = 0;
    const started = performance.now();
    for (const raw of raws) if (parseEvent(raw, now).ok) accepted++;
    best = Math.max(best, raws.length / ((performance.now() - started) / 1000));
  }
  console.log(`${raws.length} records (${accepted} valid): best of ${rounds} rounds ${Math.round(best)} records/s`);
}

main();
