-- grain: one row per date in ops.staged_dates: the counts of the date's last stage run (records read, set aside,
-- collapsed as duplicates, staged). Written in the stage run's transaction.
insert into ops.staged_dates as staged_dates (
    dt,
    files,
    rows_read,
    rows_set_aside,
    duplicates,
    rows_staged,
    staged_at
)
values (
    :'date'::date,
    :'files'::int,
    :'rows_read'::bigint,
    :'rows_set_aside'::bigint,
    :'duplicates'::bigint,
    :'rows_staged'::bigint,
    now()
)
on conflict (dt) do update set
    files = excluded.files,
    rows_read = excluded.rows_read,
    rows_set_aside = excluded.rows_set_aside,
    duplicates = excluded.duplicates,
    rows_staged = excluded.rows_staged,
    staged_at = excluded.staged_at;
