import type { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/**
 * Heartbeats every few seconds for every activity while it runs, so a worker that dies mid-activity is noticed
 * within the activity's heartbeat timeout, not its start-to-close timeout. One set-based SQL statement cannot
 * report progress halfway; and an activity that does heartbeat with progress (land, stage) may go longer than
 * the timeout between two of its own heartbeats. The timer re-sends the details the activity last gave (or those
 * of its previous attempt), so the progress a retry resumes from is never overwritten.
 */

export const LIVENESS_INTERVAL_MS = 5_000;

type Heartbeat = Context['heartbeat'];

export const livenessHeartbeat: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const own: Heartbeat = ctx.heartbeat;
      let last: unknown = ctx.info.heartbeatDetails;
      // remember what the activity reports, then pass it on unchanged
      (ctx as { heartbeat: Heartbeat }).heartbeat = (details?: unknown) => {
        last = details;
        own(details);
      };
      const timer = setInterval(() => own(last), LIVENESS_INTERVAL_MS);
      try {
        return await next(input);
      } finally {
        clearInterval(timer);
      }
    },
  },
});
