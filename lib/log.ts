import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger as SdkLogger, LogLevel, LogMetadata } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import pino, { type Logger } from 'pino';
import type { Config } from './config';
import { redact } from './redact';

/**
 * Structured logs (SPEC section 10): one JSON object a line (pino) for log search, or a short readable line for a
 * terminal. Inside an activity every line carries workflowId, runId, date and step (the activity interceptor binds
 * them); the Temporal SDK's own logs go through the same logger.
 */

export type { Logger };

/** Pipeline step of each activity, as ops.pipeline_runs names it. */
const STEP_OF: Record<string, string> = {
  landEvents: 'land',
  stageEvents: 'stage',
  loadDimensions: 'dimensions',
  loadFacts: 'facts',
  refreshMarts: 'marts',
  runChecks: 'checks',
  sendAlerts: 'alert',
  sendBackfillSummary: 'alert',
};

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const BINDING_ORDER = ['workflowId', 'runId', 'date', 'step'];

/** One JSON log line as `HH:MM:SS LEVEL message key=value …` (bound fields first). */
export function prettyLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json);
  } catch {
    return json;
  }
  const { time, level, msg, ...rest } = entry;
  const at = new Date(typeof time === 'number' ? time : Date.now()).toISOString().slice(11, 19);
  const keys = [
    ...BINDING_ORDER.filter((k) => k in rest),
    ...Object.keys(rest).filter((k) => !BINDING_ORDER.includes(k)),
  ];
  const fields = keys
    .map((k) => {
      const v = rest[k];
      return `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`;
    })
    .join(' ');
  return `${at} ${(LEVEL_NAMES[Number(level)] ?? String(level)).padEnd(5)} ${String(msg ?? '')}${fields ? `  ${fields}` : ''}\n`;
}

export interface LoggerOptions {
  format: Config['logFormat'];
  level: string;
  /** Where lines go (default stdout). */
  write?: (line: string) => void;
}

/** The process's logger: JSON lines, or pretty ones when LOG_FORMAT=pretty (or unset on a terminal). */
export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.format === 'pretty' || (options.format === null && process.stdout.isTTY === true);
  const out = options.write ?? ((line: string) => process.stdout.write(line));
  // a secret that reaches a message (an error naming a URL with its password) is redacted like everywhere else
  const write = (line: string) => out(redact(line));
  return pino(
    { level: options.level, base: undefined, timestamp: pino.stdTimeFunctions.epochTime },
    { write: pretty ? (line: string) => write(prettyLine(line)) : write },
  );
}

export function loggerFromConfig(config: Pick<Config, 'logFormat' | 'logLevel'>): Logger {
  return createLogger({ format: config.logFormat, level: config.logLevel });
}

const activityScope = new AsyncLocalStorage<Logger>();

/** The logger of the running activity (its bindings on every line), or `fallback` outside one. */
export function currentLogger(fallback?: Logger): Logger | undefined {
  return activityScope.getStore() ?? fallback;
}

/** The date (or range) an activity input is about: `date`, or `from`…`to`. */
function inputDate(input: unknown): string | undefined {
  if (!input || typeof input !== 'object') return undefined;
  const i = input as { date?: unknown; from?: unknown; to?: unknown; dates?: unknown };
  if (typeof i.date === 'string') return i.date;
  if (typeof i.from === 'string' && typeof i.to === 'string') return `${i.from}..${i.to}`;
  if (Array.isArray(i.dates) && typeof i.dates[0] === 'string') return i.dates.join(',');
  return undefined;
}

/** The date a workflow id names (`daily-YYYY-MM-DD`, `backfill-FROM-TO`), for activities whose input has none. */
function workflowDate(workflowId: string | undefined): string | undefined {
  const m = /^(?:daily-(\d{4}-\d{2}-\d{2})|backfill-(\d{4}-\d{2}-\d{2})-(\d{4}-\d{2}-\d{2}))$/.exec(workflowId ?? '');
  if (!m) return undefined;
  return m[1] ?? `${m[2]}..${m[3]}`;
}

/**
 * Binds workflowId, runId, date and step to every line written inside an activity (through `currentLogger()`), and
 * logs each activity's end with its duration and attempt, or its error.
 */
export function activityLogging(logger: Logger): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        const info = ctx.info;
        const log = logger.child({
          workflowId: info.workflowExecution?.workflowId,
          runId: info.workflowExecution?.runId,
          date: inputDate(input.args[0]) ?? workflowDate(info.workflowExecution?.workflowId),
          step: STEP_OF[info.activityType] ?? info.activityType,
          activity: info.activityType,
          attempt: info.attempt,
        });
        const started = performance.now();
        log.debug('activity started');
        try {
          const result = await activityScope.run(log, () => next(input));
          log.info({ ms: Math.round(performance.now() - started) }, 'activity completed');
          return result;
        } catch (err) {
          log.warn({ ms: Math.round(performance.now() - started), err: (err as Error)?.message }, 'activity failed');
          throw err;
        }
      },
    },
  });
}

const SDK_LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** The Temporal SDK's logger interface over pino, for Runtime.install({ logger }). */
export function sdkLogger(logger: Logger): SdkLogger {
  const at =
    (level: LogLevel) =>
    (message: string, meta?: LogMetadata): void =>
      logger[SDK_LEVELS[level]]({ ...(meta ?? {}) }, message);
  return {
    log: (level, message, meta) => at(level)(message, meta),
    trace: at('TRACE'),
    debug: at('DEBUG'),
    info: at('INFO'),
    warn: at('WARN'),
    error: at('ERROR'),
  };
}
