import { defineConfig } from 'vitest/config';

/**
 * The fault suite (`make faults`): PostgreSQL killed mid-step on a private cluster, the worker process killed
 * mid-step. Minutes long (a killed worker is noticed by a 30 s heartbeat timeout), so apart from `make test`.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
