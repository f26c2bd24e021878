import { type Kysely, sql } from 'kysely';

/**
 * A date's first fact load now writes its partition with CREATE TABLE AS, which may key the staged events with a
 * parallel worker (INSERT ... SELECT may not), and then gives it what `create table (like warehouse.fact_events
 * including defaults including constraints)` gave: the parent's NOT NULL columns and defaults, and the date_key check
 * that spares ATTACH PARTITION its validation scan. One ALTER TABLE, so one scan checks every NOT NULL and the check.
 * DDL takes no bind parameters, so the date key reaches it as a function argument, as for fact_partition_create.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function warehouse.fact_partition_constrain(p_date_key int) returns void
    language plpgsql as $$
    declare
      t text := 'fact_events_' || p_date_key;
      changes text;
    begin
      select string_agg(concat_ws(', ',
               case when a.attnotnull then format('alter column %I set not null', a.attname) end,
               case when d.adbin is not null
                 then format('alter column %I set default %s', a.attname, pg_get_expr(d.adbin, d.adrelid)) end),
               ', ' order by a.attnum)
        into changes
      from pg_attribute a
      left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where a.attrelid = 'warehouse.fact_events'::regclass and a.attnum > 0 and not a.attisdropped
        and (a.attnotnull or d.adbin is not null);
      execute format('alter table warehouse.%I %s, add constraint %I check (date_key = %s)',
        t, changes, t || '_date_key', p_date_key);
      execute format('comment on table warehouse.%I is %L', t, 'Partition of warehouse.fact_events for date_key ' || p_date_key || '.');
    end $$;
    comment on function warehouse.fact_partition_constrain(int) is 'Gives warehouse.fact_events_YYYYMMDD, written by CREATE TABLE AS, the NOT NULL columns and defaults of warehouse.fact_events and its date_key check, in one ALTER TABLE (one scan). A NULL user_key fails it with 23502, as the insert into a table made with LIKE did.';
    revoke execute on function warehouse.fact_partition_constrain(int) from public;
  `.execute(db);
}
