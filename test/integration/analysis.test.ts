import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AnalyzerSupervisor } from '../../actors/AnalyzerSupervisor.js';
import type { FrameResult } from '../../analysis/types.js';
import { parseAnalysisSettings, tapSpecOf, workerSpecOf, type AnalyzerSettings } from '../../config/analysis.js';
import type { AnalysisEngineEvent } from '../../ipc/analysis.js';
import { AnalysisEngine, type HarnessEvent } from '../support/analysisEngine.js';
import { photoSource } from '../support/analysisMedia.js';

/** The example plugin (examples/analyzers/motion.ts), compiled. */
const MOTION_PLUGIN = fileURLToPath(new URL('../../examples/analyzers/motion.js', import.meta.url));

type TapEvent = Extract<AnalysisEngineEvent, { type: 'analysis-tap' }>;
const isTap = (analyzer: string) => (e: HarnessEvent): e is TapEvent => e.type === 'analysis-tap' && e.analyzer === analyzer && e.port !== null;

/** Resolves with the first result the supervisor reports that passes `check`. */
function resultWhere(supervisor: AnalyzerSupervisor, check: (r: FrameResult) => boolean, timeoutMs = 30_000): Promise<FrameResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching result in ${timeoutMs} ms (${JSON.stringify(supervisor.status())})`)), timeoutMs);
    const onResult = (r: FrameResult) => {
      if (!check(r)) return;
      clearTimeout(timer);
      supervisor.off('result', onResult);
      resolve(r);
    };
    supervisor.on('result', onResult);
  });
}

describe('video analysis with the COCO detector, photo in, detection event out', () => {
  let engine: AnalysisEngine;
  const supervisors: AnalyzerSupervisor[] = [];
  let settings: readonly AnalyzerSettings[];

  before(async () => {
    settings = parseAnalysisSettings({
      analyzers: {
        people: { model: 'coco', classes: ['person'], fps: 2, threshold: 0.4 },
        bikes: { stream: 'video', fps: 2, threshold: 0.4 },
        door: { stream: 'moving', module: MOTION_PLUGIN, fps: 5, threshold: 0, options: { grid: 8 } },
      },
    }).analyzers;
    engine = await AnalysisEngine.start();
    engine.send({ type: 'analysis', taps: settings.map(tapSpecOf), decoder: 'auto' });
  });

  after(async () => {
    await Promise.all(supervisors.map((s) => s.close()));
    await engine?.stop();
  });

  it('finds the astronaut as a person through an `inference name=people` element', async () => {
    engine.send({ type: 'start', pipeline: 'astronaut', launch: `${photoSource('astronaut')} ! inference name=people ! fakesink` });
    const tap = await engine.waitFor(isTap('people'));
    const supervisor = new AnalyzerSupervisor({ spec: workerSpecOf(settings[0]!) });
    supervisors.push(supervisor);
    const detections: unknown[] = [];
    supervisor.on('detection', (event) => detections.push(event));
    supervisor.setSource(tap.port);
    supervisor.start();
    const result = await resultWhere(supervisor, (r) => r.detections.length > 0);
    const person = result.detections[0]!;
    assert.equal(person.class, 'person');
    assert.ok(person.score >= 0.5, `score ${person.score}`);
    assert.ok(person.box.x < 0.1 && person.box.width > 0.5 && person.box.height > 0.8, JSON.stringify(person.box));
    assert.equal(result.camera, 'people');
    assert.ok(result.detections.every((d) => d.class === 'person'), 'only the classes asked for');
    assert.ok(!Number.isNaN(Date.parse(result.timestamp)));
    assert.deepEqual(Object.keys(detections[0] as object).sort(), ['analyzer', 'camera', 'class', 'dropped', 'height', 'score', 'timestamp', 'type', 'width', 'x', 'y']);
  });

  it('finds the motorcycle through the sample hub stream `video`', async () => {
    engine.send({ type: 'start', pipeline: 'motorcycle', launch: `${photoSource('motorcycle')} ! appsink name=video` });
    const tap = await engine.waitFor(isTap('bikes'));
    const supervisor = new AnalyzerSupervisor({ spec: workerSpecOf(settings[1]!) });
    supervisors.push(supervisor);
    supervisor.setSource(tap.port);
    supervisor.start();
    const result = await resultWhere(supervisor, (r) => r.detections.some((d) => d.class === 'motorcycle'));
    const motorcycle = result.detections.find((d) => d.class === 'motorcycle')!;
    assert.ok(motorcycle.score >= 0.5, `score ${motorcycle.score}`);
    assert.equal(result.camera, 'video');
    assert.ok(result.width === 320 && result.height === 216, `frame fits 320x320 with the photo's aspect ratio: ${result.width}x${result.height}`);
  });

  it('runs a user\'s plugin module (the motion example) on the same frames and result types', async () => {
    engine.send({ type: 'start', pipeline: 'ball', launch: 'videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=10/1 ! appsink name=moving' });
    const tap = await engine.waitFor(isTap('door'));
    const supervisor = new AnalyzerSupervisor({ spec: workerSpecOf(settings[2]!) });
    supervisors.push(supervisor);
    supervisor.setSource(tap.port);
    supervisor.start();
    const [{ runtime }] = (await once(supervisor, 'ready')) as [{ runtime: string }];
    assert.equal(runtime, `plugin ${MOTION_PLUGIN}`);
    const result = await resultWhere(supervisor, (r) => r.detections.length > 0);
    const motion = result.detections[0]!;
    assert.equal(motion.class, 'motion');
    assert.ok(motion.score > 0 && motion.box.width > 0 && motion.box.width <= 0.5, JSON.stringify(motion));
  });
});
