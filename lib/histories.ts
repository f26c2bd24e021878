import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { History } from '@temporalio/common/lib/proto-utils';

/**
 * Recorded workflow histories, kept per release under test/histories/<release>/: one JSON file per run (the
 * `temporal workflow show --output json` format) and a manifest.json naming, for each file, the workflow id it ran
 * under and the paths through the workflow code it covers. scripts/record-histories.ts writes them;
 * test/replay.test.ts replays every one against the current workflow code.
 */

export const HISTORIES_DIR = path.resolve(__dirname, '..', 'test', 'histories');
export const MANIFEST_FILE = 'manifest.json';

/** Every path through the workflow code a release's recordings must cover, with what the recording does. */
export const HISTORY_PATHS = {
  daily: 'a plain daily run of daily-<date>: land, stage, dimensions, facts, marts, checks, alert',
  'daily-failed': 'a daily run whose landing fails non-retryably: the failure is recorded, the run fails',
  'schedule-handoff': 'a run started by the Temporal Schedule (no date) hands the date off to daily-<date> as a child',
  'schedule-handoff-child': 'the daily-<date> run a scheduled run handed off to (scheduled: true)',
  'reload-late-dates': 'a daily run whose landing found late records of an already loaded date and re-loads it',
  'already-running-schedule': 'a scheduled run while daily-<date> already runs: it skips instead of loading twice',
  'already-running-backfill': 'a backfill whose date already runs elsewhere: it waits, then loads the date again',
  'backfill-failed-child': 'a backfill whose daily-<date> child fails: recorded as a failed date, the rest go on',
  'backfill-terminated-child': 'a backfill whose child an operator terminates: the backfill records the failure',
  'daily-terminated': 'a daily-<date> child terminated while it runs (a partial history, as a run in flight)',
  'backfill-continue-as-new': 'the first run of a backfill that continues as new with the dates left',
  'backfill-continued': 'the run after a continue-as-new, carrying the outcomes of the first',
} as const;

export type HistoryPath = keyof typeof HISTORY_PATHS;

export interface ManifestEntry {
  /** The history's file name in the release folder. */
  file: string;
  /** The id the run had: replay needs it (a daily run behaves by its id) and the history lacks it. */
  workflowId: string;
  runId: string;
  workflowType: string;
  paths: HistoryPath[];
  events: number;
}

export interface HistoryManifest {
  release: string;
  /** The commit of the workflow code the histories were recorded from. */
  commit: string;
  recordedAt: string;
  histories: ManifestEntry[];
}

/** History event types used here, as the SDK reports them (temporal.api.enums.v1.EventType; @temporalio/proto is not a direct dependency). */
export const EVENT_TYPE = { ACTIVITY_TASK_SCHEDULED: 10, TIMER_STARTED: 17, MARKER_RECORDED: 25 } as const;

/** A release name is a folder name: letters, digits, '.', '_', '-'. */
export function releaseProblem(release: unknown): string | null {
  if (typeof release !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(release)) {
    return `release ${JSON.stringify(release)} is not a folder name: use letters, digits, '.', '_' or '-', e.g. v0.2`;
  }
  return null;
}

/** Release folders under `dir`, oldest first (v0.2 before v0.10). */
export function listReleases(dir: string = HISTORIES_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

export function readManifest(releaseDir: string): HistoryManifest {
  return JSON.parse(readFileSync(path.join(releaseDir, MANIFEST_FILE), 'utf8')) as HistoryManifest;
}

/** The history files of a release folder (every .json but the manifest). */
export function historyFiles(releaseDir: string): string[] {
  return readdirSync(releaseDir)
    .filter((f) => f.endsWith('.json') && f !== MANIFEST_FILE)
    .sort();
}

export function readHistory(file: string): History {
  return historyFromJSON(JSON.parse(readFileSync(file, 'utf8')));
}

/**
 * `historyFromJSON` from @temporalio/common, minus its failure here: this install has two copies of protobufjs
 * (under @temporalio/common and @temporalio/proto), and common's JSON reader rejects proto's message types
 * ("type must be a Type"). The reader of proto's own copy reads the same JSON (the `temporal workflow show
 * --output json` format) into the same History.
 */
export function historyFromJSON(json: unknown): History {
  const fromProto = createRequire(require.resolve('@temporalio/proto'));
  const { fromJson } = fromProto('protobufjs/ext/protojson') as {
    fromJson: (type: unknown, json: unknown, options: object) => History;
  };
  const { patchProtobufRoot } = fromProto('@temporalio/proto/lib/patch-protobuf-root') as {
    patchProtobufRoot: (root: unknown) => { lookupType(name: string): unknown };
  };
  const historyType = patchProtobufRoot(fromProto('@temporalio/proto')).lookupType('temporal.api.history.v1.History');
  return fromJson(historyType, json, { ignoreUnknownFields: true });
}
