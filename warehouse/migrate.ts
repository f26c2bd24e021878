import { promises as fs } from 'node:fs';
import path from 'node:path';
import { type Kysely, sql } from 'kysely';
import { type Migration, type MigrationProvider, Migrator } from 'kysely/migration';

export const MIGRATIONS_DIR = path.resolve(__dirname, '..', 'migrations');

/**
 * Loads every migration file in MIGRATIONS_DIR. The import happens here rather than in Kysely's
 * FileMigrationProvider so that whatever loads this module (tsx, vitest) also loads the .ts files.
 */
class MigrationFolderProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await fs.readdir(MIGRATIONS_DIR)).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort();
    const migrations: Record<string, Migration> = {};
    for (const file of files) {
      const module = (await import(path.join(MIGRATIONS_DIR, file))) as Migration;
      migrations[file.replace(/\.(ts|js)$/, '')] = module;
    }
    return migrations;
  }
}

/** Applies every pending migration in order; returns the names applied. Safe to run again. */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: new MigrationFolderProvider(), migrationTableSchema: 'ops' });
  const { error, results = [] } = await migrator.migrateToLatest();
  const failed = results.find((r) => r.status === 'Error');
  if (error || failed) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Migration ${failed?.migrationName ?? '(unknown)'} failed: ${reason}`, { cause: error });
  }
  return results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * Sets the analyst role's password from configuration and allows its login; without one the role stays as it is
 * (created unable to log in). The password travels as a bound parameter into a session setting that a DO block
 * quotes with %L: it is never spliced into SQL text by the client, and the setting is cleared afterwards.
 */
export async function configureAnalystRole(db: Kysely<any>, password: string | null): Promise<'set' | 'unset'> {
  if (password === null) return 'unset';
  await db.connection().execute(async (conn) => {
    await sql`select set_config('nightshift.analyst_password', ${password}, false)`.execute(conn);
    try {
      await sql`
        do $$
        begin
          execute format('alter role analyst login password %L', current_setting('nightshift.analyst_password'));
        end
        $$`.execute(conn);
    } finally {
      await sql`select set_config('nightshift.analyst_password', '', false)`.execute(conn);
    }
  });
  return 'set';
}
