import { parseArgs } from 'node:util';
import { createCheckActivities } from '../activities/checks';
import { formatReportJson, formatReportTable, isReportFormat, type ReportFormat } from '../lib/check-report';
import { loadDqConfig } from '../lib/checks';
import { loadConfig } from '../lib/config';
import { dateProblem } from '../lib/temporal';
import { createDb, createPool } from '../warehouse/db';

/**
 * make check DATE=YYYY-MM-DD — runs the data-quality checks for a date now, records them in ops.dq_results under a
 * run id `manual-<timestamp>`, prints a table. Exit code: 0 when nothing failed (warnings and skips included),
 * 1 when a check failed, 2 on bad arguments or configuration.
 */

const USAGE = `usage: node --import tsx scripts/check.ts --date YYYY-MM-DD [--scheduled] [--format table|json]

Runs every data-quality check for the date and prints check, table, status, observed, threshold, details.
  --date YYYY-MM-DD   the date to check (UTC)
  --scheduled         judge freshness as the scheduled run does (newest event < 24 h old) instead of
                      "the date's data reaches its last hour"
  --format table|json table for people (default); json: one document on stdout with one object per check
                      (name, table, status, observed, threshold, details), for CI
Exit code: 0 all pass (warn and skip do not fail), 1 a check failed, 2 bad arguments.`;

class UsageError extends Error {}

function parse(argv: string[]): { date: string; scheduled: boolean; format: ReportFormat } | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        date: { type: 'string' },
        scheduled: { type: 'boolean', default: false },
        format: { type: 'string', default: 'table' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
  if (values.help) return 'help';
  if (!values.date) throw new UsageError('--date is required, e.g. make check DATE=2024-12-17');
  const problem = dateProblem(values.date);
  if (problem) throw new UsageError(`bad --date: ${problem}`);
  if (!isReportFormat(values.format))
    throw new UsageError(`bad --format ${JSON.stringify(values.format)}: use table or json`);
  return { date: values.date, scheduled: values.scheduled ?? false, format: values.format };
}

async function main(): Promise<number> {
  let args;
  try {
    args = parse(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`check: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (args === 'help') {
    console.log(USAGE);
    return 0;
  }
  const config = loadConfig();
  const dqConfig = loadDqConfig();
  const pool = createPool(config.databaseUrl, 2);
  const db = createDb(pool);
  try {
    const runId = `manual-${new Date().toISOString().replace(/[-:.]/g, '').replace('T', '-').replace('Z', '')}`;
    const { runChecks } = createCheckActivities({ config, pool, db }, { config: dqConfig, recordStep: false });
    const out = await runChecks({
      date: args.date,
      run: { workflowId: 'manual-check', runId },
      scheduled: args.scheduled,
    });
    const report = { date: args.date, runId, counts: out.counts, results: out.results };
    console.log(args.format === 'json' ? formatReportJson(report) : formatReportTable(report));
    const { fail } = out.counts;
    return fail > 0 ? 1 : 0;
  } finally {
    await db.destroy();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(err?.name === 'ConfigError' || err?.name === 'DqConfigError' ? 2 : 1);
  },
);
