import { type ParseArgsConfig, parseArgs } from 'node:util';
import { describeFatal, redact } from './redact';
import { dateProblem } from './temporal';

/**
 * The command line of every `nightshift` command (scripts/*.ts): one parser (`node:util` parseArgs, strict), one set
 * of exit codes, one way to report an error. A script exports `main(argv)` and, when run as a file, hands it to
 * runCommand.
 */

/** Exit codes of every `nightshift` command (README: "The nightshift command"). */
export const EXIT = {
  /** Done: every date succeeded, every check passed (warnings and skips included). */
  ok: 0,
  /** The work ran and failed: a date's run or a check failed, a service could not be reached. */
  failed: 1,
  /** Bad input: an unknown command or flag, a missing or invalid value. Nothing was started. */
  usage: 2,
  /** Bad configuration: an environment variable is invalid (the message names it). Nothing was started. */
  config: 3,
  /** Interrupted by Ctrl-C (a backfill keeps running in Temporal). */
  interrupted: 130,
} as const;

export const EXIT_CODES_HELP = `Exit codes: ${EXIT.ok} ok, ${EXIT.failed} the run or a check failed, ${EXIT.usage} bad arguments, \
${EXIT.config} bad configuration, ${EXIT.interrupted} interrupted.`;

/** Bad command-line input; the message names the value and the fix. Exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<O extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O & { help: { type: 'boolean'; short: 'h' } }; allowPositionals: true }>
>;

/**
 * Parses `argv` against `options` (strict: an unknown flag or a missing value is a UsageError). Returns 'help' when
 * --help or -h is given. Positional arguments are refused unless `positionals` is true.
 */
export function parseCommandLine<const O extends Options>(
  argv: string[],
  options: O,
  { positionals = false }: { positionals?: boolean } = {},
): Parsed<O> | 'help' {
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } } as O & { help: { type: 'boolean'; short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.replace(/\s*To specify a positional argument.*$/s, '')}`, {
      cause: err,
    });
  }
  if ((parsed.values as { help?: boolean }).help) return 'help';
  if (!positionals && parsed.positionals.length > 0) {
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}; flags start with --`);
  }
  return parsed;
}

/** A whole number from `min` to `max`, or a UsageError naming the flag. */
export function wholeNumber(flag: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`${flag} ${JSON.stringify(value)} is not a whole number ${range}`);
  }
  return n;
}

/** A share from 0 to 1 (`below1`: strictly below 1), or a UsageError naming the flag. */
export function share(flag: string, value: string, { below1 = false } = {}): number {
  const r = Number(value);
  if (value.trim() === '' || !Number.isFinite(r) || r < 0 || r > 1 || (below1 && r === 1)) {
    throw new UsageError(`${flag} ${JSON.stringify(value)} is not a share between 0 and 1, e.g. ${flag} 0.01`);
  }
  return r;
}

/** A calendar day YYYY-MM-DD, or a UsageError naming the flag and the problem. */
export function calendarDate(flag: string, value: string): string {
  const problem = dateProblem(value);
  if (problem) throw new UsageError(`${flag}: ${problem}; give a real day, e.g. ${flag} 2024-02-29`);
  return value;
}

/** The exit code for an error that ended a command (see EXIT). */
export function exitCodeOf(err: unknown): number {
  const name = (err as { name?: unknown } | null)?.name;
  if (name === 'UsageError') return EXIT.usage;
  // ConfigError, DqConfigError, AlertConfigError, …: a setting is wrong
  if (typeof name === 'string' && name.endsWith('ConfigError')) return EXIT.config;
  return EXIT.failed;
}

/** Prints an error as the command `name` reports it: one line for bad input or configuration, the whole error else. */
export function reportError(name: string, err: unknown): number {
  const code = exitCodeOf(err);
  // every line passes through the redaction: a connection error can carry a password, a webhook token
  const message = redact(err instanceof Error ? err.message : String(err));
  if (code === EXIT.usage) console.error(`nightshift ${name}: ${message}\n(nightshift ${name} --help shows the usage)`);
  else if (code === EXIT.config) console.error(`nightshift ${name}: ${message}`);
  else console.error(`nightshift ${name}: ${describeFatal(err)}`);
  return code;
}

/** Runs `main` as this process's command and exits with its code, or with the code of the error that ended it. */
export function runCommand(
  name: string,
  main: (argv: string[]) => Promise<number>,
  argv = process.argv.slice(2),
): void {
  main(argv).then(
    (code) => process.exit(code),
    (err: unknown) => process.exit(reportError(name, err)),
  );
}
