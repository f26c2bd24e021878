import { inspect } from 'node:util';

/**
 * Secrets never reach a terminal or a log: every error message and log line an entry point prints passes through
 * `redact`. It masks what looks like a secret (a password in a URL, a Slack webhook path, a `password=`/`token=`
 * parameter, a bearer token, a PEM private key) and every value the configuration registered as secret.
 */

export const MASK = '***';

const secrets = new Set<string>();

/** Remembers secret values (a password, an API key, a webhook token) so that `redact` masks them anywhere. */
export function registerSecrets(...values: (string | null | undefined)[]): void {
  for (const value of values) {
    // a one- or two-character "secret" would mask half of every message; such values are masked by the patterns
    if (!value || value.length < 3) continue;
    secrets.add(value);
    secrets.add(encodeURIComponent(value));
  }
}

const PATTERNS: [RegExp, string][] = [
  // PEM private keys (a TLS key read into a message)
  [/-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g, `[private key ${MASK}]`],
  // scheme://user:password@host
  [/\b([a-z][a-z0-9+.-]*:\/{0,2}[^\s:/@]*):[^\s@/]*@/gi, `$1:${MASK}@`],
  // Slack incoming webhooks: the path is the credential
  [/(hooks\.slack(?:-gov)?\.com\/services\/)[^\s"'<>)]+/gi, `$1${MASK}`],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/g, `$1 ${MASK}`],
  // password=…, api_key=…, token=…, secret=… in query strings, key=value text and JSON
  [
    /\b((?:ssl)?password|passwd|pwd|api[_-]?key|apikey|access[_-]?token|token|secret|authorization)(["']?\s*[=:]\s*["']?)(?!(?:Bearer|Basic) )([^\s&"',;}]+)/gi,
    `$1$2${MASK}`,
  ],
];

/** The text with every secret it contains masked. */
export function redact(text: string): string {
  let out = text;
  // longest first, so that a secret containing another is masked whole
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) out = out.replaceAll(secret, MASK);
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** A URL with its password masked (for messages that must show where a connection went). */
export function redactUrl(url: string): string {
  return redact(url);
}

/** An error (with its cause chain) as printable, redacted text; `stack` adds the stack traces. */
export function formatError(err: unknown, options: { stack?: boolean } = {}): string {
  if (!(err instanceof Error)) return redact(typeof err === 'string' ? err : inspect(err, { depth: 4 }));
  if (options.stack) return redact(inspect(err, { depth: 4 }));
  const lines: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    lines.push(`${depth ? 'caused by: ' : ''}${current.name}: ${current.message}${code ? ` (${String(code)})` : ''}`);
    current = current.cause;
  }
  if (current !== undefined && !(current instanceof Error)) lines.push(`caused by: ${inspect(current, { depth: 2 })}`);
  return redact(lines.join('\n'));
}

const endpoints: { variable: string; host: string; port: number }[] = [];

/** Remembers which configuration variable names a host:port, so that a refused connection names it. */
export function registerEndpoint(variable: string, host: string, port: number): void {
  if (!endpoints.some((p) => p.variable === variable && p.host === host && p.port === port))
    endpoints.push({ variable, host, port });
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET']);

/** "Cannot connect to host:port (VARIABLE): code" for a network error anywhere in the cause chain, else null. */
export function connectionProblem(err: unknown): string | null {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const { code, address, port, hostname } = e as {
      code?: string;
      address?: string;
      port?: number;
      hostname?: string;
    };
    if (!code || !NETWORK_CODES.has(code)) continue;
    const host = address ?? hostname;
    const named = endpoints.filter((p) => (!host || p.host === host) && (!port || p.port === port));
    const where = host ? `${host}${port ? `:${port}` : ''}` : 'a service';
    const variables = [...new Set(named.map((p) => p.variable))];
    return redact(
      `Cannot connect to ${where}${variables.length ? ` (${variables.join(', ')})` : ''}: ${code}. ` +
        `Start the local stack with \`make up\`, or fix ${variables.length ? variables.join(' / ') : 'the address'} in the environment or .env.`,
    );
  }
  return null;
}

/**
 * The top-level error handler of every entry point: prints the error redacted and exits with `code`. A
 * configuration error prints its message only (it names the variable and the fix); a connection failure leads
 * with the service and the variable to check; anything else prints its stack too.
 */
export function exitWithError(err: unknown, code = 1): never {
  console.error(describeFatal(err));
  process.exit(code);
}

/** What exitWithError prints. */
export function describeFatal(err: unknown): string {
  if (err instanceof Error && /ConfigError$/.test(err.name)) return formatError(err);
  const problem = connectionProblem(err);
  if (problem)
    return `${problem}
${formatError(err)}`;
  return formatError(err, { stack: true });
}
