-- grain: one row per (device_type, os, browser) triple seen in the date's staged events and not yet in
-- dim_device. Events without a device map to the unknown member (device_key 0, all three 'unknown'),
-- a missing os or browser becomes 'unknown'. Re-running inserts nothing.
-- The triples come from the stage run's table of them (devices_table, stage_events_devices.sql) when from_stage:
-- a few rows instead of every staged row. Otherwise devices_table names the staging table itself and every
-- staged row is read.
with staged_devices as (
    select distinct
        coalesce(staged.device_type, 'unknown') as device_type,
        coalesce(staged.device_os, 'unknown') as os,
        coalesce(staged.device_browser, 'unknown') as browser
    from staging.:"devices_table" as staged
    where :'from_stage'::boolean
    union
    select distinct
        coalesce(staged.device_type, 'unknown') as device_type,
        coalesce(staged.device_os, 'unknown') as os,
        coalesce(staged.device_browser, 'unknown') as browser
    from staging.:"events_table" as staged
    where not :'from_stage'::boolean
),

new_devices as (
    select
        staged_devices.device_type,
        staged_devices.os,
        staged_devices.browser
    from staged_devices
    where not exists (
        select
        from warehouse.dim_device as dim_device
        where dim_device.device_type = staged_devices.device_type
            and dim_device.os = staged_devices.os
            and dim_device.browser = staged_devices.browser
    )
),

inserted as (
    insert into warehouse.dim_device (device_type, os, browser)
    select
        new_devices.device_type,
        new_devices.os,
        new_devices.browser
    from new_devices
    order by new_devices.device_type, new_devices.os, new_devices.browser
    on conflict (device_type, os, browser) do nothing
    returning 1
)

select
    (select count(*) from staged_devices)::int as count_read,
    (select count(*) from inserted)::int as count_inserted;
