-- grain: one row: the repeated event_ids among the records of a date's staging table (staging.events_<date_key>).
-- the reconciliation check runs it for dates staged before ops.staged_dates recorded their duplicates, and only
-- while the staging table is there.
-- in psql: psql "$DATABASE_URL" -v staging_table=events_20241217 -f warehouse/checks/reconciliation_staging_duplicates.sql
select count(*) - count(distinct staged.event_id) as duplicates
from staging.:"staging_table" as staged;
