import type { CheckResult } from './checks';

/** How `make check` prints its results: a table for people (the default), a JSON document for CI pipelines. */

export const REPORT_FORMATS = ['table', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export function isReportFormat(value: unknown): value is ReportFormat {
  return REPORT_FORMATS.includes(value as ReportFormat);
}

export interface CheckReport {
  date: string;
  runId: string;
  counts: Record<CheckResult['status'], number>;
  results: CheckResult[];
}

/** One JSON document: the date, the run, the counts and one object per check (name, table, status, observed, threshold, details). */
export function formatReportJson(report: CheckReport): string {
  return JSON.stringify(
    {
      date: report.date,
      runId: report.runId,
      ok: report.counts.fail === 0,
      counts: report.counts,
      checks: report.results.map((r) => ({
        name: r.check,
        table: r.table,
        status: r.status,
        observed: r.observed,
        threshold: r.threshold,
        details: r.details,
      })),
    },
    null,
    2,
  );
}

/** The aligned table with a heading and the counts line. */
export function formatReportTable(report: CheckReport): string {
  const rows = [['check', 'table', 'status', 'observed', 'threshold', 'details']];
  for (const r of report.results) {
    rows.push([
      r.check,
      r.table,
      r.status.toUpperCase(),
      r.observed === null ? '-' : String(r.observed),
      r.threshold,
      r.details,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const table = rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  );
  const { pass, warn, fail, skip } = report.counts;
  return [
    `Data-quality checks for ${report.date} (run ${report.runId}, recorded in ops.dq_results)`,
    '',
    ...table,
    '',
    `${pass} pass, ${warn} warn, ${fail} fail, ${skip} skip${fail ? ' — exit 1' : ''}`,
  ].join('\n');
}
