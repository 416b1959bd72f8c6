import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { Redactor } from '../../config/redact.js';
import { RecordingMetrics } from '../../recording/metrics.js';
import { Recordings } from '../../recording/Recordings.js';
import { parseRecordSettings } from '../../recording/settings.js';
import { makeSegment, s3Objects, s3Target, storageEnv, waitForCount, type MadeSegment } from '../support/recordingFixtures.js';
import { S3rverServer } from '../support/storageServers.js';

const SIZE = 200_000;

describe('recording disk budget', () => {
  let s3: S3rverServer;
  const dirs: string[] = [];
  before(async () => {
    s3 = await S3rverServer.create();
  });
  after(async () => {
    await s3?.dispose();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('with the server down, deletes uploaded files first, then raises the alarm and counts before dropping the oldest segment not uploaded', { timeout: 120_000 }, async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'rec-budget-'));
    dirs.push(stateDir);
    const { settings, secrets } = parseRecordSettings(
      {
        camera: 'budget',
        local: { dir: join(stateDir, 'recordings'), max_bytes: 5 * SIZE, keep_uploaded: true, alarm_at: 0.5 },
        upload: { initial_delay_ms: 200, max_delay_ms: 1_000 },
        targets: [s3Target],
      },
      storageEnv(null, s3),
    );
    const redactor = new Redactor();
    redactor.add(secrets);
    const recordings = await Recordings.open(settings!, { stateDir, redact: (t) => redactor.redact(t) });
    const registry = new Registry();
    new RecordingMetrics(registry, 'gst_iotedge').observe(recordings.queue);
    const o = recordings.observer;
    /** Every budget-related event, in order. */
    const log: string[] = [];
    o.on('alarm', (a) => log.push(`alarm:${a.level}`));
    o.on('dropped', (e) => log.push(`dropped:${e.segment.id}:${e.reason}`));
    o.on('local-deleted', (e) => log.push(`deleted:${e.segment.id}:${e.reason}`));
    const uploads = (n: number) => waitForCount((l) => (o.on('uploaded', l), () => o.off('uploaded', l)), n, 60_000, 'uploads');
    await recordings.start();
    const made: MadeSegment[] = [];
    const add = async () => {
      const m = makeSegment(join(stateDir, 'incoming'), 'video', Date.UTC(2024, 7, 1) + made.length * 10_000, SIZE);
      made.push(m);
      return recordings.queue.add(m);
    };
    try {
      const firstTwo = uploads(2);
      const [e1, e2] = [await add(), await add()];
      await firstTwo;
      assert.ok(existsSync(made[0]!.path) && existsSync(made[1]!.path), 'uploaded files are kept (keep_uploaded)');
      await s3.stop();

      const e3 = await add();
      const e4 = await add();
      assert.deepEqual(log, [], 'within budget and under the alarm level');
      await add(); // 5 x SIZE: full, and not-uploaded bytes pass 50 %.
      assert.deepEqual(log, ['alarm:filling']);
      await add();
      assert.deepEqual(log.slice(1), [`deleted:${e1.id}:disk-budget`], 'the oldest uploaded file goes first');
      await add();
      assert.deepEqual(log.slice(2), [`deleted:${e2.id}:disk-budget`]);
      const dropped = new Promise<void>((resolve) => o.on('dropped', () => resolve()));
      await add();
      await dropped;
      assert.deepEqual(log.slice(3), ['alarm:dropping', `dropped:${e3.id}:disk-budget`], 'the alarm is raised before the oldest segment not uploaded is dropped');
      assert.equal(existsSync(made[2]!.path), false);
      const stats = recordings.queue.stats();
      assert.equal(stats.segmentsDropped, 1);
      assert.equal(stats.alarm?.level, 'dropping');
      assert.ok(stats.bytesLocal <= 5 * SIZE);
      assert.equal(recordings.status().alarm?.level, 'dropping');
      const metrics = await registry.metrics();
      assert.match(metrics, /gst_iotedge_recording_segments_dropped_total\{reason="disk-budget"\} 1/);
      assert.match(metrics, /gst_iotedge_recording_disk_alarm 1/);
      const answer = recordings.queue.entries().find((e) => e.id === e3.id)!;
      assert.equal(answer.state, 'dropped');
      assert.match(answer.reason!, /budget/);

      const rest = uploads(made.length - 3);
      await s3.start();
      await rest;
      const objects = await s3Objects(s3);
      const names = recordings.queue.entries().filter((e) => e.state === 'uploaded').map((e) => e.objectName);
      assert.equal(names.length, made.length - 1, 'every segment but the dropped one was uploaded');
      for (const [i, m] of made.entries()) {
        const entry = recordings.queue.entries().find((e) => e.path === m.path)!;
        if (i === 2) assert.equal(objects.has(entry.objectName), false, 'the dropped segment never reached the server');
        else assert.equal(objects.get(entry.objectName), m.md5);
      }
      assert.ok(e4);
    } finally {
      await recordings.close();
    }
  });
});
