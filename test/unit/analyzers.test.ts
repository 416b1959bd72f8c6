import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { filter, firstValueFrom } from 'rxjs';
import { AnalyzerDiedError, AnalyzerStartError } from '../../actors/AnalyzerSupervisor.js';
import { ControlPlane, type ControlPlaneEvent, type StatusDocument } from '../../actors/ControlPlane.js';
import { capReported, MAX_REPORTED_BYTES } from '../../actors/reportedPatch.js';
import type { FrameResult } from '../../analysis/types.js';
import type { EngineCommand } from '../../ipc/protocol.js';
import { FakeAnalyzer } from '../support/FakeAnalyzer.js';
import { FakeEngine } from '../support/FakeEngine.js';

const LIVE = 'videotestsrc is-live=true ! inference name=people ! fakesink';

function setup() {
  const engine = new FakeEngine();
  const analyzers: FakeAnalyzer[] = [];
  const plane = new ControlPlane({
    logger: pino({ level: 'silent' }),
    engine,
    createAnalyzer: (options) => {
      const analyzer = new FakeAnalyzer(options);
      analyzers.push(analyzer);
      return analyzer;
    },
  });
  plane.start();
  const status = (predicate: (s: StatusDocument) => boolean) => firstValueFrom(plane.status$.pipe(filter(predicate)));
  const outcome = (sequence: number) =>
    firstValueFrom(plane.events$.pipe(filter((e): e is Extract<ControlPlaneEvent, { type: 'config' }> => e.type === 'config' && e.sequence === sequence)));
  const apply = async (desired: Record<string, unknown>) => {
    const result = await outcome(plane.applyDesired(desired));
    assert.equal(result.status, 'applied', result.error ?? '');
  };
  const analysisCommands = () => engine.commands.filter((c): c is Extract<EngineCommand, { type: 'analysis' }> => c.type === 'analysis');
  const live = (name: string) => analyzers.filter((a) => a.name === name && !a.closed);
  return { engine, plane, analyzers, status, outcome, apply, analysisCommands, live };
}

describe('the control plane runs the twin\'s analyzers', () => {
  it('starts one analyzer per entry and gives the engine their taps on apply', async () => {
    const { plane, apply, analysisCommands, live } = setup();
    await apply({ pipeline: LIVE, analyzers: { people: { classes: ['person', 'car'], fps: 5 }, lobby: { stream: 'video', fps: 2 } }, decoder: 'software' });
    assert.equal(live('people').length, 1);
    assert.equal(live('lobby').length, 1);
    assert.ok(live('people')[0]!.started);
    assert.deepEqual(live('people')[0]!.options.spec.classes, ['person', 'car']);
    const [command] = analysisCommands();
    assert.deepEqual(command, {
      type: 'analysis',
      decoder: 'software',
      taps: [
        { analyzer: 'people', source: { kind: 'element', element: 'people' }, fps: 5, inputSize: 320, keyFramesOnly: false },
        { analyzer: 'lobby', source: { kind: 'stream', stream: 'video' }, fps: 2, inputSize: 320, keyFramesOnly: false },
      ],
    });
    await plane.close();
  });

  it('sends the analysis command again to every new engine, as the RTSP settings', async () => {
    const { engine, plane, apply, analysisCommands } = setup();
    await apply({ pipeline: LIVE, analyzers: { people: {} } });
    assert.equal(analysisCommands().length, 1);
    await apply({ pipeline: LIVE, analyzers: { people: {} }, $version: 2 });
    assert.equal(analysisCommands().length, 1, 'an unchanged set is not sent again');
    engine.die();
    engine.up();
    assert.equal(analysisCommands().length, 2);
    assert.deepEqual(analysisCommands()[1], analysisCommands()[0]);
    await plane.close();
  });

  it('hands each tap\'s frame socket to its analyzer, and takes it back when the engine goes down', async () => {
    const { engine, plane, apply, live, status } = setup();
    await apply({ pipeline: LIVE, analyzers: { people: {} } });
    const analyzer = live('people')[0]!;
    engine.events$.next({ type: 'analysis-tap', analyzer: 'people', port: 40123, decoder: 'avdec_h264', error: null });
    assert.deepEqual(analyzer.sources, [40123]);
    const doc = await status((s) => s.analysis.people?.decoder === 'avdec_h264');
    assert.equal(doc.analysis.people!.source, 'element people');
    engine.events$.next({ type: 'analysis-tap', analyzer: 'people', port: 40123, decoder: 'avdec_h264', error: null });
    assert.deepEqual(analyzer.sources, [40123], 'the same port is not handed twice');
    engine.die();
    assert.deepEqual(analyzer.sources, [40123, null]);
    engine.events$.next({ type: 'analysis-tap', analyzer: 'nobody', port: 1, decoder: null, error: null });
    await plane.close();
  });

  it('replaces an analyzer whose model settings changed and keeps the process when only the tap changed', async () => {
    const { plane, apply, live, analyzers } = setup();
    await apply({ pipeline: LIVE, analyzers: { people: { fps: 5 } } });
    const first = live('people')[0]!;
    await apply({ pipeline: LIVE, analyzers: { people: { fps: 2, key_frames_only: true } } });
    assert.deepEqual(live('people'), [first], 'fps and key frames are the tap\'s: same process');
    await apply({ pipeline: LIVE, analyzers: { people: { fps: 2, key_frames_only: true, threshold: 0.3 } } });
    assert.equal(first.closed, true);
    assert.equal(live('people').length, 1);
    assert.equal(live('people')[0]!.options.spec.threshold, 0.3);
    await apply({ pipeline: LIVE });
    assert.equal(live('people').length, 0, 'an analyzer removed from the twin is stopped');
    assert.equal(analyzers.length, 2);
    await plane.close();
  });

  it('gives a replaced analyzer the socket of the tap it keeps', async () => {
    const { engine, plane, apply, live } = setup();
    await apply({ pipeline: LIVE, analyzers: { people: {} } });
    engine.events$.next({ type: 'analysis-tap', analyzer: 'people', port: 40999, decoder: null, error: null });
    await apply({ pipeline: LIVE, analyzers: { people: { classes: ['dog'] } } });
    assert.deepEqual(live('people')[0]!.sources, [40999]);
    await plane.close();
  });

  it('puts detections on events$, every result on analysisResults$, and the analyzer in the status document', async () => {
    const { plane, apply, live, status } = setup();
    await apply({ pipeline: LIVE, analyzers: { people: {} } });
    const analyzer = live('people')[0]!;
    analyzer.ready(777);
    const running = await status((s) => s.analysis.people?.state === 'running');
    assert.deepEqual(running.analysis.people, {
      state: 'running',
      source: 'element people',
      pid: 777,
      runtime: 'onnxruntime',
      fps: 0,
      restarts: 0,
      lastError: null,
      decoder: null,
      tapError: null,
    });
    const result: FrameResult = {
      analyzer: 'people',
      camera: 'people',
      sequence: 1,
      timestamp: new Date().toISOString(),
      width: 320,
      height: 180,
      latencyMs: 20,
      detections: [{ class: 'person', score: 0.9, box: { x: 0.1, y: 0.2, width: 0.3, height: 0.4 } }],
    };
    const seen = firstValueFrom(plane.analysisResults$);
    const detected = firstValueFrom(plane.events$.pipe(filter((e) => e.type === 'detection')));
    analyzer.emit('result', result);
    analyzer.emit('detection', { type: 'detection', analyzer: 'people', camera: 'people', timestamp: result.timestamp, class: 'person', score: 0.9, x: 0.1, y: 0.2, width: 0.3, height: 0.4, dropped: 0 });
    assert.deepEqual(await seen, result);
    assert.equal((await detected).type, 'detection');
    analyzer.observer.emit('fps', { analyzer: 'people', fps: 4.8 });
    await status((s) => s.analysis.people?.fps === 4.8);
    await plane.close();
  });

  it('tells a start failure from a death, both as analyzer-down events and in the status', async () => {
    const { plane, apply, live, status } = setup();
    await apply({ pipeline: LIVE, analyzers: { people: {} } });
    const analyzer = live('people')[0]!;
    const downs: ControlPlaneEvent[] = [];
    plane.events$.pipe(filter((e) => e.type === 'analyzer-down')).subscribe((e) => downs.push(e));
    analyzer.setStatus({ state: 'backoff', restarts: 1, lastError: 'failed to start: exited with code 1' });
    analyzer.emit('failedToStart', new AnalyzerStartError('analyzer people failed to start: exited with code 1'));
    analyzer.setStatus({ state: 'backoff', restarts: 2, lastError: 'died: killed by signal SIGKILL' });
    analyzer.emit('died', new AnalyzerDiedError('analyzer people died: killed by signal SIGKILL'));
    assert.deepEqual(downs.map((e) => e.type === 'analyzer-down' && e.cause), ['failed-to-start', 'died']);
    const doc = await status((s) => s.analysis.people?.restarts === 2);
    assert.equal(doc.analysis.people!.state, 'backoff');
    assert.match(doc.analysis.people!.lastError ?? '', /SIGKILL/);
    await plane.close();
  });

  it('rejects an analyzer module that does not load, with the reason, and keeps what runs', async () => {
    const { plane, apply, outcome, live, status } = setup();
    await apply({ pipeline: LIVE, analyzers: { people: {} }, $version: 1 });
    const rejected = await outcome(plane.applyDesired({ pipeline: LIVE, analyzers: { people: {}, door: { stream: 'video', module: '/nonexistent/motion.js' } }, $version: 2 }));
    assert.equal(rejected.status, 'rejected');
    assert.match(rejected.error ?? '', /^analyzers\.door\.module "\/nonexistent\/motion\.js" does not load/);
    assert.equal(live('door').length, 0);
    assert.equal(live('people').length, 1);
    const doc = await status((s) => s.config.rejectedVersion === 2);
    assert.equal(doc.config.appliedVersion, 1);
    assert.ok(doc.analysis.people);
    await plane.close();
  });

  it('warns about an analyzer whose inference element no pipeline has', async () => {
    const { plane, apply, status } = setup();
    await apply({ pipeline: 'videotestsrc ! fakesink', analyzers: { people: {} } });
    const doc = await status((s) => s.config.status === 'applied');
    assert.deepEqual(doc.config.warnings, ['analyzer "people" reads inference name=people, which no pipeline has: it waits for one']);
    await plane.close();
  });

  it('keeps sixteen failing analyzers\' section small enough to leave the pipelines in the reported properties', async () => {
    const { engine, plane, apply, live, status } = setup();
    const analyzers = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`cam${i}`, { stream: `video${i}` }]));
    const pipelines = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`p${i}`, `${LIVE} name=n${i}`]));
    await apply({ pipeline: LIVE, pipelines, analyzers });
    for (let i = 0; i < 16; i++) {
      live(`cam${i}`)[0]!.setStatus({ state: 'backoff', restarts: 3, lastError: `failed to start: ${'x'.repeat(5_000)}` });
      engine.events$.next({ type: 'analysis-tap', analyzer: `cam${i}`, port: null, decoder: null, error: `tap pipeline does not parse: ${'y'.repeat(5_000)}` });
    }
    const doc = await status((s) => Object.keys(s.analysis).length === 16 && s.analysis.cam15?.tapError !== null);
    assert.ok(Buffer.byteLength(JSON.stringify(doc.analysis)) < 12_000, `${Buffer.byteLength(JSON.stringify(doc.analysis))} bytes`);
    const reported = capReported(doc);
    assert.ok(Buffer.byteLength(JSON.stringify(reported)) <= MAX_REPORTED_BYTES);
    assert.equal(Object.keys(reported.pipelines as object).length, 21, 'no pipeline left out');
    await plane.close();
  });

  it('stops every analyzer when it closes, and the last status says so', async () => {
    const { plane, apply, live } = setup();
    await apply({ pipeline: LIVE, analyzers: { people: {} } });
    const analyzer = live('people')[0]!;
    await plane.close();
    assert.equal(analyzer.closed, true);
    assert.equal(plane.status$.value.analysis.people?.state, 'stopped');
  });
});
