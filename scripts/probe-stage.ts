import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { performance } from 'node:perf_hooks';
import { parseEvent } from '../lib/events';
import { generateEvents } from '../lib/generator';
import { EventRows, lakeFilePath, readLakeFiles, toParquet, writeLakeFile } from '../lib/lake';
import { RepeatedIds } from '../lib/repeated-ids';
import { copyChunks } from '../activities/staging/encode';
import { StagingChunks } from '../activities/staging/threads';

async function main() {
  const n = Number(process.argv[2] ?? 250000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'probe-'));
  const refs: { lakeFileId: number; path: string }[] = [];
  let rows = new EventRows('t', 0);
  let off = 0;
  const flush = async () => {
    const rel = lakeFilePath('events', '2024-12-17', refs.length, 0, rows.length - 1);
    await writeLakeFile(dir, rel, toParquet(rows.toTable()));
    refs.push({ lakeFileId: refs.length + 1, path: rel });
    rows = new EventRows('t', 0);
  };
  for (const r of generateEvents({ events: n, days: 1, start: '2024-12-17', seed: 7, badRate: 0 })) {
    const p = parseEvent(r.value, new Date('2024-12-18T00:00:00Z'));
    if (!p.ok) continue;
    rows.push(p.event, off++, Date.now());
    if (rows.length >= 250000) await flush();
  }
  if (rows.length) await flush();
  const sink = () => new Writable({ write(_c, _e, cb) { cb(); } });
  for (let k = 0; k < 3; k++) {
    let t = performance.now(); let c = process.cpuUsage(); let elu = performance.eventLoopUtilization();
    const tables = (async function* () { for await (const { lakeFileId, table } of readLakeFiles(dir, refs)) yield { file: refs[lakeFileId - 1], table }; })();
    await pipeline(copyChunks(tables, 'binary', () => undefined, new RepeatedIds(n)), sink());
    let cu = process.cpuUsage(c);
    console.log(`in-thread: ${(performance.now() - t).toFixed(0)} ms wall, cpu ${((cu.user + cu.system) / 1000).toFixed(0)} ms, main ELU ${performance.eventLoopUtilization(elu).utilization.toFixed(2)}`);
    t = performance.now(); c = process.cpuUsage(); elu = performance.eventLoopUtilization();
    const s = new StagingChunks(dir, refs, 'binary', () => undefined, n);
    await pipeline(s, sink());
    await s.close();
    cu = process.cpuUsage(c);
    console.log(`worker:    ${(performance.now() - t).toFixed(0)} ms wall, cpu ${((cu.user + cu.system) / 1000).toFixed(0)} ms, main ELU ${performance.eventLoopUtilization(elu).utilization.toFixed(2)}`);
  }
}
void main();
