-- grain: one row: whether the date's fact partition has a valid unique index on event_id (is_by_key), and the
-- event_ids that appear more than once (their number, the surplus rows, up to five examples).
-- the partition's primary key (event_id) makes duplicates impossible: while it is there and valid the check reads
-- the catalog only; when it was lost or disabled, the date's facts are counted by event_id.
-- in psql: psql "$DATABASE_URL" -v date_key=20241217 -f warehouse/checks/uniqueness.sql
with guard as (
    select exists (
        select
        from pg_inherits as h
        inner join pg_class as c on c.oid = h.inhrelid
        inner join pg_index as i on i.indrelid = c.oid
        inner join pg_attribute as a on a.attrelid = c.oid and a.attnum = i.indkey[0]
        where h.inhparent = 'warehouse.fact_events'::regclass
            and c.relname = 'fact_events_' || :'date_key'::int
            and i.indisunique
            and i.indisvalid
            and i.indisready
            and a.attname = 'event_id'
    ) as is_by_key
)

select
    g.is_by_key,
    count(d.event_id) as count_duplicated_ids,
    coalesce(sum(d.copies - 1), 0) as count_extra_rows,
    (array_agg(d.event_id::text order by d.event_id) filter (where d.event_id is not null))[1:5] as examples
from guard as g
left join lateral (
    select
        f.event_id,
        count(*) as copies
    from warehouse.fact_events as f
    where f.date_key = :'date_key'::int
        and not g.is_by_key
    group by f.event_id
    having count(*) > 1
) as d on true
group by g.is_by_key;
