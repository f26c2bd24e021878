import { type Kysely, sql } from 'kysely';

/** Schemas, the extension the SCD2 exclusion constraint needs, and the read-only analyst role. */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create extension if not exists btree_gist;

    create schema if not exists staging;
    create schema if not exists warehouse;
    create schema if not exists marts;
    create schema if not exists ops;

    comment on schema staging is 'Transient per-date load tables; rebuilt by every load, never read by analysts.';
    comment on schema warehouse is 'The star schema: conformed dimensions and the event fact table.';
    comment on schema marts is 'Aggregates rebuilt from the warehouse for the dates each run affects.';
    comment on schema ops is 'Pipeline bookkeeping: Kafka offsets, lake manifest, runs, data-quality results, alerts.';

    do $$
    begin
      if not exists (select from pg_roles where rolname = 'analyst') then
        -- no password here: make migrate sets it from ANALYST_PASSWORD (and allows the login) when configured
        create role analyst nologin;
      end if;
    end
    $$;
    alter role analyst set default_transaction_read_only = on;

    revoke all on schema staging from public;
    revoke create on schema public from public;
    do $$
    begin
      execute format('revoke temporary on database %I from public', current_database());
      execute format('grant connect on database %I to analyst', current_database());
    end
    $$;

    grant usage on schema warehouse, marts, ops to analyst;
    alter default privileges in schema warehouse grant select on tables to analyst;
    alter default privileges in schema marts grant select on tables to analyst;
    alter default privileges in schema ops grant select on tables to analyst;
  `.execute(db);
}
