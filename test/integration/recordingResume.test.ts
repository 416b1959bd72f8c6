import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import { JsonChild } from '../support/jsonChild.js';
import { QUEUE_WORKER, type QueueWorkerOptions } from '../support/queueWorker.js';
import { azureObjects, azureTarget, CONTAINER, createContainer, makeSegment, s3Objects, s3Target, storageEnv, type MadeSegment } from '../support/recordingFixtures.js';
import { AzuriteServer, S3rverServer } from '../support/storageServers.js';

const MIB = 1024 * 1024;

/** Folders anywhere under `dir` named `name`. */
function findDirs(dir: string, name: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const path = join(dir, entry.name);
    if (entry.name === name) out.push(path);
    out.push(...findDirs(path, name));
  }
  return out;
}

/** The journal entries the killed worker left (what it had persisted). */
function journal(stateDir: string): Array<{ targets: Record<string, { resume: { uploadId?: string; etags?: string[] } | null }> }> {
  const dir = join(stateDir, 'recording', 'queue');
  return readdirSync(dir).filter((n) => n.endsWith('.json')).map((n) => JSON.parse(readFileSync(join(dir, n), 'utf8')));
}

function worker(stateDir: string, record: unknown, env: NodeJS.ProcessEnv, add: MadeSegment[] = []): JsonChild {
  const options: QueueWorkerOptions = { stateDir, record, env, add };
  return new JsonChild(QUEUE_WORKER, [JSON.stringify(options)]);
}

describe('recording upload after SIGKILL', () => {
  let azurite: AzuriteServer;
  let s3: S3rverServer;
  const dirs: string[] = [];
  const temp = () => {
    const dir = mkdtempSync(join(tmpdir(), 'rec-resume-'));
    dirs.push(dir);
    return dir;
  };

  before(async () => {
    [azurite, s3] = await Promise.all([AzuriteServer.create(), S3rverServer.create()]);
    await createContainer(azurite);
  });

  after(async () => {
    await Promise.all([azurite?.dispose(), s3?.dispose()]);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('resumes an Azure blob upload from the blocks already staged, and completes it byte-identical', { timeout: 120_000 }, async () => {
    const stateDir = temp();
    const record = { camera: 'kill', upload: { block_size: MIB, concurrency: 1 }, local: { dir: join(stateDir, 'recordings') }, targets: [azureTarget] };
    const env = storageEnv(azurite, null);
    const segment = makeSegment(join(stateDir, 'incoming'), 'video', Date.UTC(2024, 6, 1), 40 * MIB);
    const first = worker(stateDir, record, env, [segment]);
    await first.waitFor((e) => e.type === 'upload-progress' && (e.bytesDone as number) >= 10 * MIB, 60_000);
    await first.kill('SIGKILL');

    const name = journal(stateDir).length === 1 ? `kill/video/2024/07/01/${new Date(segment.startMs).toISOString().replace(/[-:]/g, '')}.mp4` : '';
    assert.ok(name, 'the killed worker left its segment in the journal');
    const blob = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER).getBlockBlobClient(name);
    const staged = (await blob.getBlockList('uncommitted')).uncommittedBlocks ?? [];
    assert.ok(staged.length >= 10 && staged.length < 40, `blocks staged before the kill: ${staged.length}`);

    const second = worker(stateDir, record, env);
    try {
      const started = await second.waitFor((e) => e.type === 'upload-started', 30_000);
      assert.equal(started.resumed, true, 'the journal held the upload in progress');
      const done = await second.waitFor((e) => e.type === 'upload-done', 60_000);
      assert.equal(done.unitsSkipped, staged.length, 'every block staged before the kill was kept, none sent again');
      assert.equal(done.bytesSent, segment.size - staged.length * MIB);
      await second.waitFor((e) => e.type === 'recording-uploaded', 30_000);
      assert.equal(second.events.filter((e) => e.type === 'queued').length, 0, 'not queued a second time');
      assert.equal((await azureObjects(azurite)).get(name), segment.md5, 'byte-identical');
    } finally {
      second.child.stdin?.end();
      await second.kill('SIGTERM');
    }
  });

  it('resumes an S3 multipart upload with its persisted UploadId and part ETags, and completes it byte-identical', { timeout: 120_000 }, async () => {
    const stateDir = temp();
    const record = { camera: 'kill', upload: { block_size: 5 * MIB, concurrency: 1 }, local: { dir: join(stateDir, 'recordings') }, targets: [s3Target] };
    const env = storageEnv(null, s3);
    const segment = makeSegment(join(stateDir, 'incoming'), 'video', Date.UTC(2024, 6, 2), 50 * MIB);
    const first = worker(stateDir, record, env, [segment]);
    await first.waitFor((e) => e.type === 'upload-progress' && (e.bytesDone as number) >= 15 * MIB, 60_000);
    await first.kill('SIGKILL');

    const [entry] = journal(stateDir);
    const resume = entry!.targets.s3!.resume!;
    const persisted = resume.etags!.filter(Boolean).length;
    const uploadDirs = findDirs(s3.dir, resume.uploadId!);
    assert.equal(uploadDirs.length, 1, 'the multipart upload is on the server');
    const onServer = readdirSync(uploadDirs[0]!).filter((n) => /^\d+$/.test(n)).length;
    assert.ok(persisted >= 3 && persisted < 10, `part ETags persisted before the kill: ${persisted}`);
    assert.ok(onServer >= persisted, `parts on the server (${onServer}) include every persisted one`);

    const second = worker(stateDir, record, env);
    try {
      const started = await second.waitFor((e) => e.type === 'upload-started', 30_000);
      assert.equal(started.resumed, true);
      const done = await second.waitFor((e) => e.type === 'upload-done', 60_000);
      assert.equal(done.unitsSkipped, persisted, 'parts with a persisted ETag were not sent again');
      assert.equal(done.bytesSent, segment.size - persisted * 5 * MIB);
      const uploaded = await second.waitFor((e) => e.type === 'recording-uploaded', 30_000);
      const objects = await s3Objects(s3);
      assert.equal(objects.get(uploaded.objectName as string), segment.md5, 'byte-identical');
      assert.equal([...objects.keys()].filter((k) => k.startsWith('kill/')).length, 1, 'one object');
      assert.throws(() => statSync(segment.path), /ENOENT/, 'the local file went once verified');
    } finally {
      second.child.stdin?.end();
      await second.kill('SIGTERM');
    }
  });
});
