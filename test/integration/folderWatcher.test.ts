import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redactor } from '../../config/redact.js';
import type { SegmentUploadedEvent } from '../../recording/events.js';
import { Recordings } from '../../recording/Recordings.js';
import { parseRecordSettings } from '../../recording/settings.js';
import { s3Objects, s3Target, storageEnv, waitForCount } from '../support/recordingFixtures.js';
import { S3rverServer } from '../support/storageServers.js';

describe('watched folder', () => {
  let s3: S3rverServer;
  const dirs: string[] = [];
  before(async () => {
    s3 = await S3rverServer.create();
  });
  after(async () => {
    await s3?.dispose();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('uploads each file a splitmuxsink pipeline writes once it is closed, and never twice across a restart', { timeout: 120_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), 'rec-folder-'));
    dirs.push(root);
    const folder = join(root, 'media');
    mkdirSync(folder);
    const record = {
      camera: 'cam',
      folders: [{ path: folder, pattern: 'seg*.mp4', stream: 'split', settle_ms: 300, idle_close_ms: 1_500 }],
      local: { dir: join(root, 'recordings') },
      upload: { initial_delay_ms: 200 },
      targets: [s3Target],
    };
    const env = storageEnv(null, s3);
    const open = async () => {
      const { settings, secrets } = parseRecordSettings(record, env);
      const redactor = new Redactor();
      redactor.add(secrets);
      return Recordings.open(settings!, { stateDir: root, redact: (t) => redactor.redact(t) });
    };
    const recordings = await open();
    const uploaded: SegmentUploadedEvent[] = [];
    recordings.observer.on('uploaded', (e) => uploaded.push(e));
    await recordings.start();
    try {
      // 4 s of video in 1 s files; the pipeline ends on its own, so the newest file is closed by idle_close_ms.
      const all = waitForCount<SegmentUploadedEvent>((l) => (recordings.observer.on('uploaded', l), () => recordings.observer.off('uploaded', l)), 4, 60_000, 'uploads');
      const gst = spawn('gst-launch-1.0', ['-q', ...`videotestsrc num-buffers=120 is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=15 speed-preset=ultrafast ! h264parse ! splitmuxsink location=${folder}/seg%05d.mp4 max-size-time=1000000000`.split(' ')], { stdio: 'ignore' });
      const code = await new Promise((resolve) => gst.once('exit', resolve));
      assert.equal(code, 0);
      const written = readdirSync(folder).filter((n) => n.startsWith('seg')).sort();
      assert.ok(written.length >= 4, `splitmuxsink wrote ${written.join(', ')}`);
      const events = await all;
      await waitForCount<SegmentUploadedEvent>((l) => (recordings.observer.on('uploaded', l), () => recordings.observer.off('uploaded', l)), written.length - events.length, 30_000, 'the rest').catch(() => []);
      const names = uploaded.map((e) => e.objectName.split('/').pop()).sort();
      assert.deepEqual(names, written, 'each closed file once, named as its writer named it');
      assert.ok(uploaded.every((e) => e.stream === 'split' && /^cam\/split\/\d{4}\/\d{2}\/\d{2}\/seg\d{5}\.mp4$/.test(e.objectName)));
      const objects = await s3Objects(s3);
      assert.equal([...objects.keys()].filter((k) => k.startsWith('cam/split/')).length, written.length);
      assert.deepEqual(readdirSync(folder).sort(), written, "the writer's folder is left as it was");
    } finally {
      await recordings.close();
    }

    // A restart of the module sees the same files again: none is queued twice.
    const again = await open();
    const queued: string[] = [];
    again.observer.on('queued', (e) => queued.push(e.file));
    await again.start();
    await again.flushFolders();
    // Waiting for an event that must not come: past settle_ms every file counts as closed, so a watcher that
    // forgot what it took would queue them on this look.
    await new Promise((resolve) => setTimeout(resolve, 3 * 300));
    await again.flushFolders();
    await again.close();
    assert.deepEqual(queued, []);
  });
});
