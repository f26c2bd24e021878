-- grain: one row per distinct (device_type, device_os, device_browser) triple among the records the stage run
-- copied into the date's staging table, a missing value as 'unknown' as dim_device.sql has it; collected while the
-- records were encoded (lib/device-triples.ts), so the device dimension load does not read every staged row for
-- them. Written only when they are exactly the staged rows' triples; rebuilt or dropped by every stage run.
create unlogged table staging.:"devices_table" (
    device_type text not null,
    device_os text not null,
    device_browser text not null
) with (autovacuum_enabled = false);

insert into staging.:"devices_table" (device_type, device_os, device_browser)
select devices.device_type, devices.device_os, devices.device_browser
from unnest(:'device_types'::text[], :'device_oses'::text[], :'device_browsers'::text[])
    as devices (device_type, device_os, device_browser);
