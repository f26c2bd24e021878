-- grain: one row: the date's facts whose device_key has no warehouse.dim_device row. A part of the integrity check
-- (lib/checks.ts parts: its row is merged into integrity.sql's before the check is judged), in a file of its own so
-- that it runs beside integrity.sql on the checks' other connection: it is the one statement of the check that
-- scans the date's facts. One anti-join against dim_device (a handful of rows). On day 2 of 1M events (twice day
-- 1's users) integrity.sql took 0.71-0.98 s without it and 1.11-1.29 s with it; this file alone 0.36-0.44 s.
-- facts_table is the date's partition (facts_partition true: every row is the date's, the date_key filter is bound
-- off) or, before its first load, fact_events (false).
-- in psql: psql "$DATABASE_URL" -v date_key=20241217 -v facts_table=fact_events_20241217 -v facts_partition=true -f warehouse/checks/integrity_devices.sql
select count(*) as missing_device
from warehouse.:"facts_table" as f
where (:'facts_partition'::boolean or f.date_key = :'date_key'::int)
    and not exists (select from warehouse.dim_device as dv where dv.device_key = f.device_key);
