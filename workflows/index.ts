/** Every workflow the worker registers. Deterministic code only: no I/O, no Node built-ins, no clocks but Temporal's. */
export { dailyPipelineWorkflow, currentStepQuery } from './daily-pipeline';
export { backfillWorkflow, progressQuery } from './backfill';
export { smokeWorkflow } from './smoke';
export { lateDataWorkflow } from './late-data';
