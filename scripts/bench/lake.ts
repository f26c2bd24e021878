import type pg from 'pg';
import type { Config } from '../../lib/config';
import { parseEvent, utcDateOfUs } from '../../lib/events';
import { generateEvents } from '../../lib/generator';
import { EventRows, lakeFilePath, toParquet, writeLakeFile } from '../../lib/lake';

/** A generated lake for the measuring scripts (scripts/measure-load.ts, scripts/measure-stage.ts), landing skipped. */

export interface LakeOptions {
  events: number;
  date: string;
  seed: number;
  partitions: number;
  /** A steady world of this many users (GenerateOptions.users); undefined: the growing one. */
  users?: number;
}

const MAX_ROWS_PER_FILE = 250_000;

/** Writes the events of one generated day into the lake and ops.lake_files, as the landing would. */
export async function writeLake(
  config: Config,
  pool: pg.Pool,
  o: LakeOptions,
  dates: string[],
): Promise<{ rows: number[]; files: number; bytes: number }> {
  const topic = 'measure';
  const { rows } = await pool.query(
    `insert into ops.landings (topic, started_at, records_read, records_landed, records_dead_lettered)
     values ($1, now(), $2, $2, 0) returning landing_id`,
    [topic, o.events],
  );
  const landingId = rows[0].landing_id;
  const buffers = dates.map(() => Array.from({ length: o.partitions }, (_, p) => new EventRows(topic, p)));
  const offsets = new Array<number>(o.partitions).fill(0);
  let files = 0;
  let bytes = 0;
  const totals = dates.map(() => 0);
  const flush = async (d: number, p: number) => {
    const buf = buffers[d][p];
    if (buf.length === 0) return;
    const relPath = lakeFilePath('events', dates[d], p, buf.firstOffset, buf.lastOffset);
    const parquet = toParquet(buf.toTable());
    await writeLakeFile(config.lakeDir, relPath, parquet);
    await pool.query(
      `insert into ops.lake_files (landing_id, path, area, dt, topic, partition, first_offset, last_offset, row_count, bytes)
       values ($1, $2, 'events', $3, $4, $5, $6, $7, $8, $9)`,
      [landingId, relPath, dates[d], topic, p, buf.firstOffset, buf.lastOffset, buf.length, parquet.length],
    );
    files++;
    bytes += parquet.length;
    buffers[d][p] = new EventRows(topic, p);
  };
  const now = new Date(`${dates[dates.length - 1]}T23:59:59Z`);
  const events = o.events * dates.length;
  for (const record of generateEvents({
    events,
    days: dates.length,
    start: o.date,
    seed: o.seed,
    badRate: 0,
    users: o.users,
  })) {
    const parsed = parseEvent(record.value, now);
    if (!parsed.ok) continue;
    const d = dates.indexOf(utcDateOfUs(parsed.event.event_time_us));
    if (d < 0) continue;
    let h = 0;
    for (let i = 0; i < record.key.length; i++) h = (h * 31 + record.key.charCodeAt(i)) | 0;
    const p = Math.abs(h) % o.partitions;
    buffers[d][p].push(parsed.event, offsets[p]++, Date.now());
    totals[d]++;
    if (buffers[d][p].length >= MAX_ROWS_PER_FILE) await flush(d, p);
  }
  for (let d = 0; d < dates.length; d++) for (let p = 0; p < o.partitions; p++) await flush(d, p);
  return { rows: totals, files, bytes };
}
