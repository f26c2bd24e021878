import { type Kysely, sql } from 'kysely';

/**
 * dim_user's ranges of one user never overlap: enforced by statement-level triggers instead of the GiST exclusion
 * constraint dim_user_no_overlap. Every insert into dim_user paid a GiST insertion and probe on a btree_gist text
 * key: 23,415 versions took 3.3–7.4 s against 0.23 s without the constraint (EXPLAIN ANALYZE in the issue 17 note),
 * and the cost grows with the index. The triggers check, once per statement, the versions of the users the
 * statement wrote, through the dim_user_version btree (user_id, valid_from): sorted by valid_from, a user's ranges
 * overlap exactly when one starts before the previous one ends.
 *
 * Concurrency: the check first takes the dim_user lock (the transaction-level advisory lock the loads take,
 * lib/locks.ts), held until the transaction ends, then reads with a new snapshot (READ COMMITTED). Of two
 * transactions writing overlapping versions, the second one's check waits for the first to end and then sees its
 * rows, so at most one commits. Under REPEATABLE READ or SERIALIZABLE the check could not see rows committed after
 * the transaction's snapshot, so writes to dim_user are refused there.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function warehouse.dim_user_check_overlaps() returns trigger
    language plpgsql
    as $fn$
    declare
      overlap record;
    begin
      if current_setting('transaction_isolation') <> 'read committed' then
        raise exception 'warehouse.dim_user is written in READ COMMITTED transactions only (its overlap check reads rows committed meanwhile)'
          using errcode = '25000';
      end if;
      -- the dim_user lock of lib/locks.ts (DIM_USER_LOCK_CLASS): a load holds it already, anyone else waits here
      perform pg_advisory_xact_lock(hashtext('nightshift:dim_user'), 0);
      select versions.user_id, versions.valid_from, versions.previous_to
      into overlap
      from (select distinct written.user_id from written) as written_users
      cross join lateral (
        select
          dim_user.user_id,
          dim_user.valid_from,
          lag(coalesce(dim_user.valid_to, 'infinity')) over (order by dim_user.valid_from) as previous_to
        from warehouse.dim_user as dim_user
        where dim_user.user_id = written_users.user_id
      ) as versions
      where versions.previous_to > versions.valid_from
      limit 1;
      if found then
        raise exception 'conflicting key value violates exclusion constraint "dim_user_no_overlap"'
          using errcode = 'exclusion_violation',
            table = 'dim_user',
            schema = 'warehouse',
            constraint = 'dim_user_no_overlap',
            detail = format('User %s has a version from %s while the previous one lasts until %s.',
              overlap.user_id, overlap.valid_from, overlap.previous_to);
      end if;
      return null;
    end
    $fn$;
    comment on function warehouse.dim_user_check_overlaps() is 'Trigger function: fails the statement when a user it wrote has two dim_user versions whose [valid_from, valid_to) ranges overlap. Takes the dim_user advisory lock first, so concurrent writers are checked one after the other.';

    alter table warehouse.dim_user drop constraint dim_user_no_overlap;
    create trigger dim_user_no_overlap_insert after insert on warehouse.dim_user
      referencing new table as written for each statement execute function warehouse.dim_user_check_overlaps();
    create trigger dim_user_no_overlap_update after update on warehouse.dim_user
      referencing new table as written for each statement execute function warehouse.dim_user_check_overlaps();
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    drop trigger dim_user_no_overlap_update on warehouse.dim_user;
    drop trigger dim_user_no_overlap_insert on warehouse.dim_user;
    drop function warehouse.dim_user_check_overlaps();
    alter table warehouse.dim_user add constraint dim_user_no_overlap exclude using gist (
      user_id with =,
      tstzrange(valid_from, coalesce(valid_to, 'infinity'), '[)') with &&
    ) deferrable initially deferred;
  `.execute(db);
}
