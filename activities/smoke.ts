/** A tiny activity that proves worker, bundler and server work together; no I/O. */

export interface EchoInput {
  message: string;
}

export interface EchoOutput {
  message: string;
  /** The worker process that ran the activity. */
  pid: number;
}

export function createSmokeActivities() {
  return {
    /** Returns the message it was given. Idempotent. */
    async echo(input: EchoInput): Promise<EchoOutput> {
      return { message: input.message, pid: process.pid };
    },
  };
}
