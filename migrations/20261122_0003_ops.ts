import { type Kysely, sql } from 'kysely';

/** Bookkeeping: Kafka offsets, the lake manifest, dates to re-load, pipeline runs, check results, alerts. */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table ops.kafka_offsets (
      topic text not null,
      partition int not null,
      next_offset bigint not null,
      updated_at timestamptz not null default now(),
      primary key (topic, partition)
    );
    comment on table ops.kafka_offsets is 'One row per topic-partition: the next offset to land. Advanced in the same transaction that records the lake files.';
    comment on column ops.kafka_offsets.topic is 'Kafka topic.';
    comment on column ops.kafka_offsets.partition is 'Kafka partition number.';
    comment on column ops.kafka_offsets.next_offset is 'First offset not yet landed in the lake.';
    comment on column ops.kafka_offsets.updated_at is 'When a landing last advanced the offset.';

    create table ops.landings (
      landing_id bigint generated always as identity primary key,
      topic text not null,
      started_at timestamptz not null,
      committed_at timestamptz not null default now(),
      records_read bigint not null,
      records_landed bigint not null,
      records_dead_lettered bigint not null,
      check (records_read = records_landed + records_dead_lettered)
    );
    comment on table ops.landings is 'One row per committed landing of Kafka records into the lake; read = landed + dead-lettered.';
    comment on column ops.landings.landing_id is 'Surrogate key of the landing.';
    comment on column ops.landings.topic is 'Kafka topic landed.';
    comment on column ops.landings.started_at is 'When the landing began reading.';
    comment on column ops.landings.committed_at is 'When its files and offsets were committed.';
    comment on column ops.landings.records_read is 'Records read from Kafka.';
    comment on column ops.landings.records_landed is 'Valid records written to the events area of the lake.';
    comment on column ops.landings.records_dead_lettered is 'Rejected records written to the dead-letter area with their reason.';

    create table ops.lake_files (
      lake_file_id bigint generated always as identity primary key,
      landing_id bigint not null references ops.landings,
      path text not null unique,
      area text not null check (area in ('events', 'dead_letter')),
      dt date not null,
      topic text not null,
      partition int not null,
      first_offset bigint not null,
      last_offset bigint not null,
      row_count int not null check (row_count > 0),
      bytes bigint not null,
      created_at timestamptz not null default now(),
      check (last_offset >= first_offset)
    );
    create index lake_files_dt on ops.lake_files (area, dt);
    comment on table ops.lake_files is 'The lake manifest: every Parquet file the landing committed. Files in the lake but not here are debris from an interrupted landing and are removed.';
    comment on column ops.lake_files.lake_file_id is 'Surrogate key, referenced by warehouse.fact_events.lake_file_id for lineage.';
    comment on column ops.lake_files.landing_id is 'The landing that wrote the file.';
    comment on column ops.lake_files.path is 'Path relative to LAKE_DIR, e.g. events/dt=2024-12-17/p0-o1200-o2399.parquet.';
    comment on column ops.lake_files.area is 'events (valid records) or dead_letter (rejected records with their reason).';
    comment on column ops.lake_files.dt is 'The partition date (UTC date of event_time; for dead letters the date of the Kafka timestamp when event_time is unusable).';
    comment on column ops.lake_files.topic is 'Kafka topic of the records.';
    comment on column ops.lake_files.partition is 'Kafka partition of the records.';
    comment on column ops.lake_files.first_offset is 'Lowest Kafka offset in the file.';
    comment on column ops.lake_files.last_offset is 'Highest Kafka offset in the file.';
    comment on column ops.lake_files.row_count is 'Records in the file.';
    comment on column ops.lake_files.bytes is 'File size in bytes.';
    comment on column ops.lake_files.created_at is 'When the file was committed to the manifest.';

    create table ops.date_loads (
      dt date primary key,
      first_loaded_at timestamptz,
      last_loaded_at timestamptz,
      needs_reload boolean not null default false,
      reload_reason text,
      marked_at timestamptz
    );
    comment on table ops.date_loads is 'One row per event date: when it was loaded into the warehouse and whether late records call for a re-load.';
    comment on column ops.date_loads.dt is 'Event date (UTC).';
    comment on column ops.date_loads.first_loaded_at is 'First successful load of the date into the warehouse.';
    comment on column ops.date_loads.last_loaded_at is 'Latest successful load of the date.';
    comment on column ops.date_loads.needs_reload is 'True when records for the date landed after its last load.';
    comment on column ops.date_loads.reload_reason is 'Why the date was marked, e.g. "42 late records landed".';
    comment on column ops.date_loads.marked_at is 'When the date was last marked for re-load.';

    create table ops.pipeline_runs (
      run_step_id bigint generated always as identity primary key,
      workflow_id text not null,
      run_id text not null,
      dt date not null,
      step text not null,
      status text not null check (status in ('running', 'succeeded', 'failed')),
      rows_read bigint,
      rows_inserted bigint,
      rows_updated bigint,
      rows_unchanged bigint,
      details jsonb not null default '{}',
      error text,
      started_at timestamptz not null default now(),
      finished_at timestamptz,
      unique (run_id, dt, step)
    );
    create index pipeline_runs_dt on ops.pipeline_runs (dt, step, started_at desc);
    comment on table ops.pipeline_runs is 'One row per pipeline run, date and step (step "pipeline" is the whole run): status and row counts, the load history in psql.';
    comment on column ops.pipeline_runs.run_step_id is 'Surrogate key.';
    comment on column ops.pipeline_runs.workflow_id is 'Temporal workflow id, e.g. daily-2024-12-17.';
    comment on column ops.pipeline_runs.run_id is 'Temporal run id (or a script''s own id when run outside Temporal).';
    comment on column ops.pipeline_runs.dt is 'The pipeline date.';
    comment on column ops.pipeline_runs.step is 'land, stage, dimensions, facts, marts, checks, alert, or pipeline for the whole run.';
    comment on column ops.pipeline_runs.status is 'running, succeeded or failed.';
    comment on column ops.pipeline_runs.rows_read is 'Rows the step read.';
    comment on column ops.pipeline_runs.rows_inserted is 'Rows the step inserted.';
    comment on column ops.pipeline_runs.rows_updated is 'Rows the step changed.';
    comment on column ops.pipeline_runs.rows_unchanged is 'Rows the step found already up to date.';
    comment on column ops.pipeline_runs.details is 'Step-specific figures as JSON.';
    comment on column ops.pipeline_runs.error is 'The error message when the step failed.';
    comment on column ops.pipeline_runs.started_at is 'When the step started.';
    comment on column ops.pipeline_runs.finished_at is 'When the step finished.';

    create table ops.dq_results (
      dq_result_id bigint generated always as identity primary key,
      run_id text not null,
      dt date not null,
      check_name text not null,
      table_name text not null,
      observed numeric,
      threshold text,
      status text not null check (status in ('pass', 'warn', 'fail', 'skip')),
      details text,
      checked_at timestamptz not null default now()
    );
    create index dq_results_dt on ops.dq_results (dt, check_name, checked_at desc);
    comment on table ops.dq_results is 'One row per data-quality check per run and date.';
    comment on column ops.dq_results.dq_result_id is 'Surrogate key.';
    comment on column ops.dq_results.run_id is 'The run that evaluated the check (Temporal run id or a script''s id).';
    comment on column ops.dq_results.dt is 'The date checked.';
    comment on column ops.dq_results.check_name is 'freshness, volume, nulls, uniqueness, integrity, dead_letters, reconciliation, schedule_gaps, …';
    comment on column ops.dq_results.table_name is 'The table the check looks at.';
    comment on column ops.dq_results.observed is 'The observed value (a count, a ratio or hours).';
    comment on column ops.dq_results.threshold is 'What the observed value was compared with, in words.';
    comment on column ops.dq_results.status is 'pass, warn, fail, or skip (not enough history).';
    comment on column ops.dq_results.details is 'What was found, in words.';
    comment on column ops.dq_results.checked_at is 'When the check ran.';

    create table ops.alerts (
      alert_id bigint generated always as identity primary key,
      fingerprint text not null,
      kind text not null check (kind in ('alert', 'recovered', 'summary')),
      dt date,
      check_name text,
      status text,
      observed numeric,
      run_id text not null,
      payload jsonb not null,
      delivered boolean not null default false,
      attempts int not null default 0,
      last_error text,
      created_at timestamptz not null default now(),
      delivered_at timestamptz
    );
    create index alerts_fingerprint on ops.alerts (fingerprint, created_at desc);
    comment on table ops.alerts is 'Every alert decided on, its fingerprint and whether Slack received it; undelivered alerts are never lost.';
    comment on column ops.alerts.alert_id is 'Surrogate key.';
    comment on column ops.alerts.fingerprint is 'date:check:status; the same fingerprint with the same observed value is never posted twice.';
    comment on column ops.alerts.kind is 'alert (a failing or warning check), recovered (it passes again), or summary (a backfill).';
    comment on column ops.alerts.dt is 'The date the alert is about (NULL for a backfill summary).';
    comment on column ops.alerts.check_name is 'The check the alert is about.';
    comment on column ops.alerts.status is 'The check status alerted on.';
    comment on column ops.alerts.observed is 'The observed value alerted on.';
    comment on column ops.alerts.run_id is 'The run that raised the alert.';
    comment on column ops.alerts.payload is 'The Slack Block Kit message.';
    comment on column ops.alerts.delivered is 'True once Slack accepted the message.';
    comment on column ops.alerts.attempts is 'Delivery attempts made.';
    comment on column ops.alerts.last_error is 'The last delivery error.';
    comment on column ops.alerts.created_at is 'When the alert was decided on.';
    comment on column ops.alerts.delivered_at is 'When Slack accepted it.';
  `.execute(db);
}
