import { backfillStaticDetails, backfillStaticSummary } from '../lib/run-summary';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import { type Client, WorkflowFailedError } from '@temporalio/client';
import { EXIT, EXIT_CODES_HELP, UsageError, calendarDate, parseCommandLine, runCommand, wholeNumber } from '../lib/cli';
import { type Config, loadConfig } from '../lib/config';
import { closeClient, connectClient } from '../lib/temporal-client';
import {
  type BackfillMode,
  BACKFILL_MODES,
  MAX_BACKFILL_CONCURRENCY,
  PIPELINE_DATE,
  backfillWorkflowId,
  dailyWorkflowId,
  isBackfillMode,
  rangeProblem,
  workflowUiUrl,
} from '../lib/temporal';
import { backfillWorkflow, currentStepQuery, progressQuery } from '../workflows';
import type { BackfillOutput, BackfillProgress } from '../workflows/backfill';

/**
 * `nightshift backfill --date D | --from F --to T [--concurrency N] [--mode M]` (`make backfill DATE=…`): starts
 * (or attaches to) the backfill of a range in Temporal, shows its progress, prints a summary; exit 0 when every
 * date succeeded, 1 when a date failed, 2 on bad arguments (nothing started), 130 on Ctrl-C (it keeps running).
 */

export interface BackfillArgs {
  from: string;
  to: string;
  concurrency: number;
  mode: BackfillMode;
}

const OPTIONS = {
  date: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  concurrency: { type: 'string', default: '3' },
  mode: { type: 'string', default: 'all' },
} as const;

/** Parses and validates the arguments; a UsageError names the bad value and the fix. Null for --help. */
export function parseBackfillArgs(argv: string[]): BackfillArgs | null {
  const parsed = parseCommandLine(argv, OPTIONS);
  if (parsed === 'help') return null;
  const { date, from, to, concurrency, mode } = parsed.values;
  let range: { from: string; to: string };
  if (date !== undefined) {
    if (from !== undefined || to !== undefined) throw new UsageError('give --date, or --from and --to, not both');
    range = { from: calendarDate('--date', date), to: date };
  } else if (from !== undefined && to !== undefined) {
    range = { from: calendarDate('--from', from), to: calendarDate('--to', to) };
    const problem = rangeProblem(from, to);
    if (problem) throw new UsageError(problem);
  } else {
    throw new UsageError('give --date, or both --from and --to (make backfill DATE=… or FROM=… TO=…)');
  }
  if (!isBackfillMode(mode)) throw new UsageError(`--mode ${mode} is not one of ${BACKFILL_MODES.join(', ')}`);
  return { ...range, concurrency: wholeNumber('--concurrency', concurrency, 1, MAX_BACKFILL_CONCURRENCY), mode };
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

export const HELP = `Re-run dates through Temporal: one child dailyPipeline per date, with a progress bar.

usage: nightshift backfill --date D | --from F --to T [--concurrency N] [--mode M]
   or: make backfill DATE=D | FROM=F TO=T [CONCURRENCY=N] [MODE=M]

  --date D          one day, YYYY-MM-DD (UTC)
  --from F --to T   an inclusive range of days
  --concurrency N   dates loaded at once, 1..${MAX_BACKFILL_CONCURRENCY} (default 3)
  --mode M          all (default), missing (dates never loaded), failed (dates whose last run failed)

Ctrl-C stops watching; the backfill keeps running in Temporal. Running the same command again attaches to it.
${EXIT_CODES_HELP} 1: a date failed; 2: nothing was started.`;

export async function main(argv: string[]): Promise<number> {
  const args = parseBackfillArgs(argv);
  if (args === null) {
    console.log(HELP);
    return EXIT.ok;
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
      process.exit(EXIT.interrupted);
    });
    let output: BackfillOutput;
    try {
      output = await watchBackfill(client, run.workflowId);
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        console.error(`backfill ${run.workflowId} failed: ${err.cause?.message ?? err.message}`);
        return EXIT.failed;
      }
      throw err;
    }
    console.log(formatSummary(output));
    if (output.failed.length > 0) {
      console.log(`\n${output.failed.length} date(s) failed: see ${run.url} and ops.pipeline_runs`);
      return EXIT.failed;
    }
    return EXIT.ok;
  } finally {
    await closeClient(client);
  }
}

if (require.main === module) runCommand('backfill', main);
