import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';

/**
 * Where the lake's files live (SPEC section 4): a folder on the worker's disk (LAKE_DIR, the default) or a bucket
 * prefix on S3 or an S3-compatible store (LAKE_URL=s3://bucket/prefix). Paths are relative to the lake's root, with
 * forward slashes, exactly as recorded in ops.lake_files; on S3 a path is the object key under the prefix.
 */

/** An S3 lake: bucket, key prefix and connection (LAKE_URL plus the standard AWS_* variables). */
export interface LakeS3 {
  bucket: string;
  /** Key prefix without leading or trailing slash; '' for the bucket's root. */
  prefix: string;
  region: string;
  /** AWS_ENDPOINT_URL_S3 for an S3-compatible server; null for AWS itself. */
  endpoint: string | null;
  /** Path-style addressing (http://host/bucket/key): the default with a custom endpoint. */
  forcePathStyle: boolean;
  /** Null: the SDK's default credential chain (instance roles, profiles). */
  accessKeyId: string | null;
  secretAccessKey: string | null;
}

/** What the pipeline needs from the lake's storage. */
export interface LakeStore {
  readonly kind: 'file' | 's3';
  /** Where a path is, for messages: an absolute file path or an s3:// URL. */
  describe(relPath: string): string;
  /** Writes a whole file; readers never see a partial one (temp name + rename locally, one PUT or a multipart upload on S3). */
  put(relPath: string, bytes: Uint8Array): Promise<void>;
  /** Reads a whole file; throws LakeObjectMissingError when it does not exist. */
  get(relPath: string): Promise<Buffer>;
  /** Every file under a folder-like prefix (e.g. 'events/'), temp files included, as relative paths. */
  list(prefix: string): Promise<string[]>;
  /** Removes files; a missing one is no error. */
  remove(relPaths: string[]): Promise<void>;
}

/** A lake file the manifest lists but the store does not have. */
export class LakeObjectMissingError extends Error {
  override name = 'LakeObjectMissingError';
}

// --- a local folder ---------------------------------------------------------------------------------

export class FileLakeStore implements LakeStore {
  readonly kind = 'file';
  constructor(readonly dir: string) {}

  describe(relPath: string): string {
    return path.resolve(this.dir, relPath);
  }

  /** Atomically and durably: a hidden temp file in the same folder, fsync, rename, fsync of the folder. */
  async put(relPath: string, bytes: Uint8Array): Promise<void> {
    const finalPath = path.join(this.dir, relPath);
    const dir = path.dirname(finalPath);
    await mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.${path.basename(finalPath)}.${randomBytes(4).toString('hex')}.tmp`);
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, finalPath);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }

  async get(relPath: string): Promise<Buffer> {
    try {
      return await readFile(path.resolve(this.dir, relPath));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new LakeObjectMissingError(`lake file ${this.describe(relPath)} does not exist`, { cause: err });
      }
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const base = path.join(this.dir, prefix);
    const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch((err) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    });
    return entries
      .filter((e) => e.isFile())
      .map((e) => path.relative(this.dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
      .sort();
  }

  async remove(relPaths: string[]): Promise<void> {
    for (const f of relPaths) await rm(path.join(this.dir, f), { force: true });
  }
}

// --- S3 and S3-compatible stores ---------------------------------------------------------------------

/** One S3 request unanswered this long fails; the SDK then retries it. */
export const S3_REQUEST_TIMEOUT_MS = 30_000;
/** Attempts per S3 call (the first included), with the SDK's standard backoff over transient errors. */
export const S3_MAX_ATTEMPTS = 5;
/** Files above this size are uploaded in parts (lib-storage Upload; 5 MiB is S3's minimum part size). */
const PART_SIZE = 8 * 1024 * 1024;

export function s3ClientConfig(s3: LakeS3): S3ClientConfig {
  return {
    region: s3.region,
    ...(s3.endpoint === null ? {} : { endpoint: s3.endpoint }),
    forcePathStyle: s3.forcePathStyle,
    ...(s3.accessKeyId !== null && s3.secretAccessKey !== null
      ? { credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } }
      : {}),
    // since 3.729 the SDK adds CRC checksums to every request by default; several S3-compatible servers reject them
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: S3_MAX_ATTEMPTS,
    retryMode: 'standard',
    requestHandler: { connectionTimeout: 5_000, requestTimeout: S3_REQUEST_TIMEOUT_MS },
  };
}

/**
 * The AWS SDK, loaded by the first S3 lake a process opens: loading it costs a quarter of a CPU-second, which a
 * landing worker thread of a local lake (and every command) need not pay.
 */
let awsSdk: Promise<{
  s3: typeof import('@aws-sdk/client-s3');
  storage: typeof import('@aws-sdk/lib-storage');
}> | null = null;
function loadAwsSdk() {
  awsSdk ??= Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(([s3, storage]) => ({
    s3,
    storage,
  }));
  return awsSdk;
}

export class S3LakeStore implements LakeStore {
  readonly kind = 's3';
  private opened: S3Client | null = null;
  constructor(readonly s3: LakeS3) {}

  /** The store's S3 client, made on first use. */
  private async client(): Promise<S3Client> {
    const { s3 } = await loadAwsSdk();
    this.opened ??= new s3.S3Client(s3ClientConfig(this.s3));
    return this.opened;
  }

  private key(relPath: string): string {
    return this.s3.prefix === '' ? relPath : `${this.s3.prefix}/${relPath}`;
  }

  describe(relPath: string): string {
    return `s3://${this.s3.bucket}/${this.key(relPath)}`;
  }

  /** An object appears whole or not at all: one PUT, or a multipart upload completed only after its last part. */
  async put(relPath: string, bytes: Uint8Array): Promise<void> {
    const { storage } = await loadAwsSdk();
    const upload = new storage.Upload({
      client: await this.client(),
      params: {
        Bucket: this.s3.bucket,
        Key: this.key(relPath),
        Body: bytes,
        ContentType: 'application/vnd.apache.parquet',
      },
      partSize: PART_SIZE,
      queueSize: 4,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  /** Streams the object's body into memory (Parquet's footer is at its end: a file is decoded whole). */
  async get(relPath: string): Promise<Buffer> {
    const { s3 } = await loadAwsSdk();
    const client = await this.client();
    try {
      const out = await client.send(new s3.GetObjectCommand({ Bucket: this.s3.bucket, Key: this.key(relPath) }));
      const chunks: Buffer[] = [];
      for await (const chunk of out.Body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
      return Buffer.concat(chunks);
    } catch (err) {
      if (err instanceof s3.NoSuchKey || (err as { name?: string }).name === 'NoSuchKey') {
        throw new LakeObjectMissingError(`lake object ${this.describe(relPath)} does not exist`, { cause: err });
      }
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const found: string[] = [];
    const root = this.s3.prefix === '' ? '' : `${this.s3.prefix}/`;
    const { s3 } = await loadAwsSdk();
    const client = await this.client();
    let token: string | undefined;
    do {
      const page = await client.send(
        new s3.ListObjectsV2Command({ Bucket: this.s3.bucket, Prefix: root + prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) if (o.Key !== undefined) found.push(o.Key.slice(root.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return found.sort();
  }

  async remove(relPaths: string[]): Promise<void> {
    const { s3 } = await loadAwsSdk();
    const client = await this.client();
    for (let i = 0; i < relPaths.length; i += 1000) {
      const out = await client.send(
        new s3.DeleteObjectsCommand({
          Bucket: this.s3.bucket,
          Delete: { Objects: relPaths.slice(i, i + 1000).map((p) => ({ Key: this.key(p) })), Quiet: true },
        }),
      );
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        throw new Error(
          `could not remove ${failed.length} lake objects, e.g. ${failed[0].Key}: ${failed[0].Code} ${failed[0].Message ?? ''}`,
        );
      }
    }
  }
}

// --- choosing the store ------------------------------------------------------------------------------

/** A lake as the pipeline passes it around: a local folder's path, or an opened store. */
export type LakeLocation = string | LakeStore;

/** The lake settings of the configuration (and the plain data a landing worker thread receives). */
export interface LakeSettings {
  lakeDir: string;
  lakeS3: LakeS3 | null;
}

const opened = new WeakMap<LakeS3, S3LakeStore>();

/** The store of a configuration: one S3 client per configuration, reused by every call. */
export function lakeOf(settings: LakeSettings): LakeStore {
  if (settings.lakeS3 === null) return new FileLakeStore(settings.lakeDir);
  let store = opened.get(settings.lakeS3);
  if (store === undefined) {
    store = new S3LakeStore(settings.lakeS3);
    opened.set(settings.lakeS3, store);
  }
  return store;
}

export function lakeStore(lake: LakeLocation): LakeStore {
  return typeof lake === 'string' ? new FileLakeStore(lake) : lake;
}

/** Parses LAKE_URL=s3://bucket/prefix into bucket and prefix; null when it is not an s3:// URL. */
export function parseS3Url(value: string): { bucket: string; prefix: string } | null {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(value.trim());
  if (m === null) return null;
  return { bucket: m[1], prefix: m[2].replace(/^\/+|\/+$/g, '') };
}

/** The environment variables that point a child process (a worker) at this lake. */
export function lakeEnvironment(settings: LakeSettings): Record<string, string> {
  const s3 = settings.lakeS3;
  if (s3 === null) return { LAKE_URL: '', LAKE_DIR: settings.lakeDir };
  return {
    LAKE_URL: `s3://${s3.bucket}/${s3.prefix}`,
    AWS_REGION: s3.region,
    AWS_ENDPOINT_URL_S3: s3.endpoint ?? '',
    AWS_S3_FORCE_PATH_STYLE: String(s3.forcePathStyle),
    AWS_ACCESS_KEY_ID: s3.accessKeyId ?? '',
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey ?? '',
  };
}

/** The same lake's connection with another key prefix under it (a test's or a benchmark's own corner). */
export function withPrefix(s3: LakeS3, sub: string): { lakeDir: string; lakeS3: LakeS3 } {
  const prefix = s3.prefix === '' ? sub : `${s3.prefix}/${sub}`;
  return { lakeDir: `s3://${s3.bucket}/${prefix}`, lakeS3: { ...s3, prefix } };
}
