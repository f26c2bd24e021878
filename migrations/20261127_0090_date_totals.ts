import { type Kysely, sql } from 'kysely';

/**
 * warehouse.date_totals: one row per UTC date with facts, its fact rows and users, written with the date's
 * user_days rows by every fact load (warehouse/sql/user_activity.sql). The volume check reads its window from
 * here: one row per day, where summing user_days read one row per user and day, more with every day of history
 * until the window was full.
 *
 * ops.staged_dates.duplicates also counts the records a fact load leaves out because their event_id is a fact of
 * the previous or next date (activities/facts.ts), so the reconciliation check matches such a date.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table warehouse.date_totals (
      date_key int primary key,
      events bigint not null,
      users int not null
    );
    comment on table warehouse.date_totals is 'One row per UTC date with facts: its fact rows and users, rewritten with the date''s user_days rows by each fact load of the date. The volume check reads its window here.';
    comment on column warehouse.date_totals.date_key is 'UTC date as YYYYMMDD, joins dim_date.';
    comment on column warehouse.date_totals.events is 'Fact rows of the date (the sum of its user_days.events).';
    comment on column warehouse.date_totals.users is 'Users with facts on the date (its user_days rows).';

    insert into warehouse.date_totals (date_key, events, users)
    select ud.date_key, sum(ud.events), count(*)
    from warehouse.user_days as ud
    group by ud.date_key;

    grant select on warehouse.date_totals to analyst;

    comment on column ops.staged_dates.duplicates is 'Surplus records of an event_id: delivered twice and collapsed into one, or left out by the fact load because the event_id is a fact of the previous or next date.';
  `.execute(db);
}
