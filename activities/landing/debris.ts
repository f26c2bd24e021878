import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { LAKE_AREAS } from '../../lib/lake';
import type { Db } from '../../warehouse/db';

/** Removes lake files (and temp files) that ops.lake_files does not list. Returns how many were removed. */
export async function removeDebris(db: Db, lakeDir: string): Promise<number> {
  const found: string[] = [];
  for (const area of LAKE_AREAS) {
    const areaDir = path.join(lakeDir, area);
    const partitions = await readdir(areaDir, { withFileTypes: true }).catch(() => []);
    for (const p of partitions) {
      if (!p.isDirectory()) continue;
      for (const f of await readdir(path.join(areaDir, p.name))) found.push(`${area}/${p.name}/${f}`);
    }
  }
  const known = new Set<string>();
  for (let i = 0; i < found.length; i += 5000) {
    const rows = await db
      .selectFrom('ops.lake_files')
      .select('path')
      .where('path', 'in', found.slice(i, i + 5000))
      .execute();
    for (const r of rows) known.add(r.path);
  }
  const debris = found.filter((f) => !known.has(f));
  for (const f of debris) await rm(path.join(lakeDir, f), { force: true });
  return debris.length;
}
