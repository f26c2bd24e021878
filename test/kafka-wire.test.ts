import { randomBytes } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { crc32c, murmur2, partitionForKey } from '../lib/kafka-wire';

// kafkajs's own implementations, which lib/kafka-wire must match byte for byte
// eslint-disable-next-line @typescript-eslint/no-require-imports
const kafkajsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (b: Buffer) => number;

describe('kafka-wire', () => {
  it('hashes keys with the murmur2 of kafkajs, so keys land in the same partitions', () => {
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = [0, 1, 2, 3].map((partitionId) => ({
      partitionId,
      leader: 1,
      replicas: [1],
      isr: [1],
      partitionErrorCode: 0,
    }));
    for (let i = 0; i < 5000; i++) {
      const key = i % 2 === 0 ? Buffer.from(`user_${i}`) : randomBytes(i % 41);
      expect(murmur2(key)).toBe(kafkajsMurmur2(key));
      expect(partitionForKey(key, 4)).toBe(
        partitioner({ topic: 't', partitionMetadata, message: { key, value: null } }),
      );
    }
  });

  it('computes the CRC32C of kafkajs', () => {
    for (let i = 0; i < 2000; i++) {
      const bytes = randomBytes(i % 300);
      expect(crc32c(bytes)).toBe(kafkajsCrc32c(bytes) >>> 0);
    }
  });
});
