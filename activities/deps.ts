import type pg from 'pg';
import type { Config } from '../lib/config';
import type { Db } from '../warehouse/db';

/** What every activity factory receives from the worker: configuration and one shared pool. */
export interface ActivityDeps {
  config: Config;
  pool: pg.Pool;
  db: Db;
}

/** Identifies the run a step belongs to, for ops.pipeline_runs and ops.dq_results. */
export interface RunRef {
  workflowId: string;
  runId: string;
}

/** The input every per-date step takes. */
export interface DateStepInput {
  /** The pipeline date, YYYY-MM-DD (UTC). */
  date: string;
  run: RunRef;
}
