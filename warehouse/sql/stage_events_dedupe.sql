-- grain: one row per surplus record of an event_id in the date's staging table (the same event landed twice,
-- e.g. a producer retry). All but the first by (kafka_partition, kafka_offset) are removed, so staging holds one
-- row per event_id and the later steps need no sort to collapse duplicates. candidate_ids, when not null, are the
-- only event_ids that can repeat (the stage run fingerprinted every id it copied: lib/repeated-ids.ts); null
-- looks at every row.
with duplicated_events as (
    select staged.event_id
    from staging.:"events_table" as staged
    where :'candidate_ids'::uuid[] is null or staged.event_id = any(:'candidate_ids'::uuid[])
    group by staged.event_id
    having count(*) > 1
),

ranked_records as (
    select
        staged.ctid as record_ctid,
        row_number() over (
            partition by staged.event_id
            order by staged.kafka_partition, staged.kafka_offset
        ) as record_number
    from staging.:"events_table" as staged
    where staged.event_id in (select duplicated_events.event_id from duplicated_events)
)

delete from staging.:"events_table" as staged
using ranked_records
where staged.ctid = ranked_records.record_ctid
    and ranked_records.record_number > 1;
