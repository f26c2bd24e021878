#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { EXIT, EXIT_CODES_HELP, UsageError, reportError } from '../lib/cli';

/**
 * `nightshift <command> [flags]`: the project's command (package.json `bin`, compiled to dist/scripts/nightshift.js);
 * the Makefile targets call it. Each command lives in its own scripts/<command>.ts and is loaded only when asked for.
 */

type Main = (argv: string[]) => Promise<number>;

// required lazily: `nightshift check` need not load the Temporal worker's native library
/* eslint-disable @typescript-eslint/no-require-imports */
const COMMANDS: Record<string, { summary: string; main: () => Main }> = {
  worker: {
    summary: 'run a worker in the foreground',
    main: () => (require('./worker') as typeof import('./worker')).main,
  },
  migrate: {
    summary: 'apply the database migrations',
    main: () => (require('./migrate') as typeof import('./migrate')).main,
  },
  produce: {
    summary: 'produce realistic events into Kafka',
    main: () => (require('./produce') as typeof import('./produce')).main,
  },
  check: {
    summary: 'run the data-quality checks for a date',
    main: () => (require('./check') as typeof import('./check')).main,
  },
  backfill: {
    summary: 're-run a date or a range through Temporal',
    main: () => (require('./backfill') as typeof import('./backfill')).main,
  },
  schedule: {
    summary: 'create/update (create) or remove (delete) the daily schedule',
    main: () => (require('./schedule') as typeof import('./schedule')).main,
  },
  demo: {
    summary: 'produce a week of events and run it through Temporal',
    main: () => (require('./demo') as typeof import('./demo')).main,
  },
  bench: {
    summary: "time every stage against the machine's raw COPY speed",
    main: () => (require('./bench') as typeof import('./bench')).main,
  },
  psql: { summary: 'psql as the read-only analyst role (arguments go to psql)', main: () => psql },
};
/* eslint-enable @typescript-eslint/no-require-imports */

const HELP = `usage: nightshift <command> [flags]     (nightshift <command> --help for its flags)

${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`)
  .join('\n')}

${EXIT_CODES_HELP}`;

const PSQL_HELP = `Open psql on the warehouse as the read-only analyst role; every argument is passed to psql.

usage: nightshift psql [psql arguments]     e.g. nightshift psql -c 'select count(*) from warehouse.fact_events'
   or: make psql ARGS="-c 'select 1'"

Exit code: psql's own.`;

/** The folder holding package.json: the project root, from the TypeScript sources and from dist/ alike. */
function projectRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

/** scripts/psql.sh with the arguments as given: psql owns the terminal, so Ctrl-C cancels its query, not us. */
async function psql(argv: string[]): Promise<number> {
  if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) {
    console.log(PSQL_HELP);
    return EXIT.ok;
  }
  const child = spawn('bash', [path.join(projectRoot(), 'scripts', 'psql.sh'), ...argv], { stdio: 'inherit' });
  const ignore = () => undefined;
  process.on('SIGINT', ignore);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + 2 : EXIT.failed)));
    });
  } finally {
    process.off('SIGINT', ignore);
  }
}

/** The Node.js major the project pins (.nvmrc); an older one (a machine's own, through npx) is named, not refused. */
const PINNED_NODE_MAJOR = 24;

async function main(argv: string[]): Promise<number> {
  if (Number(process.versions.node.split('.')[0]) < PINNED_NODE_MAJOR) {
    console.error(
      `nightshift: running on Node.js ${process.version}; the project runs on Node.js ${PINNED_NODE_MAJOR} ` +
        `(make install fetches it into .tools/node/bin: put that first on PATH, or run the make targets)`,
    );
  }
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(HELP);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command)
    throw new UsageError(`unknown command ${JSON.stringify(name)}; one of ${Object.keys(COMMANDS).join(', ')}`);
  return command.main()(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => process.exit(reportError(process.argv[2] ?? '', err)),
);
