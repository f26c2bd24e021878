import { type Kysely, sql } from 'kysely';

/** Comments on the migrator's own bookkeeping tables, so every table in ops is documented and readable by analyst. */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    comment on table ops.kysely_migration is 'Migrations applied to this database, by name, in order.';
    comment on column ops.kysely_migration.name is 'Migration file name (without extension).';
    comment on column ops.kysely_migration.timestamp is 'When the migration was applied.';
    comment on table ops.kysely_migration_lock is 'Lock row that keeps two migrators from running at once.';
    comment on column ops.kysely_migration_lock.id is 'Lock id.';
    comment on column ops.kysely_migration_lock.is_locked is '1 while a migrator holds the lock.';
    grant select on ops.kysely_migration, ops.kysely_migration_lock to analyst;
  `.execute(db);
}
