import type { ActivityDeps } from './deps';
import { createPipelineRunActivities } from './pipeline-runs';
import { createSmokeActivities } from './smoke';

/** Every activity the worker registers, built once from the worker's dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createSmokeActivities(),
    ...createPipelineRunActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
