import pg from 'pg';
import { loadConfig } from '../lib/config';
import { createDb, createPool } from '../warehouse/db';
import { migrateToLatest } from '../warehouse/migrate';
import { TEMPLATE_DATABASE, databaseUrlFor } from './support';

/** Builds a migrated template database once per test run; each test clones it. */
export default async function setup(): Promise<void> {
  const { databaseUrl } = loadConfig();
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${TEMPLATE_DATABASE} with (force)`);
    await admin.query(`create database ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }
  const db = createDb(createPool(databaseUrlFor(databaseUrl, TEMPLATE_DATABASE), 1));
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}
