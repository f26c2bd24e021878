import { type HistoryRun, historyR, historyRatios } from './history';
import { LOAD_STAGES, type Row, sumStages } from './measure';

/**
 * The verdicts of a bench run (issue 17's targets, then issue 7's that still stand) and the tables that show them.
 * N/R-seconds = seconds x R / N: the seconds a path took in units of one raw COPY of its N rows.
 */

export interface Target {
  target: string;
  pass: boolean;
  measured: string;
}

/** One line of the paths block. */
export interface PathLine {
  path: string;
  seconds: number;
  /** Seconds x R / N; null where no N applies. */
  nr: number | null;
  target: string;
  verdict: 'PASS' | 'FAIL' | '';
  /** The measured figure the verdict looked at (in the targets list and the JSON). */
  measured?: string;
  /** Shown in the paths block where the target is not in N/R: the ratio judged. */
  ratio?: string;
}

export interface TemporalFigures {
  wallSeconds: number;
  overheadSeconds: number;
  overheadShare: number;
  workerPeakRssMiB: number;
  events: number;
}

export interface Verdicts {
  paths: PathLine[];
  targets: Target[];
  /** Issue 7's targets not superseded by issue 17's. */
  kept: Target[];
}

/** The events of each in-process path: N of its N/R. */
export interface PathEvents {
  day1: number;
  redelivery: number;
  day2: number;
}

const f2 = (x: number) => x.toFixed(2);
const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

export function evaluate(
  rows: Row[],
  R: number,
  n: PathEvents,
  pipeline: TemporalFigures | null,
  history: HistoryRun | null,
): Verdicts {
  const nr = (seconds: number, events: number) => (seconds * R) / events;
  const paths: PathLine[] = [];
  const targets: Target[] = [];
  const judge = (line: Omit<PathLine, 'verdict'>, pass: boolean | null, targetText?: string) => {
    const verdict = pass === null ? '' : pass ? 'PASS' : 'FAIL';
    paths.push({ ...line, verdict });
    if (pass !== null && targetText !== undefined)
      targets.push({ target: targetText, pass, measured: line.measured ?? '' });
  };
  /** A path's load (stage..checks) judged against a ceiling in N/R; returns its seconds. */
  const judgeLoad = (path: string, prefix: string, events: number, limit: number, targetText: string) => {
    const seconds = sumStages(rows, prefix, LOAD_STAGES);
    const value = nr(seconds, events);
    judge(
      {
        path,
        seconds,
        nr: value,
        target: `<= ${limit.toFixed(1)} N/R`,
        measured: `${f2(value)} N/R (${seconds.toFixed(1)} s)`,
      },
      value <= limit,
      targetText,
    );
    return seconds;
  };

  const land1 = rows.find((r) => r.stage === 'day 1: land') as Row;
  const landRate = land1.rows / land1.seconds / R;
  judge(
    {
      path: 'first day: land',
      seconds: land1.seconds,
      nr: nr(land1.seconds, n.day1),
      target: '>= 0.5 x R events/s (<= 2.0 N/R)',
      measured: `${fmtInt(land1.rows / land1.seconds)} events/s = ${f2(landRate)} x R`,
      ratio: `${f2(landRate)} x R`,
    },
    landRate >= 0.5,
    'landing >= 0.5 x R events/s',
  );
  const load1 = judgeLoad('first day: load', 'day 1', n.day1, 4.0, 'first-day load (stage..checks) <= 4.0 N/R');
  judgeLoad(
    're-load, nothing new: load',
    're-load',
    n.day1,
    0.3,
    're-load with nothing new (stage..checks) <= 0.3 N/R',
  );
  const landAgain = sumStages(rows, 're-delivery', ['land']);
  judge({ path: 're-delivery: land', seconds: landAgain, nr: nr(landAgain, n.redelivery), target: '' }, null);
  judgeLoad('re-delivery: load', 're-delivery', n.redelivery, 4.0, 're-delivery of a loaded day: load <= 4.0 N/R');
  const land2 = sumStages(rows, 'day 2', ['land']);
  judge({ path: 'next day: land', seconds: land2, nr: nr(land2, n.day2), target: '' }, null);
  const load2 = sumStages(rows, 'day 2', LOAD_STAGES);
  judge(
    {
      path: 'next day: load',
      seconds: load2,
      nr: nr(load2, n.day2),
      target: '<= 1.1 x first day',
      measured: `${f2(load2 / load1)} x (${load2.toFixed(1)} s vs ${load1.toFixed(1)} s)`,
      ratio: `${f2(load2 / load1)} x`,
    },
    load2 <= 1.1 * load1,
    'next day on top of the first: load <= 1.1 x first day',
  );
  if (history && history.series.length > 0) {
    const first = history.series[0];
    const last = history.series[history.series.length - 1];
    const ratios = historyRatios(history);
    const r = historyR(history);
    judge(
      {
        path: 'history day 1: load',
        seconds: first.loadSeconds,
        nr: (first.loadSeconds * r.first) / first.events,
        target: '',
      },
      null,
    );
    const single = `day ${last.day} / day 1 ${f2(ratios.lastOverFirst)} x (${last.loadSeconds.toFixed(2)} s vs ${first.loadSeconds.toFixed(2)} s)`;
    const nrRatio = `in N/R with R near each ${f2(ratios.nrLastOverFirst)} x (R ${f2(ratios.drift)} x day 1's)`;
    const judged = ratios.ofMedians
      ? `median(days ${last.day - 2}-${last.day}) / median(days 1-3) ${f2(ratios.judged)} x`
      : `${f2(ratios.judged)} x`;
    const shown = ratios.ofMedians ? `${single}; ${nrRatio}` : nrRatio;
    judge(
      {
        path: `history day ${last.day}: load`,
        seconds: last.loadSeconds,
        nr: (last.loadSeconds * r.last) / last.events,
        target: '<= 1.1 x history day 1',
        measured: `${judged} (${shown})`,
        ratio: `${judged} (${shown}, not judged)`,
      },
      ratios.judged <= 1.1,
      `history: day ${last.day} on top of ${last.day - 1}: load <= 1.1 x day 1`,
    );
  }
  if (pipeline) {
    const pipeNR = nr(pipeline.wallSeconds, pipeline.events);
    judge(
      {
        path: 'Temporal: whole pipeline',
        seconds: pipeline.wallSeconds,
        nr: pipeNR,
        target: '<= 6.5 N/R',
        measured: `${f2(pipeNR)} N/R (${pipeline.wallSeconds.toFixed(1)} s)`,
      },
      pipeNR <= 6.5,
      'whole daily pipeline through Temporal, landing included <= 6.5 N/R',
    );
    targets.push({
      target: 'worker peak RSS < 1 GiB',
      pass: pipeline.workerPeakRssMiB < 1024,
      measured: `${Math.round(pipeline.workerPeakRssMiB)} MiB`,
    });
  }

  const kept: Target[] = [];
  const facts = rows.find((r) => r.stage === 'day 1: facts') as Row;
  const factsRatio = facts.rows / facts.seconds / R;
  kept.push({ target: 'facts >= 0.40 x R', pass: factsRatio >= 0.4, measured: `${f2(factsRatio)} x R` });
  const dimsMarts = sumStages(rows, 'day 1', ['dimensions', 'marts']);
  kept.push({
    target: 'dimensions + marts <= 2 N/R',
    pass: nr(dimsMarts, n.day1) <= 2,
    measured: `${f2(nr(dimsMarts, n.day1))} N/R (${f2(dimsMarts)} s)`,
  });
  if (pipeline) {
    kept.push({
      target: 'Temporal overhead < 5 %',
      pass: pipeline.overheadShare < 0.05,
      measured: `${(pipeline.overheadShare * 100).toFixed(1)} % (${f2(pipeline.overheadSeconds)} s)`,
    });
  }
  return { paths, targets, kept };
}

function grid(header: string[], body: string[][], leftColumns: number[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (leftColumns.includes(i) ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** Every timed stage: rows/s as a multiple of R, and N/R (seconds x R / the path's N). */
export function stageTable(rows: Row[], R: number): string {
  const header = ['stage', 'rows', 'seconds', 'rows/s', 'x R', 'N/R', 'peak RSS'];
  const body = rows.map((r) => {
    const rate = r.rows / r.seconds;
    return [
      r.stage + (r.note ? ` (${r.note})` : ''),
      fmtInt(r.rows),
      f2(r.seconds),
      r.rows > 0 ? fmtInt(rate) : '',
      r.rows > 0 ? f2(rate / R) : '',
      r.n ? f2((r.seconds * R) / r.n) : '',
      r.peakRssMiB === undefined ? '' : `${Math.round(r.peakRssMiB)} MiB`,
    ];
  });
  return grid(header, body, [0]);
}

/** The paths block: path, seconds, N/R, target, verdict. */
export function pathsTable(paths: PathLine[]): string {
  const body = paths.map((p) => [
    p.path,
    f2(p.seconds),
    p.nr === null ? '' : f2(p.nr),
    p.target,
    p.verdict,
    p.ratio ?? '',
  ]);
  return grid(['path', 'seconds', 'N/R', 'target', 'verdict', 'measured'], body, [0, 3, 5]);
}

export function targetLines(targets: Target[]): string[] {
  const width = Math.max(0, ...targets.map((t) => t.target.length));
  return targets.map((t) => `  ${t.pass ? 'PASS' : 'FAIL'}  ${t.target.padEnd(width)}  ${t.measured}`);
}
