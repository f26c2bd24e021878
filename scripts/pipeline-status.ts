import { loadConfig } from '../lib/config';
import { kafkaHighWatermarks } from '../lib/metrics';
import { formatPipelineStatus, pipelineStatus } from '../lib/pipeline-status';
import { createPool } from '../warehouse/db';

/** `make status`, after the services: the newest loaded date, the last run's state and the Kafka lag. */
async function main(): Promise<void> {
  const config = loadConfig();
  const pool = createPool(config.databaseUrl, 1);
  const high = kafkaHighWatermarks(config);
  try {
    console.log(formatPipelineStatus(await pipelineStatus(pool, config.kafkaTopic, high), config.kafkaTopic));
  } finally {
    await high.close();
    await pool.end();
  }
}

main().catch((err) => {
  console.error(`pipeline status unavailable: ${(err as Error).message}`);
  process.exit(1);
});
