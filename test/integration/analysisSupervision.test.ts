import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AnalyzerDiedError, AnalyzerStartError, AnalyzerSupervisor } from '../../actors/AnalyzerSupervisor.js';
import { parseAnalysisSettings, tapSpecOf, workerSpecOf } from '../../config/analysis.js';
import type { EngineSupervisionPolicy } from '../../machines/engine.js';
import { AnalysisEngine, type HarnessEvent } from '../support/analysisEngine.js';
import { clip720p30, clipSource } from '../support/analysisMedia.js';

const FAST: EngineSupervisionPolicy = { initialDelayMs: 100, maxDelayMs: 1_000, startTimeoutMs: 20_000, shutdownTimeoutMs: 2_000, stableAfterMs: 30_000, hangTimeoutMs: 5_000 };

/** Frames per second of a hub stream between two `hub` reports of the engine. */
function fps(engine: AnalysisEngine, stream: string, fromIndex: number): number {
  const reports = engine.events.slice(fromIndex).filter((e): e is Extract<HarnessEvent, { type: 'hub' }> => e.type === 'hub' && stream in e.streams);
  const first = reports[0]!;
  const last = reports[reports.length - 1]!;
  return ((last.streams[stream]!.buffers - first.streams[stream]!.buffers) * 1000) / (last.at - first.at);
}

describe('analyzer supervision', () => {
  const dir = mkdtempSync(join(tmpdir(), 'analyzer-supervision-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const plugin = (name: string, body: string) => {
    const file = join(dir, `${name}.mjs`);
    writeFileSync(file, body);
    return file;
  };
  const supervisorFor = (module: string, hangTimeoutMs = 10_000) => {
    const [settings] = parseAnalysisSettings({ analyzers: { mine: { stream: 'video', module } } }).analyzers;
    return new AnalyzerSupervisor({ spec: workerSpecOf(settings!), policy: FAST, hangTimeoutMs });
  };

  it('emits "failedToStart" when the analyzer cannot start, and retries', async () => {
    const supervisor = supervisorFor(plugin('throws', 'export default () => { throw new Error("no model here"); };\n'));
    try {
      supervisor.start();
      const [first] = (await once(supervisor, 'failedToStart')) as [AnalyzerStartError];
      assert.ok(first instanceof AnalyzerStartError);
      assert.match(first.message, /analyzer mine failed to start: exited with code 1/);
      await once(supervisor, 'failedToStart');
      assert.ok(supervisor.status().restarts >= 1);
    } finally {
      await supervisor.close();
    }
  });

  it('emits "died" when a running analyzer dies, and starts it again', async () => {
    const supervisor = supervisorFor(plugin('fine', 'export default () => ({ analyze: async () => ({ detections: [] }) });\n'));
    try {
      supervisor.start();
      const [{ pid }] = (await once(supervisor, 'ready')) as [{ pid: number }];
      process.kill(pid, 'SIGKILL');
      const [error] = (await once(supervisor, 'died')) as [AnalyzerDiedError];
      assert.ok(error instanceof AnalyzerDiedError);
      assert.match(error.message, /died: killed by signal SIGKILL/);
      const [again] = (await once(supervisor, 'ready')) as [{ pid: number }];
      assert.notEqual(again.pid, pid);
    } finally {
      await supervisor.close();
    }
  });

  it('kills and restarts an analyzer whose analyze() never returns', async () => {
    const engine = await AnalysisEngine.start();
    const supervisor = supervisorFor(plugin('hangs', 'export default () => ({ analyze: () => new Promise(() => {}) });\n'), 1_500);
    try {
      const [settings] = parseAnalysisSettings({ analyzers: { mine: { stream: 'video', fps: 5 } } }).analyzers;
      engine.send({ type: 'analysis', taps: [tapSpecOf(settings!)], decoder: 'auto' });
      engine.send({ type: 'start', pipeline: 'main', launch: 'videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=10/1 ! appsink name=video' });
      const tap = await engine.waitFor((e): e is Extract<HarnessEvent, { type: 'analysis-tap' }> => e.type === 'analysis-tap' && e.port !== null);
      supervisor.setSource(tap.port);
      const restart = new Promise((resolve) => supervisor.observer.once('restart', resolve));
      supervisor.start();
      const [error] = (await once(supervisor, 'died')) as [AnalyzerDiedError];
      assert.match(error.message, /analyzer mine hung: one frame took over \d+ ms/);
      assert.deepEqual(await restart, { analyzer: 'mine', reason: 'hung' });
    } finally {
      await supervisor.close();
      await engine.stop();
    }
  });
});

describe('an analyzer at 5 fps on a 720p30 H.264 stream', () => {
  let engine: AnalysisEngine;
  let supervisor: AnalyzerSupervisor;
  before(async () => {
    engine = await AnalysisEngine.start();
  });
  after(async () => {
    await supervisor?.close();
    await engine?.stop();
  });

  it('keeps the producing pipeline at 30 fps, and a killed analyzer comes back without a pipeline restart', async () => {
    const [settings] = parseAnalysisSettings({ analyzers: { cam: { fps: 5, threshold: 0.3 } } }).analyzers;
    engine.send({ type: 'analysis', taps: [tapSpecOf(settings!)], decoder: 'auto' });
    engine.send({ type: 'start', pipeline: 'main', launch: `${clipSource(clip720p30(20))} ! inference name=cam ! h264parse ! appsink name=video` });
    await engine.waitFor((e) => e.type === 'state' && e.state === 'playing');
    const tap = await engine.waitFor((e): e is Extract<HarnessEvent, { type: 'analysis-tap' }> => e.type === 'analysis-tap' && e.port !== null);
    supervisor = new AnalyzerSupervisor({ spec: workerSpecOf(settings!), policy: FAST });
    supervisor.setSource(tap.port);
    const analysed: number[] = [];
    supervisor.on('result', () => analysed.push(Date.now()));
    supervisor.start();
    const [{ pid }] = (await once(supervisor, 'ready')) as [{ pid: number }];
    await once(supervisor.observer, 'fps');
    const mark = engine.events.length;
    const t0 = Date.now();
    // Three seconds of steady state: the analyzer looks at 5 frames a second, the pipeline moves 30.
    while (Date.now() - t0 < 3_000) await once(supervisor.observer, 'fps');
    const steady = analysed.filter((t) => t >= t0).length / ((Date.now() - t0) / 1000);
    assert.ok(steady >= 4 && steady <= 6, `analysed ${steady.toFixed(1)} fps`);
    assert.ok(Math.abs(fps(engine, 'video', mark) - 30) <= 2, `pipeline at ${fps(engine, 'video', mark).toFixed(1)} fps`);

    const killedAt = engine.events.length;
    process.kill(pid, 'SIGKILL');
    await once(supervisor, 'died');
    await once(supervisor, 'ready');
    const back = analysed.length;
    await new Promise<void>((resolve) => supervisor.on('result', () => analysed.length >= back + 3 && resolve()));
    // Long enough after the kill for the engine's per-second counters to span the restart.
    while (engine.events.slice(killedAt).filter((e) => e.type === 'hub').length < 4) await engine.waitFor((e) => e.type === 'hub', 5_000, engine.events.length);
    const after = engine.events.slice(killedAt);
    assert.ok(!after.some((e) => e.type === 'error' || e.type === 'stopped' || e.type === 'eos'), 'the pipeline never noticed');
    assert.ok(!after.some((e) => e.type === 'analysis-tap' && e.port !== tap.port), 'the tap kept its socket');
    assert.ok(Math.abs(fps(engine, 'video', killedAt) - 30) <= 2, `pipeline at ${fps(engine, 'video', killedAt).toFixed(1)} fps across the restart`);
  });
});
