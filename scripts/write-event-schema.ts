/**
 * Writes the published event contract, schema/event.v1.schema.json, from lib/event-schema.ts (`make schema`).
 * `--check` only compares and exits 1 when the file is stale.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EVENT_SCHEMA_FILE, eventSchemaFileText } from '../lib/event-schema';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
  const file = path.resolve(__dirname, '..', EVENT_SCHEMA_FILE);
  const want = await eventSchemaFileText();
  if (values.check) {
    const have = await readFile(file, 'utf8').catch(() => '');
    if (have !== want) {
      console.error(`${EVENT_SCHEMA_FILE} is stale: run make schema and commit it`);
      process.exit(1);
    }
    return;
  }
  await writeFile(file, want);
  console.log(`wrote ${EVENT_SCHEMA_FILE}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
