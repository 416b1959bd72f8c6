/** Shared pieces of the recording tests: settings for the two emulators, segment files, and reading back what was stored. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { segmentFileName } from '../../recording/naming.js';
import type { AzuriteServer, S3rverServer } from './storageServers.js';

export const CONTAINER = 'recordings';
export const BUCKET = 'recordings';

/** Environment the settings expand from: credentials only ever come from variables. */
export function storageEnv(azurite: AzuriteServer | null, s3: S3rverServer | null): NodeJS.ProcessEnv {
  return {
    ...(azurite ? { AZ_CONN: azurite.connectionString } : {}),
    ...(s3 ? { S3_ENDPOINT: s3.endpoint, S3_KEY: 'S3RVER', S3_SECRET: 'S3RVER' } : {}),
  };
}

export const azureTarget = { type: 'azure-blob', name: 'azure', container: CONTAINER, connection_string: '$AZ_CONN' };
export const s3Target = { type: 's3', name: 's3', bucket: BUCKET, endpoint: '$S3_ENDPOINT', access_key_id: '$S3_KEY', secret_access_key: '$S3_SECRET' };

export async function createContainer(azurite: AzuriteServer): Promise<void> {
  await BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER).createIfNotExists();
}

export interface MadeSegment {
  readonly path: string;
  readonly stream: string;
  readonly startMs: number;
  readonly durationMs: number;
  readonly size: number;
  readonly md5: string;
}

/** A segment-shaped file of random bytes (the queue does not read MP4; the recorder tests check real ones). */
export function makeSegment(dir: string, stream: string, startMs: number, size: number): MadeSegment {
  mkdirSync(dir, { recursive: true });
  const data = randomBytes(size);
  const path = join(dir, segmentFileName(stream, startMs));
  writeFileSync(path, data);
  return { path, stream, startMs, durationMs: 10_000, size, md5: createHash('md5').update(data).digest('hex') };
}

const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('hex');

export async function azureObjects(azurite: AzuriteServer): Promise<Map<string, string>> {
  const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER);
  const out = new Map<string, string>();
  for await (const blob of container.listBlobsFlat()) out.set(blob.name, md5(await container.getBlockBlobClient(blob.name).downloadToBuffer()));
  return out;
}

export function s3Client(s3: S3rverServer): S3Client {
  return new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
}

export async function s3Objects(s3: S3rverServer): Promise<Map<string, string>> {
  const client = s3Client(s3);
  const out = new Map<string, string>();
  const list = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  for (const object of list.Contents ?? []) {
    const body = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: object.Key! }));
    out.set(object.Key!, md5(await body.Body!.transformToByteArray()));
  }
  client.destroy();
  return out;
}

/** Resolves when `count` events of `name` have been seen (counting from now), or rejects after `timeoutMs`. */
export function waitForCount<T>(subscribe: (listener: (event: T) => void) => () => void, count: number, timeoutMs: number, what: string, filter: (event: T) => boolean = () => true): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const seen: T[] = [];
    const off = subscribe((event) => {
      if (!filter(event)) return;
      seen.push(event);
      if (seen.length >= count) {
        clearTimeout(timer);
        off();
        resolve(seen);
      }
    });
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${what}: ${seen.length} of ${count} in ${timeoutMs} ms`));
    }, timeoutMs);
  });
}
