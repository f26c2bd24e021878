import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';

const SMOKE = { startToCloseTimeout: '10 seconds', retry: { maximumAttempts: 3 } } as const;

const { echo } = proxyActivities<Activities>(SMOKE);

export interface SmokeInput {
  message: string;
}

export interface SmokeOutput {
  message: string;
  activityPid: number;
}

/** Smoke test: one activity round trip through a worker. Grain: one call. Idempotent (no I/O). */
export async function smokeWorkflow(input: SmokeInput): Promise<SmokeOutput> {
  const result = await echo({ message: input.message });
  return { message: result.message, activityPid: result.pid };
}
