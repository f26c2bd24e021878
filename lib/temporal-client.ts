import { Client, Connection } from '@temporalio/client';
import type { Config } from './config';

/** A Temporal client for the configured server and namespace; close it with `closeClient`. */
export async function connectClient(config: Config): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: config.temporalAddress, connectTimeout: '10s' });
  } catch (err) {
    throw new Error(
      `Cannot reach Temporal at ${config.temporalAddress} (TEMPORAL_ADDRESS): start the stack with \`make up\``,
      { cause: err },
    );
  }
  return new Client({ connection, namespace: config.temporalNamespace });
}

export async function closeClient(client: Client): Promise<void> {
  await client.connection.close();
}
