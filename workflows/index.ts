/** Every workflow the worker registers. Deterministic code only: no I/O, no Node built-ins, no clocks but Temporal's. */
export { smokeWorkflow } from './smoke';
