import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EXIT, UsageError, parseCommandLine, runCommand } from '../../lib/cli';
import type { SettleMode } from './settle';

/**
 * Linearity of a bench run against an earlier run at 1,000,000 events: issue 17 wants day 1's load (stage through
 * checks) at EVENTS=10000000 to cost at most 10.5 x the 1M time (1.05 x the growth in events; landing is shown but
 * not summed). The two runs happen at different moments on a shared machine, so each ratio is shown
 * raw and adjusted by the two runs' baselines (time x R is the stage's cost in units of "raw COPY seconds").
 *
 * Standalone: node --import tsx scripts/bench/linearity.ts RUN.json [REFERENCE.json]
 * (the reference defaults to the newest 1M run in the same folder).
 */

export interface BenchJson {
  startedAt: string;
  /** settle: undefined in runs from before it existed, which ran back to back ('off'). */
  /** fillFree: undefined in runs from before the settle filled the free memory (false). */
  options: { events: number; partitions: number; users?: number; settle?: SettleMode; fillFree?: boolean };
  baseline: { rowsPerSecond: number };
  stages: { stage: string; seconds: number }[];
}

export interface Linearity {
  referenceFile: string;
  scale: number;
  /** The most the load may cost against the reference: 1.05 x scale (10.5 x for 10 x the events). */
  limit: number;
  rows: { stage: string; referenceSeconds: number; seconds: number; raw: number; adjusted: number }[];
}

export const DAY_STAGES = ['land', 'stage', 'dimensions', 'facts', 'marts', 'checks'];
/** The stages of a load, summed in the last row: stage through checks. */
const LOAD_STAGES = DAY_STAGES.slice(1);

/**
 * The newest run in `dir` with `events` events a day in the same world (`users`: the steady world's users, undefined
 * for the growing one) and settled the same way, other than `exclude`; null when there is none.
 */
export function newestRun(
  dir: string,
  events: number,
  same: { users?: number; settle?: SettleMode; fillFree?: boolean },
  exclude?: string,
): { file: string; json: BenchJson } | null {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json') && n !== exclude);
  } catch {
    return null;
  }
  for (const name of names.sort().reverse()) {
    const file = path.join(dir, name);
    try {
      const json = JSON.parse(readFileSync(file, 'utf8')) as BenchJson;
      if (
        json.options?.events === events &&
        json.options.users === same.users &&
        (json.options.settle ?? 'off') === (same.settle ?? 'off') &&
        (json.options.fillFree ?? false) === (same.fillFree ?? false) &&
        Array.isArray(json.stages)
      )
        return { file, json };
    } catch {
      // a partial or foreign file: not a reference
    }
  }
  return null;
}

export function linearity(run: BenchJson, reference: BenchJson, referenceFile: string): Linearity {
  const scale = run.options.events / reference.options.events;
  const speed = run.baseline.rowsPerSecond / reference.baseline.rowsPerSecond;
  const seconds = (json: BenchJson, stage: string) => json.stages.find((s) => s.stage === stage)?.seconds ?? NaN;
  const rows = DAY_STAGES.map((stage) => {
    const r = seconds(reference, `day 1: ${stage}`);
    const s = seconds(run, `day 1: ${stage}`);
    return { stage: `day 1: ${stage}`, referenceSeconds: r, seconds: s, raw: s / r, adjusted: (s / r) * speed };
  });
  const load = rows.filter((x) => LOAD_STAGES.some((stage) => x.stage === `day 1: ${stage}`));
  const r = load.reduce((a, x) => a + x.referenceSeconds, 0);
  const s = load.reduce((a, x) => a + x.seconds, 0);
  rows.push({
    stage: 'day 1: load (stage..checks)',
    referenceSeconds: r,
    seconds: s,
    raw: s / r,
    adjusted: (s / r) * speed,
  });
  return { referenceFile, scale, limit: 1.05 * scale, rows };
}

export function linearityTable(l: Linearity, events: number): string {
  const lines = [
    `linearity against ${path.basename(l.referenceFile)} (${(events / l.scale).toLocaleString('en-US')} events): at most ${l.limit.toFixed(2)} x`,
    `  ${'stage'.padEnd(28)} ${'1x s'.padStart(8)} ${`${l.scale}x s`.padStart(9)} ${'raw'.padStart(7)} ${'R-adj.'.padStart(7)}`,
  ];
  for (const r of l.rows) {
    lines.push(
      `  ${r.stage.padEnd(28)} ${r.referenceSeconds.toFixed(2).padStart(8)} ${r.seconds.toFixed(2).padStart(9)} ${r.raw.toFixed(1).padStart(6)}x ${r.adjusted.toFixed(1).padStart(6)}x`,
    );
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv, {}, { positionals: true });
  const [runFile, referenceArg, extra] = parsed === 'help' ? [] : parsed.positionals;
  if (parsed === 'help' || !runFile || extra !== undefined) {
    const usage = 'usage: node --import tsx scripts/bench/linearity.ts RUN.json [REFERENCE.json]';
    if (parsed === 'help') {
      console.log(usage);
      return EXIT.ok;
    }
    throw new UsageError(`give a bench run's JSON file, and optionally the reference one; ${usage}`);
  }
  const run = JSON.parse(readFileSync(runFile, 'utf8')) as BenchJson;
  const reference = referenceArg
    ? { file: referenceArg, json: JSON.parse(readFileSync(referenceArg, 'utf8')) as BenchJson }
    : newestRun(path.dirname(runFile), 1_000_000, run.options, path.basename(runFile));
  if (!reference)
    throw new UsageError(`no 1,000,000-event run next to ${runFile}: run make bench EVENTS=1000000 first`);
  console.log(linearityTable(linearity(run, reference.json, reference.file), run.options.events));
  return EXIT.ok;
}

if (require.main === module) runCommand('bench linearity', main);
