import type { Config } from '../../lib/config';
import path from 'node:path';
import { exportFactRows, rawCopySeconds } from './baseline';
import { type BenchEnv, createBenchEnv } from './env';
import { LOAD_STAGES, type Row, land, loadDate, log, median, sumStages } from './measure';
import { produceHistory } from './produce';
import type { Settler } from './settle';

/**
 * The history run (issue 17): in a fresh database, topic and lake of its own, one generated world over D consecutive
 * days of M events each (the same users come back day after day). Each day is produced into the topic, landed on its
 * own, then loaded stage → checks, in date order; every day's seconds are kept. Day D is judged against day 1.
 *
 * The run lasts minutes, and the shared machine's speed drifts over minutes (a raw COPY of the same rows took from
 * 2.89 to 3.84 s within one run). So after each day's load the history takes a baseline of its own: a raw COPY of
 * history day 1's fact rows (the rows of its first day, exported once), and each day's load is also given in
 * N/R-seconds against it, R near the day being the median of three COPYs around it (shown beside the verdict, which
 * is in seconds: see historyRatios).
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
  /** The raw COPY of history day 1's fact rows taken right after this day's load, in seconds. */
  baselineSeconds: number;
}

export interface HistoryRun {
  days: number;
  eventsPerDay: number;
  start: string;
  /** History day 1's fact rows: the rows every day's baseline COPY writes. */
  baselineRows: number;
  series: HistoryDay[];
}

export async function runHistory(
  base: Config,
  workDir: string,
  o: { days: number; eventsPerDay: number; start: string; seed: number; badRate: number; partitions: number },
  beforeCleanup: (env: BenchEnv) => Promise<void>,
  settler: Settler,
  keep: boolean,
): Promise<HistoryRun> {
  const env = await createBenchEnv(base, workDir, { partitions: o.partitions });
  const series: HistoryDay[] = [];
  const rowsFile = path.join(workDir, 'history_fact_rows.copy');
  let baselineRows = 0;
  try {
    log(
      `history: ${o.days} days of ${o.eventsPerDay} events from ${o.start}; database ${env.name}, topic ${env.config.kafkaTopic}`,
    );
    await produceHistory(env.config, { ...o }, async (date, produced) => {
      const day = series.length + 1;
      const label = `history day ${day}`;
      const rows: Row[] = [];
      await settler.settle(env.pool, label);
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
      if (day === 1) baselineRows = await exportFactRows(env.pool, date, rowsFile);
      await settler.settle(env.pool, `${label}'s baseline COPY`);
      const copied = await rawCopySeconds(env.pool, rowsFile);
      if (copied.rows !== baselineRows)
        throw new Error(`history baseline copied ${copied.rows} rows, expected ${baselineRows}`);
      const entry: HistoryDay = {
        day,
        date,
        events: produced.records,
        landSeconds: sumStages(rows, label, ['land']),
        loadSeconds: sumStages(rows, label, LOAD_STAGES),
        stages: rows.map((r) => ({ stage: r.stage.slice(label.length + 2), rows: r.rows, seconds: r.seconds })),
        baselineSeconds: copied.seconds,
      };
      series.push(entry);
      const first = series[0].loadSeconds;
      log(
        `${label} (${date}): ${produced.records} events, land ${entry.landSeconds.toFixed(2)} s, load ${entry.loadSeconds.toFixed(2)} s (${(entry.loadSeconds / first).toFixed(2)} x day 1), baseline COPY ${entry.baselineSeconds.toFixed(2)} s`,
      );
    });
    if (series.length !== o.days) throw new Error(`history: ${series.length} days produced, expected ${o.days}`);
    await beforeCleanup(env);
  } finally {
    await env.cleanup(keep);
  }
  return { days: o.days, eventsPerDay: o.eventsPerDay, start: o.start, baselineRows, series };
}

/**
 * R near a history day (0-based index): history day 1's rows over the median of three COPYs, the day's and its
 * neighbours', the window shifted to stay inside the run (days 1-3 for day 1, D-2..D for day D).
 */
function rNear(h: HistoryRun, index: number): number {
  const start = Math.max(0, Math.min(index - 1, h.series.length - 3));
  return h.baselineRows / median(h.series.slice(start, start + 3).map((d) => d.baselineSeconds));
}

/** A day's load in N/R-seconds, with the R near it. */
const dayNR = (h: HistoryRun, index: number) => {
  const d = h.series[index];
  return (d.loadSeconds * rNear(h, index)) / d.events;
};

/** R near the first and the last day. */
export function historyR(h: HistoryRun): { first: number; last: number } {
  return { first: rNear(h, 0), last: rNear(h, h.series.length - 1) };
}

export interface HistoryRatios {
  /** Day D's load, seconds. */
  last: number;
  /** Day D's load / day 1's, in seconds (shown). */
  lastOverFirst: number;
  /** Day D's N/R / day 1's N/R, each with the R near it (shown). */
  nrLastOverFirst: number;
  /** R near day D / R near day 1: how much quicker (> 1) or slower the raw COPY got over the run. */
  drift: number;
  /**
   * The ratio judged, in seconds: the median load of the last 3 days over the median of the first 3 (day D and
   * day 1 each read through its two neighbours); under 6 days, day D's load over day 1's.
   */
  judged: number;
  /** Whether `judged` is the ratio of the medians of three days. */
  ofMedians: boolean;
}

/**
 * Day D against day 1, in seconds, each read as the median of three days (judged), with the single days' ratio and
 * the same in N/R with the R near each beside it (shown). Single days are single minutes of a shared machine: one
 * slow minute on day 1 or day D moved the single-day ratio by up to 0.3 while the medians moved by under 0.1. The
 * verdict is in seconds: over the runs of the history's own baseline, its COPYs moved unlike its loads (in one run
 * they got 1.70 x quicker while the loads got 1.3 x quicker and the landing 1.1 x), so dividing by them moved the
 * ratio further from the loads' own than the drift it was meant to take out.
 */
export function historyRatios(h: HistoryRun): HistoryRatios {
  const s = h.series;
  const D = s.length;
  const nr = s.map((_, i) => dayNR(h, i));
  const seconds = s.map((d) => d.loadSeconds);
  const r = historyR(h);
  const ofMedians = D >= 6;
  return {
    last: seconds[D - 1],
    lastOverFirst: seconds[D - 1] / seconds[0],
    nrLastOverFirst: nr[D - 1] / nr[0],
    drift: r.last / r.first,
    judged: ofMedians ? median(seconds.slice(-3)) / median(seconds.slice(0, 3)) : seconds[D - 1] / seconds[0],
    ofMedians,
  };
}

/** The fitted value at the last day over the fitted value at the first, of a least-squares line through `ys`. */
function fittedGrowth(ys: number[]): number {
  const n = ys.length;
  const mx = (n + 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  ys.forEach((y, i) => {
    sxy += (i + 1 - mx) * (y - my);
    sxx += (i + 1 - mx) ** 2;
  });
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return (my + slope * (n - mx)) / (my + slope * (1 - mx));
}

/**
 * How each stage grew over the run, seen through every day rather than two: the fitted day D over the fitted day 1
 * of a least-squares line through the stage's seconds (shown, not judged). The landing touches no warehouse table,
 * so its trend is the machine's.
 */
export function historyTrend(h: HistoryRun): Record<string, number> {
  const trend: Record<string, number> = {};
  if (h.series.length < 3) return trend;
  for (const stage of ['land', ...LOAD_STAGES]) {
    trend[stage] = fittedGrowth(h.series.map((d) => d.stages.find((x) => x.stage === stage)?.seconds ?? 0));
  }
  trend.load = fittedGrowth(h.series.map((d) => d.loadSeconds));
  return trend;
}

/** One line per day: its events, landing and load seconds, the day's baseline COPY, N/R and the ratios to day 1. */
export function historyTable(h: HistoryRun): string {
  const header = ['day', 'date', 'events', 'land s', 'load s', 'COPY s', 'N/R', 'x day 1', 'N/R x day 1'];
  const first = h.series[0];
  const nr = h.series.map((_, i) => dayNR(h, i));
  const trend = historyTrend(h);
  const body = h.series.map((d, i) => [
    String(d.day),
    d.date,
    Math.round(d.events).toLocaleString('en-US'),
    d.landSeconds.toFixed(2),
    d.loadSeconds.toFixed(2),
    d.baselineSeconds.toFixed(2),
    nr[i].toFixed(2),
    (d.loadSeconds / first.loadSeconds).toFixed(2),
    (nr[i] / nr[0]).toFixed(2),
  ]);
  const widths = header.map((x, i) => Math.max(x.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    `  ${cells.map((c, i) => (i === 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')}`;
  return [
    `  (COPY s: a raw COPY of history day 1's ${h.baselineRows.toLocaleString('en-US')} fact rows right after the day's load; N/R with the median of the day's and its neighbours' COPYs)`,
    line(header),
    ...body.map(line),
    ...(Object.keys(trend).length
      ? [
          `  trend, fitted day ${h.series.length} / fitted day 1 of a least-squares line through every day (land touches no warehouse table: its trend is the machine's):`,
          `    ${Object.entries(trend)
            .map(([stage, x]) => `${stage} ${x.toFixed(2)} x`)
            .join(', ')}`,
        ]
      : []),
  ].join('\n');
}
