import { sql } from 'kysely';
import type { Db } from '../../warehouse/db';
import type { ChunkCommit, WrittenFile } from './buffers';
import type { PartitionPlan } from './plan';

/** The PostgreSQL commit of a landing: files, offsets and re-load marks of each chunk in one transaction. */

export interface LandDateCounts {
  date: string;
  landed: number;
  deadLettered: number;
  files: number;
  bytes: number;
}

export interface LandEventsOutput {
  recordsRead: number;
  recordsLanded: number;
  recordsDeadLettered: number;
  files: number;
  bytes: number;
  perDate: LandDateCounts[];
  /** Dates already loaded into the warehouse that received records: marked needs_reload in ops.date_loads. */
  reloadDates: string[];
}

/**
 * The PostgreSQL side of a landing, in the activity's thread: records each chunk (files + offsets + reload marks)
 * in one transaction, one chunk at a time, and sums up the output.
 */
export class Committer {
  private landingId: number | null = null;
  private readonly startedAt = new Date();
  /** Next offset per partition as committed in ops. */
  private readonly committed = new Map<number, number>();
  private readonly perDate = new Map<string, LandDateCounts>();
  private readonly reload = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  readonly out: LandEventsOutput = {
    recordsRead: 0,
    recordsLanded: 0,
    recordsDeadLettered: 0,
    files: 0,
    bytes: 0,
    perDate: [],
    reloadDates: [],
  };

  constructor(
    private readonly db: Db,
    private readonly topic: string,
    plans: PartitionPlan[],
    private readonly beforeCommit: ((files: WrittenFile[]) => void | Promise<void>) | undefined,
  ) {
    for (const p of plans) this.committed.set(p.partition, p.start);
  }

  /** Commits chunks one after the other, whichever thread they come from. */
  commit(chunk: ChunkCommit): Promise<void> {
    const run = this.queue.then(() => this.commitNow(chunk));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async commitNow(chunk: ChunkCommit): Promise<void> {
    await this.beforeCommit?.(chunk.files);
    const marked = await this.db.transaction().execute(async (trx) => {
      const landingId = await this.recordLanding(trx, chunk);
      if (chunk.files.length > 0)
        await trx
          .insertInto('ops.lake_files')
          .values(chunk.files.map((f) => this.manifestRow(f, landingId)))
          .execute();
      for (const [partition, nextOffset] of chunk.advanced) await this.advanceOffset(trx, partition, nextOffset);
      return this.markReloads(trx, landingId, chunk.files);
    });
    for (const [p, n] of chunk.advanced) this.committed.set(p, n);
    this.count(chunk, marked);
  }

  private manifestRow(f: WrittenFile, landingId: number) {
    return {
      landing_id: landingId,
      path: f.path,
      area: f.area,
      dt: f.dt,
      topic: this.topic,
      partition: f.partition,
      first_offset: f.firstOffset,
      last_offset: f.lastOffset,
      row_count: f.rows,
      bytes: f.bytes,
    };
  }

  /** One ops.landings row per landing run, its counts growing with each committed chunk. */
  private async recordLanding(trx: Db, chunk: ChunkCommit): Promise<number> {
    if (this.landingId === null) {
      const row = await trx
        .insertInto('ops.landings')
        .values({
          topic: this.topic,
          started_at: this.startedAt,
          records_read: chunk.read,
          records_landed: chunk.landed,
          records_dead_lettered: chunk.dead,
        })
        .returning('landing_id')
        .executeTakeFirstOrThrow();
      return Number(row.landing_id);
    }
    await trx
      .updateTable('ops.landings')
      .set({
        records_read: sql`records_read + ${chunk.read}`,
        records_landed: sql`records_landed + ${chunk.landed}`,
        records_dead_lettered: sql`records_dead_lettered + ${chunk.dead}`,
        committed_at: sql`now()`,
      })
      .where(sql<boolean>`landing_id = ${this.landingId}`)
      .execute();
    return this.landingId;
  }

  /** Advances a partition's offset only from where this landing found it: a concurrent landing makes it fail. */
  private async advanceOffset(trx: Db, partition: number, nextOffset: number): Promise<void> {
    const expected = this.committed.get(partition) ?? 0;
    const result = await trx
      .insertInto('ops.kafka_offsets')
      .values({ topic: this.topic, partition, next_offset: nextOffset })
      .onConflict((oc) =>
        oc
          .columns(['topic', 'partition'])
          .doUpdateSet({ next_offset: nextOffset, updated_at: sql`now()` })
          .where('ops.kafka_offsets.next_offset', '=', String(expected)),
      )
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0) !== 1) {
      throw new Error(
        `partition ${partition} of "${this.topic}" moved from offset ${expected} during this landing: another landing ran concurrently; this one rolls back and its files are removed by the next landing`,
      );
    }
  }

  /** Dates already loaded that receive records in this chunk are marked for re-load. */
  private async markReloads(trx: Db, landingId: number, files: WrittenFile[]): Promise<string[]> {
    const byDate = new Map<string, { landed: number; dead: number }>();
    for (const f of files) {
      const c = byDate.get(f.dt) ?? { landed: 0, dead: 0 };
      if (f.area === 'events') c.landed += f.rows;
      else c.dead += f.rows;
      byDate.set(f.dt, c);
    }
    const marked: string[] = [];
    for (const [dt, c] of byDate) {
      const rows = await trx
        .updateTable('ops.date_loads')
        .set({
          needs_reload: true,
          reload_reason: `${c.landed} late records landed (${c.dead} dead-lettered) by landing ${landingId}`,
          marked_at: new Date(),
        })
        .where('dt', '=', dt)
        .where('last_loaded_at', 'is not', null)
        .returning('dt')
        .execute();
      if (rows.length > 0) marked.push(dt);
    }
    this.landingId = landingId;
    return marked;
  }

  /** Adds the committed chunk to the output and starts a new chunk. */
  private count(chunk: ChunkCommit, marked: string[]): void {
    const o = this.out;
    o.recordsRead += chunk.read;
    o.recordsLanded += chunk.landed;
    o.recordsDeadLettered += chunk.dead;
    for (const f of chunk.files) {
      o.files++;
      o.bytes += f.bytes;
      const d = this.perDate.get(f.dt) ?? { date: f.dt, landed: 0, deadLettered: 0, files: 0, bytes: 0 };
      if (f.area === 'events') d.landed += f.rows;
      else d.deadLettered += f.rows;
      d.files++;
      d.bytes += f.bytes;
      this.perDate.set(f.dt, d);
    }
    for (const dt of marked) this.reload.add(dt);
    o.perDate = [...this.perDate.values()].sort((a, b) => a.date.localeCompare(b.date));
    o.reloadDates = [...this.reload].sort();
  }
}
