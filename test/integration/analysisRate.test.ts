import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AnalyzerSupervisor } from '../../actors/AnalyzerSupervisor.js';
import { parseAnalysisSettings, tapSpecOf, workerSpecOf } from '../../config/analysis.js';
import { AnalysisEngine, type HarnessEvent } from '../support/analysisEngine.js';
import { clip720p30, clipSource } from '../support/analysisMedia.js';

/** A plugin that finds nothing: these tests count frames, not objects. */
const MOTION_PLUGIN = fileURLToPath(new URL('../../examples/analyzers/motion.js', import.meta.url));

describe('the rate an analyzer sees frames at', () => {
  let engine: AnalysisEngine;
  const supervisors: AnalyzerSupervisor[] = [];
  before(async () => {
    engine = await AnalysisEngine.start();
  });
  after(async () => {
    await Promise.all(supervisors.map((s) => s.close()));
    await engine?.stop();
  });

  /** Frames per second the analyzer got over `seconds`, once it runs. */
  async function analysedFps(name: string, twin: Record<string, unknown>, launch: string, seconds = 3): Promise<number> {
    const [settings] = parseAnalysisSettings({ analyzers: { [name]: { module: MOTION_PLUGIN, ...twin } } }).analyzers;
    engine.send({ type: 'analysis', taps: [tapSpecOf(settings!)], decoder: 'auto' });
    engine.send({ type: 'start', pipeline: name, launch });
    const tap = await engine.waitFor((e): e is Extract<HarnessEvent, { type: 'analysis-tap' }> => e.type === 'analysis-tap' && e.analyzer === name && e.port !== null);
    const supervisor = new AnalyzerSupervisor({ spec: workerSpecOf(settings!) });
    supervisors.push(supervisor);
    supervisor.setSource(tap.port);
    supervisor.start();
    await once(supervisor, 'result');
    let count = 0;
    supervisor.on('result', () => count++);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    engine.send({ type: 'stop', pipeline: name });
    await supervisor.close();
    return count / seconds;
  }

  it('holds a stream of unknown frame rate (framerate 0/1, as some cameras send) to the analyzer\'s fps', async () => {
    const fps = await analysedFps(
      'variable',
      { stream: 'variable', fps: 3 },
      'videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! capssetter caps=video/x-raw,framerate=0/1 ! appsink name=variable',
    );
    assert.ok(fps >= 2.3 && fps <= 3.7, `${fps.toFixed(1)} fps`);
  });

  it('loses no frame of a stream at exactly the analyzer\'s fps (regression: push-time stamps dropped a third)', async () => {
    const fps = await analysedFps('exact', { stream: 'exact', fps: 10 }, 'videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=320,height=240,framerate=10/1 ! appsink name=exact');
    assert.ok(fps >= 9.3 && fps <= 10.7, `${fps.toFixed(1)} fps`);
  });

  it('never analyses a frame twice when the camera is slower than the analyzer\'s fps', async () => {
    const fps = await analysedFps('slow', { stream: 'slow', fps: 10 }, 'videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=2/1 ! appsink name=slow');
    assert.ok(fps >= 1.3 && fps <= 2.7, `${fps.toFixed(1)} fps`);
  });

  it('analyses less than one frame a second when asked (fps 0.5)', async () => {
    const fps = await analysedFps('rare', { stream: 'rare', fps: 0.5 }, 'videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=10/1 ! appsink name=rare', 4);
    assert.ok(fps >= 0.25 && fps <= 0.75, `${fps.toFixed(2)} fps`);
  });

  it('with key_frames_only decodes only key frames: one a second from a 30 fps stream with a key frame every 30', async () => {
    const fps = await analysedFps('keys', { element: 'keys', fps: 5, key_frames_only: true }, `${clipSource(clip720p30(20))} ! inference name=keys ! fakesink`);
    assert.ok(fps >= 0.6 && fps <= 1.4, `${fps.toFixed(1)} fps`);
  });

  it('hands a slow model the newest frame and counts the ones it skipped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slow-model-'));
    const slow = join(dir, 'slow.mjs');
    writeFileSync(slow, 'export default () => ({ analyze: (f) => new Promise((r) => setTimeout(() => r({ detections: [] }), 400)) });\n');
    const [settings] = parseAnalysisSettings({ analyzers: { lagging: { stream: 'lagging', module: slow, fps: 10 } } }).analyzers;
    engine.send({ type: 'analysis', taps: [tapSpecOf(settings!)], decoder: 'auto' });
    engine.send({ type: 'start', pipeline: 'lagging', launch: 'videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=10/1 ! appsink name=lagging' });
    const tap = await engine.waitFor((e): e is Extract<HarnessEvent, { type: 'analysis-tap' }> => e.type === 'analysis-tap' && e.analyzer === 'lagging' && e.port !== null);
    const supervisor = new AnalyzerSupervisor({ spec: workerSpecOf(settings!) });
    supervisors.push(supervisor);
    let dropped = 0;
    supervisor.observer.on('framesDropped', ({ frames }) => (dropped += frames));
    const sequences: number[] = [];
    supervisor.on('result', (r) => sequences.push(r.sequence));
    supervisor.setSource(tap.port);
    supervisor.start();
    while (sequences.length < 6) await once(supervisor, 'result');
    await once(supervisor.observer, 'fps');
    const gaps = sequences.slice(2).map((s, i) => s - sequences[i + 1]!);
    // 400 ms a frame at 10 fps: about 4 frames arrive per analysis, 3 of them replaced by a newer one.
    assert.ok(gaps.every((g) => g >= 2 && g <= 7), `sequence gaps ${gaps.join(',')}`);
    assert.ok(dropped >= 6, `${dropped} dropped`);
    engine.send({ type: 'stop', pipeline: 'lagging' });
    await supervisor.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the analyzer\'s socket when the pipeline restarts, and frames come again', async () => {
    const [settings] = parseAnalysisSettings({ analyzers: { steady: { module: MOTION_PLUGIN, fps: 5 } } }).analyzers;
    engine.send({ type: 'analysis', taps: [tapSpecOf(settings!)], decoder: 'auto' });
    const launch = 'videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=10/1 ! inference name=steady ! fakesink';
    engine.send({ type: 'start', pipeline: 'steady', launch });
    const tap = await engine.waitFor((e): e is Extract<HarnessEvent, { type: 'analysis-tap' }> => e.type === 'analysis-tap' && e.analyzer === 'steady' && e.port !== null);
    const supervisor = new AnalyzerSupervisor({ spec: workerSpecOf(settings!) });
    supervisors.push(supervisor);
    supervisor.setSource(tap.port);
    supervisor.start();
    await once(supervisor, 'result');
    const from = engine.events.length;
    engine.send({ type: 'stop', pipeline: 'steady' });
    await engine.waitFor((e) => e.type === 'stopped', 10_000, from);
    engine.send({ type: 'start', pipeline: 'steady', launch });
    await engine.waitFor((e) => e.type === 'state' && e.state === 'playing', 10_000, from);
    const restartedAt = Date.now();
    // A frame of the new run reaches the analyzer (one left over from the old run may come first).
    for (;;) {
      const [result] = (await once(supervisor, 'result')) as [{ timestamp: string }];
      if (Date.parse(result.timestamp) >= restartedAt) break;
    }
    assert.ok(!engine.events.slice(from).some((e) => e.type === 'analysis-tap'), 'the tap was never rebuilt or moved');
    assert.equal(supervisor.status().restarts, 0, 'the analyzer never restarted');
    await supervisor.close();
  });
});
