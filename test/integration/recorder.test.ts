import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SegmentQueue } from '../../recording/SegmentQueue.js';
import { parseRecordSettings } from '../../recording/settings.js';
import { JsonChild, type ChildEvent } from '../support/jsonChild.js';
import { RECORDER_HARNESS, type RecorderHarnessOptions } from '../support/recorderHarness.js';

const FRAGMENT_MS = 1_000;

interface Probe {
  durationS: number;
  codecs: string[];
  packets: number;
  errors: string;
}

/** ffprobe's view of a file: duration, codecs, video packets, and whatever it complained about. */
function probe(path: string): Probe {
  const run = (args: string[]) => {
    try {
      return { out: execFileSync('ffprobe', ['-v', 'error', ...args, path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }), err: '' };
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string };
      return { out: e.stdout ?? '', err: e.stderr ?? String(error) };
    }
  };
  const info = run(['-show_entries', 'format=duration:stream=codec_name', '-of', 'json']);
  const parsed = JSON.parse(info.out || '{}') as { format?: { duration?: string }; streams?: Array<{ codec_name: string }> };
  const packets = run(['-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0']);
  return { durationS: Number(parsed.format?.duration ?? NaN), codecs: (parsed.streams ?? []).map((s) => s.codec_name), packets: Number(packets.out.trim()), errors: (info.err + packets.err).trim() };
}

/** A queue with no target over a recordings folder, as the control plane opens it at start. */
function openQueue(recordingsDir: string, stateDir: string): Promise<SegmentQueue> {
  const { settings } = parseRecordSettings({ local: { dir: recordingsDir } }, {});
  return SegmentQueue.open({ stateDir, recordingsDir, camera: 'cam', objectName: settings!.objectName, local: settings!.local, upload: settings!.upload, targets: [], orphanSettleMs: 200 });
}

function harness(dir: string, options: Partial<RecorderHarnessOptions> = {}): JsonChild {
  const o: RecorderHarnessOptions = { dir, segmentMs: 60_000, fragmentMs: FRAGMENT_MS, audio: false, ...options };
  return new JsonChild(RECORDER_HARNESS, [JSON.stringify(o)]);
}

/** Waits until the harness has recorded `ms` since the segment opened (its frame reports carry the time). */
async function recordFor(child: JsonChild, ms: number): Promise<ChildEvent> {
  const opened = await child.waitFor((e) => e.type === 'opened', 30_000);
  await child.waitFor((e) => e.type === 'frames' && (e.at as number) - (opened.at as number) >= ms, ms + 30_000);
  return opened;
}

describe('Recorder (engine side, node-gtk in a child process)', () => {
  const dirs: string[] = [];
  const temp = () => {
    const dir = mkdtempSync(join(tmpdir(), 'rec-recorder-'));
    dirs.push(dir);
    return dir;
  };
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('finalises the segment being written on SIGTERM: playable, its duration within one fragment of what was recorded', { timeout: 90_000 }, async () => {
    const dir = temp();
    const child = harness(dir);
    const opened = await recordFor(child, 4_500);
    const stoppedAt = Date.now();
    child.child.kill('SIGTERM');
    const segment = (await child.waitFor((e) => e.type === 'segment', 30_000)).segment as { path: string; startMs: number; durationMs: number; size: number };
    assert.equal((await child.exited).code, 0, 'exits 0 after finishing the segment');
    assert.equal(segment.path, (opened.path as string).replace(/\.part$/, ''), 'the opened .part, renamed once closed');
    assert.match(segment.path, /\/video-\d{8}T\d{6}\.\d{3}Z\.mp4$/, 'named by stream and UTC start');
    assert.ok(Math.abs(segment.startMs - (opened.at as number)) < 2_000, 'the start is the wall clock at the first frame');
    const p = probe(segment.path);
    assert.equal(p.errors, '', 'ffprobe reads it without complaint');
    assert.deepEqual(p.codecs, ['h264']);
    const recordedS = (stoppedAt - segment.startMs) / 1000;
    assert.ok(Math.abs(p.durationS - recordedS) <= FRAGMENT_MS / 1000, `ffprobe ${p.durationS} s vs ${recordedS} s recorded`);
    assert.ok(Math.abs(p.durationS - segment.durationMs / 1000) <= FRAGMENT_MS / 1000, `ffprobe ${p.durationS} s vs ${segment.durationMs} ms reported`);
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.part')), [], 'no .part left');

    // The control plane went down with the engine before it queued the segment: the next start queues it.
    const queue = await openQueue(dir, join(temp(), 'recording'));
    try {
      const queued = new Promise<{ source: string; durationMs: number; start: string }>((resolve) => queue.observer.once('queued', resolve));
      await queue.start();
      const event = await queued;
      assert.equal(event.source, 'recovered');
      assert.equal(event.start, new Date(segment.startMs).toISOString(), 'the start read back from the name');
      assert.ok(Math.abs(event.durationMs - segment.durationMs) <= 100, `duration from the file's header (${event.durationMs} ms) as reported (${segment.durationMs} ms)`);
    } finally {
      await queue.close();
    }
  });

  it('leaves a file playable up to its last fragment on SIGKILL, which the queue recovers, trimmed, as a segment', { timeout: 90_000 }, async () => {
    const dir = temp();
    const child = harness(dir);
    const opened = await recordFor(child, 4_500);
    const killedAt = Date.now();
    await child.kill('SIGKILL');
    const part = opened.path as string;
    assert.ok(existsSync(part), 'the .part file is there');
    const raw = probe(part);
    const recordedS = (killedAt - (opened.startMs as number)) / 1000;
    assert.ok(raw.durationS >= recordedS - 2 * (FRAGMENT_MS / 1000) - 0.5, `the killed file plays ${raw.durationS} s of ${recordedS} s`);
    assert.ok(raw.packets >= 30 * (recordedS - 3), `${raw.packets} frames readable`);

    const queue = await openQueue(dir, join(temp(), 'recording'));
    try {
      const queued = new Promise<{ source: string; file: string; durationMs: number }>((resolve) => queue.observer.once('queued', resolve));
      await queue.start();
      const event = await queued;
      assert.equal(event.source, 'recovered');
      assert.equal(event.file, part.split('/').pop()!.replace(/\.part$/, ''));
      const recovered = probe(part.replace(/\.part$/, ''));
      assert.equal(recovered.errors, '', 'trimmed to complete boxes, ffprobe has nothing to say');
      // Only the half-written last fragment goes (ffprobe could read some of its frames raw).
      assert.ok(recovered.durationS >= raw.durationS - FRAGMENT_MS / 1000 && recovered.durationS <= raw.durationS, `recovered ${recovered.durationS} s of the ${raw.durationS} s readable raw`);
      assert.ok(event.durationMs >= (raw.durationS - 1) * 1000, `duration estimated ${event.durationMs} ms`);
    } finally {
      await queue.close();
    }
  });

  it('muxes the hub\'s AAC audio into the same segments, split at the set length', { timeout: 90_000 }, async () => {
    const dir = temp();
    const child = harness(dir, { audio: true, segmentMs: 2_000, fragmentMs: 500 });
    try {
      const segment = (await child.waitFor((e) => e.type === 'segment', 40_000)).segment as { path: string; durationMs: number; audio: boolean };
      assert.equal(segment.audio, true);
      const p = probe(segment.path);
      assert.equal(p.errors, '');
      assert.deepEqual(p.codecs.sort(), ['aac', 'h264']);
      // splitmuxsink ends a segment at the last key frame (every 0.5 s here) that keeps it within 2 s.
      assert.ok(p.durationS >= 1.4 && p.durationS <= 2.1, `segment ${p.durationS} s`);
    } finally {
      await child.kill('SIGTERM');
    }
  });

  it('finishes the open segment and starts a new one when a hot swap changes the producer\'s caps', { timeout: 90_000 }, async () => {
    const dir = temp();
    const child = harness(dir, { swapAfterMs: 3_000, swapSize: '640x480' });
    try {
      const first = (await child.waitFor((e) => e.type === 'segment', 40_000)).segment as { path: string; durationMs: number };
      const second = await child.waitFor((e) => e.type === 'opened' && e.path !== undefined, 20_000, child.events.findIndex((e) => e.type === 'swapped'));
      await child.waitFor((e) => e.type === 'frames' && (e.at as number) - (second.at as number) >= 2_000, 30_000);
      child.child.kill('SIGTERM');
      const last = (await child.waitFor((e) => e.type === 'segment' && (e.segment as { path: string }).path !== first.path, 30_000)).segment as { path: string };
      const size = (path: string) =>
        execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', path], { encoding: 'utf8' }).trim();
      assert.equal(probe(first.path).errors, '');
      assert.equal(probe(last.path).errors, '');
      assert.equal(size(first.path), '320,240');
      assert.equal(size(last.path), '640,480');
      assert.ok(first.durationMs >= 2_500, `the first segment ran until the swap (${first.durationMs} ms)`);
    } finally {
      await child.kill('SIGTERM');
    }
  });
});
