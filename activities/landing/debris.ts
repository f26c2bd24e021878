import { LAKE_AREAS } from '../../lib/lake';
import { type LakeLocation, lakeStore } from '../../lib/lake-store';
import type { Db } from '../../warehouse/db';

/**
 * Removes lake files (and temp files) that ops.lake_files does not list: the debris of an interrupted landing.
 * Runs under the topic's landing lock. On S3, where there is no rename, it lists the areas' prefixes and deletes the
 * objects the manifest does not know. Returns how many were removed.
 */
export async function removeDebris(db: Db, lake: LakeLocation): Promise<number> {
  const store = lakeStore(lake);
  const found: string[] = [];
  for (const area of LAKE_AREAS) found.push(...(await store.list(`${area}/`)));
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
  await store.remove(debris);
  return debris.length;
}
