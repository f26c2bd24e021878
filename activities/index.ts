import { createAlertActivities } from './alert';
import { createCheckActivities } from './checks';
import type { ActivityDeps } from './deps';
import { createDimensionActivities } from './dimensions';
import { createFactActivities } from './facts';
import { createLandActivities } from './land';
import { createMartActivities } from './marts';
import { createPipelineRunActivities } from './pipeline-runs';
import { createRunAlertActivities } from './run-alerts';
import { createSmokeActivities } from './smoke';
import { createStageActivities } from './stage';

/** Every activity the worker registers, built once from the worker's dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createSmokeActivities(),
    ...createPipelineRunActivities(deps),
    ...createLandActivities(deps),
    ...createStageActivities(deps),
    ...createDimensionActivities(deps),
    ...createFactActivities(deps),
    ...createMartActivities(deps),
    ...createCheckActivities(deps),
    ...createAlertActivities(deps),
    ...createRunAlertActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
