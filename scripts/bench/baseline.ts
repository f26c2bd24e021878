import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { TABLE_COLUMNS } from '../../warehouse/database';

/** The columns of warehouse.fact_events, in table order. */
const FACT_COLUMNS = TABLE_COLUMNS['warehouse.fact_events'];

/**
 * Writes the fact rows of one date as COPY text to `file`: the baseline's input, the very rows the facts stage
 * wrote. Returns the row count.
 */
export async function exportFactRows(pool: pg.Pool, date: string, file: string): Promise<number> {
  const dateKey = Number(date.replace(/-/g, ''));
  if (!Number.isInteger(dateKey)) throw new Error(`bad date ${date}`);
  const client = await pool.connect();
  try {
    const copy = client.query(
      copyTo(
        `copy (select ${FACT_COLUMNS.join(', ')} from warehouse.fact_events where date_key = ${dateKey}) to stdout`,
      ),
    );
    await pipeline(copy, createWriteStream(file));
    return Number(copy.rowCount);
  } finally {
    client.release();
  }
}

/**
 * The machine's baseline: a raw COPY of the rows in `file` into a fresh unindexed UNLOGGED table with
 * fact_events' columns. Only the COPY is timed. Returns seconds.
 */
export async function rawCopySeconds(pool: pg.Pool, file: string): Promise<{ seconds: number; rows: number }> {
  const client = await pool.connect();
  try {
    await client.query('drop table if exists public.bench_baseline');
    // LIKE copies columns and NOT NULL only: no primary key, no index
    await client.query('create unlogged table public.bench_baseline (like warehouse.fact_events)');
    const started = performance.now();
    const copy = client.query(copyFrom(`copy public.bench_baseline (${FACT_COLUMNS.join(', ')}) from stdin`));
    await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), copy);
    const seconds = (performance.now() - started) / 1000;
    await client.query('drop table public.bench_baseline');
    return { seconds, rows: Number(copy.rowCount) };
  } finally {
    client.release();
  }
}
