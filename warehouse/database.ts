import type { ColumnType, Generated } from 'kysely';

/**
 * Kysely types for the tables the migrations create. `test/schema.test.ts` compares
 * TABLE_COLUMNS with information_schema, so the types cannot drift from the database.
 */

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Numeric = ColumnType<string, string | number, string | number>;
type Int8 = ColumnType<string, string | number | bigint, string | number | bigint>;
type Json = ColumnType<unknown, string, string>;

export interface DimDateTable {
  date_key: number;
  date: string;
  day_of_week: number;
  day_name: string;
  iso_week: number;
  iso_year: number;
  month: number;
  month_name: string;
  quarter: number;
  year: number;
  is_weekend: boolean;
}

export interface DimDeviceTable {
  device_key: Generated<number>;
  device_type: string;
  os: string;
  browser: string;
  created_at: Generated<Timestamp>;
}

export interface DimUserTable {
  user_key: Generated<Int8>;
  user_id: string;
  email: string | null;
  plan: 'free' | 'pro' | 'enterprise' | null;
  country: string | null;
  valid_from: Timestamp;
  valid_to: Timestamp | null;
  is_current: boolean;
  is_inferred: Generated<boolean>;
  source_event_id: string | null;
}

export interface FactEventsTable {
  event_id: string;
  event_time: Timestamp;
  date_key: number;
  user_key: Int8;
  device_key: number;
  event_type: string;
  session_id: string | null;
  page: string | null;
  referrer: string | null;
  country: string | null;
  order_id: string | null;
  product_id: string | null;
  amount: Numeric | null;
  currency: string | null;
  lake_file_id: Int8;
  source_offset: Int8;
  loaded_at: Generated<Timestamp>;
}

export interface KafkaOffsetsTable {
  topic: string;
  partition: number;
  next_offset: Int8;
  updated_at: Generated<Timestamp>;
}

export interface LandingsTable {
  landing_id: Generated<Int8>;
  topic: string;
  started_at: Timestamp;
  committed_at: Generated<Timestamp>;
  records_read: Int8;
  records_landed: Int8;
  records_dead_lettered: Int8;
}

export interface LakeFilesTable {
  lake_file_id: Generated<Int8>;
  landing_id: Int8;
  path: string;
  area: 'events' | 'dead_letter';
  dt: string;
  topic: string;
  partition: number;
  first_offset: Int8;
  last_offset: Int8;
  row_count: number;
  bytes: Int8;
  created_at: Generated<Timestamp>;
}

export interface DateLoadsTable {
  dt: string;
  first_loaded_at: Timestamp | null;
  last_loaded_at: Timestamp | null;
  needs_reload: Generated<boolean>;
  reload_reason: string | null;
  marked_at: Timestamp | null;
  loaded_file_ids: string[] | null;
  loaded_rows_read: Int8 | null;
  loaded_rows_set_aside: Int8 | null;
  loaded_duplicates: Int8 | null;
  loaded_rows_staged: Int8 | null;
  marts_stale: Generated<boolean>;
}

export interface DateStagesTable {
  dt: string;
  staged_at: Generated<Timestamp>;
  run_id: string | null;
  row_count: Int8;
  lake_file_ids: string[];
  base_file_ids: string[] | null;
}

export interface EventIdFiltersTable {
  dt: string;
  bits: Buffer;
  generation: Generated<Int8>;
  updated_at: Generated<Timestamp>;
}

export interface CrossDateCandidatesTable {
  dt: string;
  neighbour_dt: string;
  neighbour_generation: Int8;
  event_ids: string[];
}

export interface RejectedRowsTable {
  rejected_row_id: Generated<Int8>;
  dt: string;
  lake_file_id: Int8;
  path: string;
  row_number: number | null;
  kafka_topic: string | null;
  kafka_partition: number | null;
  kafka_offset: Int8 | null;
  event_id: string | null;
  reason: string;
  sqlstate: string | null;
  raw_values: Buffer | null;
  set_aside_at: Generated<Timestamp>;
}

export interface StagedDatesTable {
  dt: string;
  files: number;
  rows_read: Int8;
  rows_set_aside: Int8;
  duplicates: Int8;
  rows_staged: Int8;
  staged_at: Generated<Timestamp>;
}

export interface PipelineRunsTable {
  run_step_id: Generated<Int8>;
  workflow_id: string;
  run_id: string;
  dt: string;
  step: string;
  status: 'running' | 'succeeded' | 'failed';
  rows_read: Int8 | null;
  rows_inserted: Int8 | null;
  rows_updated: Int8 | null;
  rows_unchanged: Int8 | null;
  details: ColumnType<unknown, string | undefined, string>;
  error: string | null;
  started_at: Generated<Timestamp>;
  finished_at: Timestamp | null;
}

export interface DqResultsTable {
  dq_result_id: Generated<Int8>;
  run_id: string;
  dt: string;
  check_name: string;
  table_name: string;
  observed: Numeric | null;
  threshold: string | null;
  status: 'pass' | 'warn' | 'fail' | 'skip';
  details: string | null;
  checked_at: Generated<Timestamp>;
}

export interface AlertsTable {
  alert_id: Generated<Int8>;
  fingerprint: string;
  kind: 'alert' | 'recovered' | 'summary';
  dt: string | null;
  check_name: string | null;
  status: string | null;
  observed: Numeric | null;
  run_id: string;
  payload: Json;
  delivered: Generated<boolean>;
  attempts: Generated<number>;
  last_error: string | null;
  created_at: Generated<Timestamp>;
  delivered_at: Timestamp | null;
  suppressed: Generated<boolean>;
}

export interface MartDailyActiveUsersTable {
  date: string;
  dau: number;
  new_users: number;
  returning_users: number;
  events: Int8;
  refreshed_at: Generated<Timestamp>;
}

export interface MartRevenueDailyTable {
  date: string;
  plan: string;
  country: string;
  currency: string;
  orders: number;
  revenue: Numeric;
  avg_order_value: Numeric;
  paying_users: number;
  refreshed_at: Generated<Timestamp>;
}

export interface MartRevenuePerUserTable {
  user_id: string;
  currency: string;
  plan: string;
  lifetime_revenue: Numeric;
  orders: number;
  avg_order_value: Numeric;
  first_purchase_at: Timestamp;
  last_purchase_at: Timestamp;
  refreshed_at: Generated<Timestamp>;
}

export interface MartChurnRiskTable {
  user_id: string;
  plan: string;
  last_seen_at: Timestamp;
  days_inactive: number;
  risk_bucket: 'low' | 'medium' | 'high';
  as_of_date: string;
}

export interface MartFunnelDailyTable {
  date: string;
  step: 'page_view' | 'add_to_cart' | 'purchase';
  step_order: number;
  users: number;
  conversion_from_previous: Numeric | null;
  conversion_from_first: Numeric | null;
  refreshed_at: Generated<Timestamp>;
}

export interface UserChangesTable {
  event_id: string;
  user_id: string;
  event_time: Timestamp;
  event_type: 'user_signup' | 'profile_update' | 'plan_change';
  email: string | null;
  plan: 'free' | 'pro' | 'enterprise' | null;
  country: string | null;
  dt: string;
  lake_file_id: Int8;
  loaded_at: Generated<Timestamp>;
}

/** warehouse.user_days: one row per user and UTC date with facts. */
export interface UserDaysTable {
  date_key: number;
  user_id: string;
  events: number;
  attribute_events: number;
  first_event_at: Timestamp;
  last_event_at: Timestamp;
  /** Of its events, page_view, add_to_cart and purchase: the funnel's steps (marts.funnel_daily). */
  page_views: number;
  add_to_carts: number;
  purchases: number;
}

/** warehouse.date_totals: one row per UTC date with facts, its fact rows and users. */
export interface DateTotalsTable {
  date_key: number;
  events: Int8;
  users: number;
}

/** warehouse.user_activity: one row per user with facts, first and last activity. */
export interface UserActivityTable {
  user_id: string;
  first_date_key: number;
  first_event_at: Timestamp;
  last_date_key: number;
  last_event_at: Timestamp;
}

/** warehouse.user_purchase_days: one row per user, UTC date and currency with purchases. */
export interface UserPurchaseDaysTable {
  date_key: number;
  user_id: string;
  currency: string;
  orders: number;
  revenue: Numeric;
  first_purchase_at: Timestamp;
  last_purchase_at: Timestamp;
}

export interface Database {
  'warehouse.dim_date': DimDateTable;
  'warehouse.dim_device': DimDeviceTable;
  'warehouse.dim_user': DimUserTable;
  'warehouse.fact_events': FactEventsTable;
  'warehouse.user_days': UserDaysTable;
  'warehouse.date_totals': DateTotalsTable;
  'warehouse.user_activity': UserActivityTable;
  'warehouse.user_purchase_days': UserPurchaseDaysTable;
  'ops.kafka_offsets': KafkaOffsetsTable;
  'ops.landings': LandingsTable;
  'ops.lake_files': LakeFilesTable;
  'ops.date_loads': DateLoadsTable;
  'ops.date_stages': DateStagesTable;
  'ops.event_id_filters': EventIdFiltersTable;
  'ops.cross_date_candidates': CrossDateCandidatesTable;
  'ops.rejected_rows': RejectedRowsTable;
  'ops.staged_dates': StagedDatesTable;
  'ops.pipeline_runs': PipelineRunsTable;
  'ops.dq_results': DqResultsTable;
  'ops.alerts': AlertsTable;
  'marts.daily_active_users': MartDailyActiveUsersTable;
  'marts.revenue_daily': MartRevenueDailyTable;
  'marts.revenue_per_user': MartRevenuePerUserTable;
  'marts.churn_risk': MartChurnRiskTable;
  'marts.funnel_daily': MartFunnelDailyTable;
  'warehouse.user_changes': UserChangesTable;
}

type ColumnsOf<T> = readonly (keyof T & string)[];
type ExactColumns<T, C extends ColumnsOf<T>> = [Exclude<keyof T, C[number]>] extends [never] ? C : never;
const columns =
  <T>() =>
  <const C extends ColumnsOf<T>>(c: ExactColumns<T, C>) =>
    c;

/** Every column of every table in `Database`, checked at compile time to cover each interface. */
export const TABLE_COLUMNS: { [K in keyof Database]: ColumnsOf<Database[K]> } = {
  'warehouse.dim_date': columns<DimDateTable>()([
    'date_key',
    'date',
    'day_of_week',
    'day_name',
    'iso_week',
    'iso_year',
    'month',
    'month_name',
    'quarter',
    'year',
    'is_weekend',
  ]),
  'warehouse.dim_device': columns<DimDeviceTable>()(['device_key', 'device_type', 'os', 'browser', 'created_at']),
  'warehouse.dim_user': columns<DimUserTable>()([
    'user_key',
    'user_id',
    'email',
    'plan',
    'country',
    'valid_from',
    'valid_to',
    'is_current',
    'is_inferred',
    'source_event_id',
  ]),
  'warehouse.fact_events': columns<FactEventsTable>()([
    'event_id',
    'event_time',
    'date_key',
    'user_key',
    'device_key',
    'event_type',
    'session_id',
    'page',
    'referrer',
    'country',
    'order_id',
    'product_id',
    'amount',
    'currency',
    'lake_file_id',
    'source_offset',
    'loaded_at',
  ]),
  'warehouse.user_days': columns<UserDaysTable>()([
    'date_key',
    'user_id',
    'events',
    'attribute_events',
    'first_event_at',
    'last_event_at',
    'page_views',
    'add_to_carts',
    'purchases',
  ]),
  'warehouse.date_totals': columns<DateTotalsTable>()(['date_key', 'events', 'users']),
  'warehouse.user_activity': columns<UserActivityTable>()([
    'user_id',
    'first_date_key',
    'first_event_at',
    'last_date_key',
    'last_event_at',
  ]),
  'warehouse.user_purchase_days': columns<UserPurchaseDaysTable>()([
    'date_key',
    'user_id',
    'currency',
    'orders',
    'revenue',
    'first_purchase_at',
    'last_purchase_at',
  ]),
  'ops.kafka_offsets': columns<KafkaOffsetsTable>()(['topic', 'partition', 'next_offset', 'updated_at']),
  'ops.landings': columns<LandingsTable>()([
    'landing_id',
    'topic',
    'started_at',
    'committed_at',
    'records_read',
    'records_landed',
    'records_dead_lettered',
  ]),
  'ops.lake_files': columns<LakeFilesTable>()([
    'lake_file_id',
    'landing_id',
    'path',
    'area',
    'dt',
    'topic',
    'partition',
    'first_offset',
    'last_offset',
    'row_count',
    'bytes',
    'created_at',
  ]),
  'ops.date_loads': columns<DateLoadsTable>()([
    'dt',
    'first_loaded_at',
    'last_loaded_at',
    'needs_reload',
    'reload_reason',
    'marked_at',
    'loaded_file_ids',
    'loaded_rows_read',
    'loaded_rows_set_aside',
    'loaded_duplicates',
    'loaded_rows_staged',
    'marts_stale',
  ]),
  'ops.date_stages': columns<DateStagesTable>()([
    'dt',
    'staged_at',
    'run_id',
    'row_count',
    'lake_file_ids',
    'base_file_ids',
  ]),
  'ops.event_id_filters': columns<EventIdFiltersTable>()(['dt', 'bits', 'generation', 'updated_at']),
  'ops.cross_date_candidates': columns<CrossDateCandidatesTable>()([
    'dt',
    'neighbour_dt',
    'neighbour_generation',
    'event_ids',
  ]),
  'ops.rejected_rows': columns<RejectedRowsTable>()([
    'rejected_row_id',
    'dt',
    'lake_file_id',
    'path',
    'row_number',
    'kafka_topic',
    'kafka_partition',
    'kafka_offset',
    'event_id',
    'reason',
    'sqlstate',
    'raw_values',
    'set_aside_at',
  ]),
  'ops.staged_dates': columns<StagedDatesTable>()([
    'dt',
    'files',
    'rows_read',
    'rows_set_aside',
    'duplicates',
    'rows_staged',
    'staged_at',
  ]),
  'ops.pipeline_runs': columns<PipelineRunsTable>()([
    'run_step_id',
    'workflow_id',
    'run_id',
    'dt',
    'step',
    'status',
    'rows_read',
    'rows_inserted',
    'rows_updated',
    'rows_unchanged',
    'details',
    'error',
    'started_at',
    'finished_at',
  ]),
  'ops.dq_results': columns<DqResultsTable>()([
    'dq_result_id',
    'run_id',
    'dt',
    'check_name',
    'table_name',
    'observed',
    'threshold',
    'status',
    'details',
    'checked_at',
  ]),
  'ops.alerts': columns<AlertsTable>()([
    'alert_id',
    'fingerprint',
    'kind',
    'dt',
    'check_name',
    'status',
    'observed',
    'run_id',
    'payload',
    'delivered',
    'attempts',
    'last_error',
    'created_at',
    'delivered_at',
    'suppressed',
  ]),
  'marts.daily_active_users': columns<MartDailyActiveUsersTable>()([
    'date',
    'dau',
    'new_users',
    'returning_users',
    'events',
    'refreshed_at',
  ]),
  'marts.revenue_daily': columns<MartRevenueDailyTable>()([
    'date',
    'plan',
    'country',
    'currency',
    'orders',
    'revenue',
    'avg_order_value',
    'paying_users',
    'refreshed_at',
  ]),
  'marts.revenue_per_user': columns<MartRevenuePerUserTable>()([
    'user_id',
    'currency',
    'plan',
    'lifetime_revenue',
    'orders',
    'avg_order_value',
    'first_purchase_at',
    'last_purchase_at',
    'refreshed_at',
  ]),
  'marts.churn_risk': columns<MartChurnRiskTable>()([
    'user_id',
    'plan',
    'last_seen_at',
    'days_inactive',
    'risk_bucket',
    'as_of_date',
  ]),
  'marts.funnel_daily': columns<MartFunnelDailyTable>()([
    'date',
    'step',
    'step_order',
    'users',
    'conversion_from_previous',
    'conversion_from_first',
    'refreshed_at',
  ]),
  'warehouse.user_changes': columns<UserChangesTable>()([
    'event_id',
    'user_id',
    'event_time',
    'event_type',
    'email',
    'plan',
    'country',
    'dt',
    'lake_file_id',
    'loaded_at',
  ]),
};
