import { backfillStaticDetails, backfillStaticSummary } from '../lib/run-summary';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import { type Client, WorkflowFailedError } from '@temporalio/client';
import { type Config, loadConfig } from '../lib/config';
import { closeClient, connectClient } from '../lib/temporal-client';
import {
  type BackfillMode,
  BACKFILL_MODES,
  MAX_BACKFILL_CONCURRENCY,
  PIPELINE_DATE,
  backfillWorkflowId,
  dailyWorkflowId,
  dateProblem,
  isBackfillMode,
  rangeProblem,
  workflowUiUrl,
} from '../lib/temporal';
import { backfillWorkflow, currentStepQuery, progressQuery } from '../workflows';
import type { BackfillOutput, BackfillProgress } from '../workflows/backfill';

/**
 * `make backfill DATE=… | FROM=… TO=… [CONCURRENCY=3] [MODE=all|missing|failed]`: starts (or attaches to) the
 * backfill of a range in Temporal, shows its progress, prints a summary; exit 0 when every date succeeded,
 * 1 when a date failed, 2 on bad arguments (nothing started), 130 on Ctrl-C (the backfill keeps running).
 */

export interface BackfillArgs {
  from: string;
  to: string;
  concurrency: number;
  mode: BackfillMode;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

const USAGE =
  'usage: make backfill DATE=YYYY-MM-DD | FROM=YYYY-MM-DD TO=YYYY-MM-DD [CONCURRENCY=1..16] [MODE=all|missing|failed]';

/** Parses and validates the arguments; a UsageError names the bad value and the fix. */
export function parseBackfillArgs(argv: string[]): BackfillArgs {
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--(date|from|to|concurrency|mode)(?:=(.*))?$/.exec(arg);
    if (!m) throw new UsageError(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined || value === '') throw new UsageError(`--${m[1]} needs a value\n${USAGE}`);
    flags[m[1]] = value;
  }
  let from: string;
  let to: string;
  if (flags.date !== undefined) {
    if (flags.from !== undefined || flags.to !== undefined)
      throw new UsageError(`give DATE or FROM/TO, not both\n${USAGE}`);
    const problem = dateProblem(flags.date);
    if (problem) throw new UsageError(`DATE: ${problem}; give a real day, e.g. DATE=2024-02-29`);
    from = to = flags.date;
  } else if (flags.from !== undefined && flags.to !== undefined) {
    const fromProblem = dateProblem(flags.from);
    if (fromProblem) throw new UsageError(`FROM: ${fromProblem}; give a real day, e.g. FROM=2024-03-01`);
    const toProblem = dateProblem(flags.to);
    if (toProblem) throw new UsageError(`TO: ${toProblem}; give a real day, e.g. TO=2024-03-07`);
    const problem = rangeProblem(flags.from, flags.to);
    if (problem) throw new UsageError(problem);
    ({ from, to } = flags as { from: string; to: string });
  } else {
    throw new UsageError(`give DATE, or both FROM and TO\n${USAGE}`);
  }
  const concurrency = flags.concurrency === undefined ? 3 : Number(flags.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_BACKFILL_CONCURRENCY) {
    throw new UsageError(
      `CONCURRENCY=${flags.concurrency} is not a whole number from 1 to ${MAX_BACKFILL_CONCURRENCY}`,
    );
  }
  const mode = flags.mode ?? 'all';
  if (!isBackfillMode(mode)) throw new UsageError(`MODE=${mode} is not one of ${BACKFILL_MODES.join(', ')}`);
  return { from, to, concurrency, mode };
}

export interface BackfillRun {
  workflowId: string;
  runId: string;
  /** False when a backfill of the same range was already running and this call attached to it. */
  started: boolean;
  url: string;
}

/** Starts the backfill of the range, or attaches to the one already running under the same id. */
export async function startBackfill(client: Client, config: Config, args: BackfillArgs): Promise<BackfillRun> {
  const workflowId = backfillWorkflowId(args.from, args.to);
  const running = await client.workflow
    .getHandle(workflowId)
    .describe()
    .then((d) => d.status.name === 'RUNNING')
    .catch(() => false);
  const handle = await client.workflow.start(backfillWorkflow, {
    taskQueue: config.temporalTaskQueue,
    workflowId,
    args: [{ from: args.from, to: args.to, concurrency: args.concurrency, mode: args.mode }],
    // the same range twice at once: watch the one running, never start a second
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    typedSearchAttributes: [{ key: PIPELINE_DATE, value: `${args.from}..${args.to}` }],
    staticSummary: backfillStaticSummary(args.from, args.to, args.mode, args.concurrency),
    staticDetails: backfillStaticDetails(args.from, args.to, args.mode, args.concurrency),
  });
  const runId = handle.firstExecutionRunId;
  return {
    workflowId,
    runId,
    started: !running,
    url: workflowUiUrl(config.temporalUiUrl, config.temporalNamespace, workflowId),
  };
}

/** The progress line: a bar, done/total, failures, and each running date with its step. */
export function progressLine(p: BackfillProgress, steps: Record<string, string>, width = 24): string {
  const ratio = p.total === 0 ? (p.phase === 'planning' ? 0 : 1) : p.done / p.total;
  const filled = Math.round(ratio * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const running = p.running.map((d) => `${d} ${steps[d] ?? '…'}`).join(', ');
  const failed = p.failed.length ? ` ${p.failed.length} failed` : '';
  return `${bar} ${p.done}/${p.total}${failed}${running ? ` | ${running}` : p.phase !== 'running' ? ` | ${p.phase}` : ''}`;
}

/** Polls the progress query (and each running date's step) until the backfill closes; draws on `out`. */
export async function watchBackfill(
  client: Client,
  workflowId: string,
  out: NodeJS.WriteStream = process.stderr,
  intervalMs = 1000,
): Promise<BackfillOutput> {
  const handle = client.workflow.getHandle<typeof backfillWorkflow>(workflowId);
  const result = handle.result();
  let finished = false;
  void result.finally(() => (finished = true)).catch(() => undefined);
  let last = '';
  const tty = Boolean(out.isTTY);
  while (!finished) {
    try {
      const p = await handle.query(progressQuery);
      const steps: Record<string, string> = {};
      await Promise.all(
        p.running.map(async (d) => {
          const s = await client.workflow
            .getHandle(dailyWorkflowId(d))
            .query(currentStepQuery)
            .catch(() => undefined);
          if (s) steps[d] = s.step;
        }),
      );
      const line = progressLine(p, steps);
      if (tty) out.write(`\r\x1b[2K${line.slice(0, (out.columns ?? 120) - 1)}`);
      else if (line !== last) out.write(`${line}\n`);
      last = line;
    } catch {
      // no worker has picked it up yet, or it just closed: try again
    }
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, intervalMs))]);
  }
  if (tty) out.write('\n');
  return result;
}

export function formatSummary(output: BackfillOutput): string {
  const lines = [
    `backfill ${output.from}..${output.to} (mode ${output.mode}): ${output.succeeded.length} succeeded, ${output.failed.length} failed` +
      (output.skipped ? `, ${output.skipped} skipped by the mode` : ''),
    '',
    // landing is not per date: the first run to take the landing lock lands every date's new records
    `${'date'.padEnd(12)}${'status'.padEnd(11)}${'landed*'.padStart(9)}${'fact rows'.padStart(11)}  checks`,
  ];
  for (const r of output.results) {
    const checks = r.checks
      ? Object.entries(r.checks)
          .map(([s, n]) => `${n} ${s}`)
          .join(', ')
      : '';
    lines.push(
      `${r.date.padEnd(12)}${r.status.padEnd(11)}${String(r.recordsLanded ?? '').padStart(9)}${String(r.factRows ?? '').padStart(11)}  ${checks}` +
        (r.reloadDates?.length ? `  (re-loaded ${r.reloadDates.join(', ')})` : '') +
        (r.error ? `\n${' '.repeat(12)}error: ${r.error}` : ''),
    );
  }
  if (output.results.length === 0) lines.push('(no dates to run)');
  else
    lines.push('* records its run landed from Kafka, for all dates (one landing serves every date that waits on it)');
  return lines.join('\n');
}

const HELP = `Re-run dates through Temporal: one child dailyPipeline per date, with a progress bar.

${USAGE}
   or: node --import tsx scripts/backfill.ts --date D | --from F --to T [--concurrency N] [--mode M]

  --date D          one day, YYYY-MM-DD (UTC)
  --from F --to T   an inclusive range of days
  --concurrency N   dates loaded at once, 1..${MAX_BACKFILL_CONCURRENCY} (default 3)
  --mode M          all (default), missing (dates never loaded), failed (dates whose last run failed)

Exit code: 0 every date succeeded, 1 a date failed, 2 bad arguments (nothing is started).
Ctrl-C stops watching; the backfill keeps running in Temporal. Running the same command again attaches to it.`;

async function main(): Promise<number> {
  if (process.argv.includes('--help')) {
    console.log(HELP);
    return 0;
  }
  let args: BackfillArgs;
  try {
    args = parseBackfillArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`backfill: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const config = loadConfig();
  const client = await connectClient(config);
  try {
    const run = await startBackfill(client, config, args);
    console.log(
      `${run.started ? 'started' : 'attached to the running'} backfill ${run.workflowId} ` +
        `(${args.mode}, concurrency ${args.concurrency}) on task queue ${config.temporalTaskQueue}`,
    );
    console.log(`Temporal UI: ${run.url}`);
    process.once('SIGINT', () => {
      process.stderr.write(
        `\nstopped watching; ${run.workflowId} keeps running in Temporal (${run.url}).\n` +
          `Run the same command again to watch it, or cancel it in the UI.\n`,
      );
      process.exit(130);
    });
    let output: BackfillOutput;
    try {
      output = await watchBackfill(client, run.workflowId);
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        console.error(`backfill ${run.workflowId} failed: ${err.cause?.message ?? err.message}`);
        return 1;
      }
      throw err;
    }
    console.log(formatSummary(output));
    if (output.failed.length > 0) {
      console.log(`\n${output.failed.length} date(s) failed: see ${run.url} and ops.pipeline_runs`);
      return 1;
    }
    return 0;
  } finally {
    await closeClient(client);
  }
}

if (require.main === module) {
  main()
    .then((code) => process.exit(code))
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
