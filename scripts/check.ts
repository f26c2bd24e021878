import { createCheckActivities } from '../activities/checks';
import { formatReportJson, formatReportTable, isReportFormat } from '../lib/check-report';
import { EXIT, EXIT_CODES_HELP, UsageError, calendarDate, parseCommandLine, runCommand } from '../lib/cli';
import { loadConfig } from '../lib/config';
import { createDb, createPool } from '../warehouse/db';

/**
 * `nightshift check --date D` (`make check DATE=…`): runs the data-quality checks for a date now, records them in
 * ops.dq_results under a run id `manual-<timestamp>`, prints a table. Exit code: 0 when nothing failed (warnings and
 * skips included), 1 when a check failed, 2 on bad arguments, 3 on bad configuration.
 */

export const HELP = `Run every data-quality check for a date and print check, table, status, observed, threshold, details.

usage: nightshift check --date YYYY-MM-DD [--scheduled] [--format table|json]
   or: make check DATE=YYYY-MM-DD [FORMAT=json]

  --date YYYY-MM-DD   the date to check (UTC)
  --scheduled         judge freshness as the scheduled run does (newest event < 24 h old) instead of
                      "the date's data reaches its last hour"
  --format table|json table for people (default); json: one document on stdout with one object per check
                      (name, table, status, observed, threshold, details), for CI

${EXIT_CODES_HELP} Warn and skip do not fail; 1: a check failed.`;

const OPTIONS = {
  date: { type: 'string' },
  scheduled: { type: 'boolean', default: false },
  format: { type: 'string', default: 'table' },
} as const;

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv, OPTIONS);
  if (parsed === 'help') {
    console.log(HELP);
    return EXIT.ok;
  }
  if (parsed.values.date === undefined) throw new UsageError('--date is required, e.g. make check DATE=2024-12-17');
  const format = parsed.values.format;
  if (!isReportFormat(format)) throw new UsageError(`bad --format ${JSON.stringify(format)}: use table or json`);
  const args = { date: calendarDate('--date', parsed.values.date), scheduled: parsed.values.scheduled, format };
  const config = loadConfig();
  const pool = createPool(config.databaseUrl, 2);
  const db = createDb(pool);
  try {
    const runId = `manual-${new Date().toISOString().replace(/[-:.]/g, '').replace('T', '-').replace('Z', '')}`;
    const { runChecks } = createCheckActivities({ config, pool, db }, { recordStep: false });
    const out = await runChecks({
      date: args.date,
      run: { workflowId: 'manual-check', runId },
      scheduled: args.scheduled,
    });
    const report = { date: args.date, runId, counts: out.counts, results: out.results };
    console.log(args.format === 'json' ? formatReportJson(report) : formatReportTable(report));
    const { fail } = out.counts;
    return fail > 0 ? EXIT.failed : EXIT.ok;
  } finally {
    await db.destroy();
  }
}

if (require.main === module) runCommand('check', main);
