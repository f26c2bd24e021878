import { readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';

/**
 * Loads the repo-owned SQL files under warehouse/sql/ (the load steps) and warehouse/checks/ (the data-quality
 * checks of lib/checks.ts) and runs them with psql's variable syntax, so each file
 * also runs as it is in psql (`psql -v date=2024-12-17 -v events_table=events_20241217 -f warehouse/sql/….sql`):
 *   :'name'  a value, always sent as a bound parameter ($1, $2, …), never spliced;
 *   :"name"  an identifier, quoted with escapeIdentifier (the only text placed into the statement).
 * A file may hold several statements separated by `;` at the end of a line; they run one after the other.
 */

export const SQL_DIR = path.resolve(__dirname, 'sql');
/** The checks' SQL, one file per check (named as the check). */
export const CHECKS_SQL_DIR = path.resolve(__dirname, 'checks');

const cache = new Map<string, string[]>();

/** The statements of <dir>/<name>.sql (dir: warehouse/sql/ unless given), comments kept, read once per process. */
export function sqlStatements(name: string, dir: string = SQL_DIR): string[] {
  const file = path.join(dir, `${name}.sql`);
  let statements = cache.get(file);
  if (!statements) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(
        `cannot read ${file}: the SQL files ship with the code under warehouse/ (make build copies them to dist/)`,
        { cause: err },
      );
    }
    statements = splitStatements(text);
    cache.set(file, statements);
  }
  return statements;
}

/** Splits at a `;` that ends a line outside a `--` comment line; drops pieces that hold only comments. */
function splitStatements(text: string): string[] {
  const statements: string[] = [];
  let current: string[] = [];
  for (const line of text.split('\n')) {
    current.push(line);
    const code = line.trim();
    if (!code.startsWith('--') && /;\s*(--.*)?$/.test(code)) {
      statements.push(
        current
          .join('\n')
          .trim()
          .replace(/;\s*(--.*)?$/, ''),
      );
      current = [];
    }
  }
  statements.push(current.join('\n').trim());
  return statements.filter((s) => s.replace(/--[^\n]*/g, '').trim() !== '');
}

export interface SqlVariables {
  /** Values bound as parameters, referenced as :'name'. */
  values?: Record<string, unknown>;
  /** Identifiers quoted into the text, referenced as :"name". */
  identifiers?: Record<string, string>;
}

/** Turns one statement with psql variables into a parameterized query. */
export function bindStatement(
  statement: string,
  vars: SqlVariables,
  escapeIdentifier: (id: string) => string,
): pg.QueryConfig {
  const values: unknown[] = [];
  const positions = new Map<string, number>();
  const text = statement
    .replace(/(?<!:):"(\w+)"/g, (_, name: string) => {
      const id = vars.identifiers?.[name];
      if (id === undefined) throw new Error(`SQL identifier :"${name}" has no value`);
      return escapeIdentifier(id);
    })
    .replace(/(?<!:):'(\w+)'/g, (_, name: string) => {
      if (!vars.values || !(name in vars.values)) throw new Error(`SQL value :'${name}' has no value`);
      let position = positions.get(name);
      if (position === undefined) {
        values.push(vars.values[name]);
        position = values.length;
        positions.set(name, position);
      }
      return `$${position}`;
    });
  return { text, values };
}

/** Runs every statement of <dir>/<name>.sql (dir: warehouse/sql/ unless given) in order on one client; returns each statement's result. */
export async function runSqlFile(
  client: Pick<pg.ClientBase, 'query' | 'escapeIdentifier'>,
  name: string,
  vars: SqlVariables = {},
  dir: string = SQL_DIR,
): Promise<pg.QueryResult[]> {
  const results: pg.QueryResult[] = [];
  for (const statement of sqlStatements(name, dir)) {
    results.push(await client.query(bindStatement(statement, vars, (id) => client.escapeIdentifier(id))));
  }
  return results;
}
