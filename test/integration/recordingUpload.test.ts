import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redactor } from '../../config/redact.js';
import type { SegmentUploadedEvent } from '../../recording/events.js';
import { Recordings } from '../../recording/Recordings.js';
import { parseRecordSettings } from '../../recording/settings.js';
import { azureObjects, azureTarget, CONTAINER, createContainer, makeSegment, s3Objects, s3Target, storageEnv, waitForCount, type MadeSegment } from '../support/recordingFixtures.js';
import { BlobServiceClient, ContainerSASPermissions } from '@azure/storage-blob';
import { AZURITE_KEY, AzuriteServer, S3rverServer } from '../support/storageServers.js';

const OUTAGE_MS = 60_000;

async function openRecordings(azurite: AzuriteServer, s3: S3rverServer, stateDir: string, upload: Record<string, number> = {}) {
  const env = storageEnv(azurite, s3);
  const { settings, secrets } = parseRecordSettings(
    {
      camera: 'cam1',
      local: { dir: join(stateDir, 'recordings') },
      upload: { initial_delay_ms: 250, max_delay_ms: 2_000, block_size: 256 * 1024, concurrency: 2, request_timeout_ms: 10_000, ...upload },
      targets: [azureTarget, s3Target],
    },
    env,
  );
  const redactor = new Redactor();
  redactor.add(secrets);
  const recordings = await Recordings.open(settings!, { stateDir, redact: (t) => redactor.redact(t) });
  const uploaded: SegmentUploadedEvent[] = [];
  recordings.observer.on('uploaded', (e) => uploaded.push(e));
  await recordings.start();
  const uploads = (count: number, timeoutMs: number) =>
    waitForCount<SegmentUploadedEvent>((l) => (recordings.observer.on('uploaded', l), () => recordings.observer.off('uploaded', l)), count, timeoutMs, 'uploads');
  return { recordings, uploaded, uploads, redactor };
}

describe('recording upload queue', () => {
  let azurite: AzuriteServer;
  let s3: S3rverServer;
  const dirs: string[] = [];
  const temp = () => {
    const dir = mkdtempSync(join(tmpdir(), 'rec-upload-'));
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

  it('uploads queued segments to Azure Blob and S3 byte-identical, reports each with its URL, and deletes the local file', { timeout: 60_000 }, async () => {
    const stateDir = temp();
    const { recordings, uploads } = await openRecordings(azurite, s3, stateDir);
    try {
      const t0 = Date.UTC(2024, 4, 1, 12, 0, 0);
      const made = [0, 1, 2].map((i) => makeSegment(join(stateDir, 'incoming'), 'video', t0 + i * 10_000, 300_000 + i * 100_000));
      const done = uploads(6, 40_000);
      for (const m of made) await recordings.queue.add(m);
      const events = await done;
      const azure = await azureObjects(azurite);
      const s3objects = await s3Objects(s3);
      for (const m of made) {
        const name = `cam1/video/2024/05/01/${new Date(m.startMs).toISOString().replace(/[-:]/g, '')}.mp4`;
        assert.equal(azure.get(name), m.md5, `${name} on Azure`);
        assert.equal(s3objects.get(name), m.md5, `${name} on S3`);
        assert.equal(existsSync(m.path), false, 'local file deleted after both uploads');
      }
      const first = events.find((e) => e.target === 'azure')!;
      assert.match(first.url, new RegExp(`^http://127\\.0\\.0\\.1:${azurite.port}/devstoreaccount1/recordings/cam1/video/`));
      assert.equal(first.type, 'recording-uploaded');
      assert.equal(first.durationMs, 10_000);
      const stats = recordings.queue.stats();
      assert.equal(stats.segmentsQueued, 0);
      assert.equal(stats.bytesPending, 0);
      assert.equal(stats.segmentsUploaded, 3);
    } finally {
      await recordings.close();
    }
  });

  it('loses nothing when the storage servers are down for 60 s mid-upload: every segment arrives byte-identical, in order, once', { timeout: 300_000 }, async () => {
    const stateDir = temp();
    const { recordings, uploaded, uploads } = await openRecordings(azurite, s3, stateDir, { block_size: 128 * 1024, concurrency: 1 });
    const retries: string[] = [];
    recordings.observer.on('upload-retry', (e) => retries.push(`${e.target}: ${e.error}`));
    const transfers: Array<{ segment: string; target: string; bytesSkipped: number; unitsSkipped: number; units: number }> = [];
    recordings.observer.on('upload-done', (e) => transfers.push(e));
    const incoming = join(stateDir, 'incoming');
    const t0 = Date.UTC(2024, 5, 1, 0, 0, 0);
    const made: MadeSegment[] = [];
    const add = async () => {
      const m = makeSegment(incoming, 'video', t0 + made.length * 10_000, 200_000 + (made.length % 3) * 150_000);
      made.push(m);
      await recordings.queue.add(m);
    };
    try {
      const firstUploads = uploads(4, 60_000);
      await add();
      await add();
      await firstUploads;
      // A large segment, and the servers go away while its blocks and parts are in flight.
      const big = makeSegment(incoming, 'video', t0 + made.length * 10_000, 24 * 1024 * 1024);
      made.push(big);
      // Both targets have stored part of it: Azure some 128 KiB blocks, S3 its first 5 MiB part.
      const reached = new Set<string>();
      const progress = new Promise<void>((resolve) =>
        recordings.observer.on('upload-progress', (e) => {
          if (e.size === big.size && e.bytesDone >= (e.target === 's3' ? 5 : 0.25) * 1024 * 1024) reached.add(e.target);
          if (reached.size === 2) resolve();
        }),
      );
      await recordings.queue.add(big);
      await progress;
      const before = uploaded.length;
      await Promise.all([azurite.stop(), s3.stop()]);
      const stoppedAt = Date.now();
      // Segments keep coming during the outage, as a recorder's would.
      while (Date.now() - stoppedAt < OUTAGE_MS) {
        await new Promise((resolve) => setTimeout(resolve, 10_000));
        if (made.length < 10) await add();
      }
      const during = uploaded.length - before;
      assert.ok(during <= 2, `at most the big segment's in-flight completion during the outage, got ${during}`);
      assert.ok(retries.length >= 4, `uploads were retried during the outage (${retries.length})`);
      assert.ok(recordings.queue.stats().segmentsQueued >= 5, 'segments wait in the queue');
      assert.ok(recordings.queue.stats().oldestPendingAgeS !== null);
      const rest = uploads(made.length * 2 - uploaded.length, 120_000);
      await Promise.all([azurite.start(), s3.start()]);
      await rest;

      const expected = made.map((m) => `cam1/video/2024/06/01/${new Date(m.startMs).toISOString().replace(/[-:]/g, '')}.mp4`);
      for (const target of ['azure', 's3']) {
        const order = uploaded.filter((e) => e.target === target).map((e) => e.objectName);
        assert.deepEqual(order, expected, `${target}: every segment once, in order`);
      }
      const [azure, s3objects] = await Promise.all([azureObjects(azurite), s3Objects(s3)]);
      for (const [name, objects] of [['azure', azure], ['s3', s3objects]] as const) {
        const mine = [...objects.keys()].filter((k) => k.startsWith('cam1/video/2024/06/01/')).sort();
        assert.deepEqual(mine, [...expected].sort(), `${name}: no missing and no extra objects`);
        for (const [i, m] of made.entries()) assert.equal(objects.get(expected[i]!), m.md5, `${name}: ${expected[i]} byte-identical`);
      }
      assert.equal(recordings.queue.stats().segmentsQueued, 0);
      // The big segment resumed where the outage cut it: blocks and parts already stored were not sent again.
      const bigId = recordings.queue.entries().find((e) => e.path === big.path)!.id;
      for (const target of ['azure', 's3']) {
        const transfer = transfers.find((t) => t.segment === bigId && t.target === target)!;
        assert.ok(transfer.bytesSkipped > 0 && transfer.unitsSkipped > 0, `${target} resumed the big segment: ${JSON.stringify(transfer)}`);
      }
      for (const error of retries) assert.ok(!error.includes('Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq'), 'no account key in retry errors');
    } finally {
      await recordings.close();
    }
  });

  it('keeps SAS tokens and account keys out of events, status and errors', { timeout: 60_000 }, async () => {
    const stateDir = temp();
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER);
    const sasUrl = await container.generateSasUrl({ permissions: ContainerSASPermissions.parse('rcw'), expiresOn: new Date(Date.now() + 3_600_000) });
    const sig = new URL(sasUrl).searchParams.get('sig')!;
    const wrongKey = Buffer.from('not the account key, but as long as one would be').toString('base64');
    const env = { SAS: sasUrl, BAD_CONN: azurite.connectionString.replace(/AccountKey=[^;]+/, `AccountKey=${wrongKey}`) };
    const { settings, secrets } = parseRecordSettings(
      {
        camera: 'sas',
        local: { dir: join(stateDir, 'recordings') },
        upload: { initial_delay_ms: 100, max_delay_ms: 500 },
        targets: [
          { type: 'azure-blob', name: 'sas', sas_url: '$SAS' },
          { type: 'azure-blob', name: 'bad-key', container: CONTAINER, connection_string: '$BAD_CONN' },
        ],
      },
      env,
    );
    const redactor = new Redactor();
    redactor.add(secrets);
    const recordings = await Recordings.open(settings!, { stateDir, redact: (t) => redactor.redact(t) });
    const seen: string[] = [];
    for (const name of ['queued', 'upload-started', 'uploaded', 'upload-retry', 'failed', 'log'] as const) recordings.observer.on(name, (e: unknown) => seen.push(JSON.stringify(e)));
    const uploadedBySas = new Promise<SegmentUploadedEvent>((resolve) => recordings.observer.on('uploaded', (e) => e.target === 'sas' && resolve(e)));
    const refused = new Promise<string>((resolve) => recordings.observer.on('upload-retry', (e) => e.target === 'bad-key' && resolve(e.error)));
    await recordings.start();
    try {
      await recordings.queue.add(makeSegment(join(stateDir, 'incoming'), 'video', Date.UTC(2024, 8, 1), 100_000));
      const event = await uploadedBySas;
      assert.equal(new URL(event.url).search, '', 'the object URL has no query string');
      assert.match(await refused, /^403 /, 'the bad key is refused, and the error says how');
      seen.push(JSON.stringify(recordings.status()), JSON.stringify(recordings.queue.entries()));
      for (const text of seen) {
        assert.ok(!text.includes(sig) && !text.includes(encodeURIComponent(sig)), `no SAS signature in ${text.slice(0, 200)}`);
        assert.ok(!text.includes(wrongKey) && !text.includes(AZURITE_KEY), `no account key in ${text.slice(0, 200)}`);
      }
    } finally {
      await recordings.close();
    }
  });
});
