import type { Config } from '../../lib/config';
import { type BenchEnv, createBenchEnv } from './env';
import { LOAD_STAGES, type Row, land, loadDate, log, median, sumStages } from './measure';
import { produceHistory } from './produce';

/**
 * The history run (issue 17): in a fresh database, topic and lake of its own, one generated world over D consecutive
 * days of M events each (the same users come back day after day). Each day is produced into the topic, landed on its
 * own, then loaded stage → checks, in date order; every day's seconds are kept. Day D is judged against day 1.
 */

export interface HistoryDay {
  day: number;
  date: string;
  /** Records produced for the day, bad ones included: the day's N. */
  events: number;
  landSeconds: number;
  /** Stage through checks. */
  loadSeconds: number;
  stages: { stage: string; rows: number; seconds: number }[];
}

export interface HistoryRun {
  days: number;
  eventsPerDay: number;
  start: string;
  series: HistoryDay[];
}

export async function runHistory(
  base: Config,
  workDir: string,
  o: { days: number; eventsPerDay: number; start: string; seed: number; badRate: number; partitions: number },
  beforeCleanup: (env: BenchEnv) => Promise<void>,
  keep: boolean,
): Promise<HistoryRun> {
  const env = await createBenchEnv(base, workDir, { partitions: o.partitions });
  const series: HistoryDay[] = [];
  try {
    log(
      `history: ${o.days} days of ${o.eventsPerDay} events from ${o.start}; database ${env.name}, topic ${env.config.kafkaTopic}`,
    );
    await produceHistory(env.config, { ...o }, async (date, produced) => {
      const day = series.length + 1;
      const label = `history day ${day}`;
      const rows: Row[] = [];
      await land(rows, env, label, produced.records, true);
      await loadDate(
        rows,
        env,
        label,
        date,
        produced.records,
        { workflowId: 'bench', runId: `${env.name}-history-${day}` },
        true,
      );
      const entry: HistoryDay = {
        day,
        date,
        events: produced.records,
        landSeconds: sumStages(rows, label, ['land']),
        loadSeconds: sumStages(rows, label, LOAD_STAGES),
        stages: rows.map((r) => ({ stage: r.stage.slice(label.length + 2), rows: r.rows, seconds: r.seconds })),
      };
      series.push(entry);
      const first = series[0].loadSeconds;
      log(
        `${label} (${date}): ${produced.records} events, land ${entry.landSeconds.toFixed(2)} s, load ${entry.loadSeconds.toFixed(2)} s (${(entry.loadSeconds / first).toFixed(2)} x day 1)`,
      );
    });
    if (series.length !== o.days) throw new Error(`history: ${series.length} days produced, expected ${o.days}`);
    await beforeCleanup(env);
  } finally {
    await env.cleanup(keep);
  }
  return { days: o.days, eventsPerDay: o.eventsPerDay, start: o.start, series };
}

/** Day D / day 1, and median(last 3) / median(first 3) to see through one noisy day (shown, not judged). */
export function historyRatios(h: HistoryRun): { last: number; lastOverFirst: number; medianRatio: number | null } {
  const s = h.series.map((d) => d.loadSeconds);
  const last = s[s.length - 1];
  const medianRatio = s.length >= 6 ? median(s.slice(-3)) / median(s.slice(0, 3)) : null;
  return { last, lastOverFirst: last / s[0], medianRatio };
}

/** One line per day: its events, landing and load seconds, N/R and the ratio to day 1. */
export function historyTable(h: HistoryRun, R: number): string {
  const header = ['day', 'date', 'events', 'land s', 'load s', 'N/R', 'x day 1'];
  const first = h.series[0]?.loadSeconds ?? NaN;
  const body = h.series.map((d) => [
    String(d.day),
    d.date,
    Math.round(d.events).toLocaleString('en-US'),
    d.landSeconds.toFixed(2),
    d.loadSeconds.toFixed(2),
    ((d.loadSeconds * R) / d.events).toFixed(2),
    (d.loadSeconds / first).toFixed(2),
  ]);
  const widths = header.map((x, i) => Math.max(x.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    `  ${cells.map((c, i) => (i === 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')}`;
  return [line(header), ...body.map(line)].join('\n');
}
