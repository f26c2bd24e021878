import path from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread on the entry `name` beside the calling module (`callerFile`: its __filename): compiled
 * (dist/.../<name>.js) when the process runs from dist/; the TypeScript source through tsx's CommonJS hook under
 * vitest or `node --import tsx` (development only).
 */
export function startWorkerThread(callerFile: string, name: string, workerData: unknown): Worker {
  const dir = path.dirname(callerFile);
  const source = callerFile.endsWith('.js')
    ? `require(${JSON.stringify(path.join(dir, `${name}.js`))});`
    : // tsx resolved here: an eval'd thread resolves bare names from the working folder, which may be any folder
      `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(path.join(dir, `${name}.ts`))});`;
  return new Worker(source, { eval: true, workerData });
}
