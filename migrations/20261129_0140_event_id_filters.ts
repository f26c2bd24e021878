import { type Kysely, sql } from 'kysely';

/**
 * The event_id filter of each date (lib/id-filter.ts) and the look-up candidates each stage run found against its
 * neighbours' filters: a date's first fact load then looks for its event_ids under a neighbouring date only among
 * those candidates (activities/facts.ts crossDateIds), instead of a merge join of every staged event_id with every
 * fact of the neighbour. A date whose filter is missing, or whose filter changed since the candidates were found,
 * is looked up by the join as before.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- one sequence for every date's filter: a filter dropped and written anew never takes a generation back
    create sequence ops.event_id_filter_generations;

    create table ops.event_id_filters (
        dt date primary key,
        bits bytea not null,
        generation bigint not null default nextval('ops.event_id_filter_generations'),
        updated_at timestamptz not null default now()
    );

    -- random bits do not compress: stored out of line as they are, without a compression attempt
    alter table ops.event_id_filters alter column bits set storage external;

    comment on table ops.event_id_filters is 'One row per event date whose stage runs kept a filter of its event_ids (lib/id-filter.ts): every event_id the date''s facts can hold tests positive. Written with ops.date_stages by each stage run; a run that could not fingerprint every event_id deletes it, and a date loaded before it had one never gets one.';
    comment on column ops.event_id_filters.dt is 'Event date (UTC).';
    comment on column ops.event_id_filters.bits is 'A blocked Bloom filter: 512-bit blocks of little-endian 32-bit words, 4 bits per event_id.';
    comment on column ops.event_id_filters.generation is 'Taken from ops.event_id_filter_generations by every write: look-up candidates found against another generation are not used.';
    comment on column ops.event_id_filters.updated_at is 'When the last stage run that wrote it committed.';

    create table ops.cross_date_candidates (
        dt date not null,
        neighbour_dt date not null,
        neighbour_generation bigint not null,
        event_ids uuid[] not null,
        primary key (dt, neighbour_dt)
    );

    comment on table ops.cross_date_candidates is 'One row per event date and neighbouring date (the day before or after) whose filter its last stage run checked: the staged event_ids the filter does not rule out. Rewritten by every stage run of the date.';
    comment on column ops.cross_date_candidates.dt is 'Event date (UTC) of the staged events.';
    comment on column ops.cross_date_candidates.neighbour_dt is 'The neighbouring date whose filter was checked.';
    comment on column ops.cross_date_candidates.neighbour_generation is 'ops.event_id_filters.generation of that filter when it was checked.';
    comment on column ops.cross_date_candidates.event_ids is 'The staged event_ids the filter may hold; the fact load looks for these only under the neighbouring date.';
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    drop table ops.cross_date_candidates;
    drop table ops.event_id_filters;
    drop sequence ops.event_id_filter_generations;
  `.execute(db);
}
