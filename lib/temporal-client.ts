import { readFileSync } from 'node:fs';
import { Client, Connection, ScheduleNotFoundError, type ScheduleOptions } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/client';
import { ConfigError, type Config } from './config';

/** What every Temporal connection (the worker's NativeConnection, a client's Connection) is opened with. */
export interface TemporalConnectionOptions {
  address: string;
  /** Absent: plain gRPC. */
  tls?: TLSConfig;
  /** Sent as `Authorization: Bearer …` on every call; implies TLS. */
  apiKey?: string;
}

function pem(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`Cannot read ${variable}=${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The address, TLS material (read from the configured files) and API key of the configured Temporal server. */
export function temporalConnectionOptions(config: Config): TemporalConnectionOptions {
  const options: TemporalConnectionOptions = { address: config.temporalAddress };
  const tls = config.temporalTls;
  if (tls) {
    options.tls = {
      ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
      ...(tls.caFile ? { serverRootCACertificate: pem('TEMPORAL_TLS_CA', tls.caFile) } : {}),
      ...(tls.certFile && tls.keyFile
        ? { clientCertPair: { crt: pem('TEMPORAL_TLS_CERT', tls.certFile), key: pem('TEMPORAL_TLS_KEY', tls.keyFile) } }
        : {}),
    };
  }
  if (config.temporalApiKey) options.apiKey = config.temporalApiKey;
  return options;
}

/** How a failed connection is reported: the address and the settings to check, never a secret. */
export function temporalUnreachable(config: Config, err: unknown): Error {
  const how = config.temporalApiKey ? 'TLS with TEMPORAL_API_KEY' : config.temporalTls ? 'TLS' : 'plain gRPC';
  const fix = config.temporalTls
    ? 'check TEMPORAL_ADDRESS and the TEMPORAL_TLS_* / TEMPORAL_API_KEY settings'
    : 'start the stack with `make up`, or fix TEMPORAL_ADDRESS';
  return new Error(`Cannot reach Temporal at ${config.temporalAddress} (TEMPORAL_ADDRESS, ${how}): ${fix}`, {
    cause: err,
  });
}

/** A Temporal client for the configured server and namespace; close it with `closeClient`. */
export async function connectClient(config: Config): Promise<Client> {
  const options = temporalConnectionOptions(config);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...options, connectTimeout: '10s' });
  } catch (err) {
    throw temporalUnreachable(config, err);
  }
  return new Client({ connection, namespace: config.temporalNamespace });
}

export async function closeClient(client: Client): Promise<void> {
  await client.connection.close();
}

/** Creates a Temporal Schedule, or updates its spec, action and policies in place when it exists (idempotent). */
export async function createOrUpdateSchedule(client: Client, options: ScheduleOptions): Promise<'created' | 'updated'> {
  const scheduleId = options.scheduleId;
  const handle = client.schedule.getHandle(scheduleId);
  try {
    await handle.describe();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
    await client.schedule.create(options);
    return 'created';
  }
  await handle.update((previous) => ({
    ...previous,
    spec: options.spec,
    action: options.action,
    policies: options.policies,
  }));
  return 'updated';
}

/** Deletes a Temporal Schedule; false when there was none. Runs it already started are left alone. */
export async function deleteScheduleIfExists(client: Client, scheduleId: string): Promise<boolean> {
  try {
    await client.schedule.getHandle(scheduleId).delete();
    return true;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}
