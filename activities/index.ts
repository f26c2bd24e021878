import type { ActivityDeps } from './deps';
import { createMartActivities } from './marts';
import { createPipelineRunActivities } from './pipeline-runs';
import { createSmokeActivities } from './smoke';

/** Every activity the worker registers, built once from the worker's dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createSmokeActivities(),
    ...createPipelineRunActivities(deps),
    ...createMartActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
