import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { filter, firstValueFrom } from 'rxjs';
import { ControlPlane, type ControlPlaneEvent, type StatusDocument } from '../../actors/ControlPlane.js';
import { FakeEngine } from '../support/FakeEngine.js';

const LIVE = 'videotestsrc is-live=true ! fakesink';

function setup() {
  const engine = new FakeEngine();
  const plane = new ControlPlane({ logger: pino({ level: 'silent' }), engine, env: { CAM: 'cam-1' } });
  plane.start();
  const status = (predicate: (s: StatusDocument) => boolean) => firstValueFrom(plane.status$.pipe(filter(predicate)));
  const outcome = (sequence: number) =>
    firstValueFrom(plane.events$.pipe(filter((e): e is Extract<ControlPlaneEvent, { type: 'config' }> => e.type === 'config' && e.sequence === sequence)));
  return { engine, plane, status, outcome };
}

describe('control plane (with a fake engine)', () => {
  it('applies a desired document: the pipeline starts in the engine and the status says playing', async () => {
    const { engine, plane, status, outcome } = setup();
    const sequence = plane.applyDesired({ pipeline: LIVE, $version: 4 });
    assert.equal((await outcome(sequence)).status, 'applied');
    const doc = await status((s) => s.pipelines.main?.state === 'playing');
    assert.equal(doc.config.appliedVersion, 4);
    assert.equal(doc.engine.state, 'running');
    const start = engine.commands.find((c) => c.type === 'start');
    assert.equal(start?.type === 'start' && start.launch, LIVE);
    await plane.close();
  });

  it('swaps only the pipelines whose text changed', async () => {
    const { engine, plane, outcome, status } = setup();
    await outcome(plane.applyDesired({ pipeline: LIVE, pipelines: { cam2: `${LIVE} name=$CAM` } }));
    await status((s) => s.pipelines.main?.state === 'playing' && s.pipelines.cam2?.state === 'playing');
    const before = engine.commands.length;
    await outcome(plane.applyDesired({ pipeline: LIVE.replace('fakesink', 'fakesink sync=false'), pipelines: { cam2: `${LIVE} name=$CAM` } }));
    await status((s) => s.pipelines.main?.state === 'playing' && s.pipelines.main.pipeline.includes('sync=false'));
    const changed = engine.commands.slice(before).filter((c) => c.type === 'start' || c.type === 'stop');
    assert.deepEqual(changed.map((c) => (c.type === 'start' || c.type === 'stop' ? `${c.type} ${c.pipeline}` : '')), ['stop main', 'start main']);
    await plane.close();
  });

  it('validates a document again when the engine comes back, instead of rejecting it', async () => {
    const { engine, plane, outcome, status } = setup();
    await outcome(plane.applyDesired({ pipeline: LIVE }));
    engine.holdValidations();
    const sequence = plane.applyDesired({ pipeline: `${LIVE} name=next`, $version: 9 });
    const result = outcome(sequence);
    engine.die();
    engine.releaseValidations();
    setImmediate(() => engine.up());
    assert.equal((await result).status, 'applied');
    await status((s) => s.config.appliedVersion === 9 && s.pipelines.main?.state === 'playing');
    await plane.close();
  });

  it('brings every pipeline back when the engine is up again after dying', async () => {
    const { engine, plane, outcome, status } = setup();
    await outcome(plane.applyDesired({ pipeline: LIVE, pipelines: { cam2: LIVE } }));
    await status((s) => s.pipelines.main?.state === 'playing' && s.pipelines.cam2?.state === 'playing');
    engine.die();
    await status((s) => s.pipelines.main?.state === 'backoff' && s.pipelines.cam2?.state === 'backoff');
    const starts = engine.commands.filter((c) => c.type === 'start').length;
    engine.up();
    await status((s) => s.pipelines.main?.state === 'playing' && s.pipelines.cam2?.state === 'playing' && s.pipelines.main.restarts === 1);
    assert.equal(engine.commands.filter((c) => c.type === 'start').length, starts + 2);
    await plane.close();
  });

  it('rejects a pipeline the engine cannot parse and keeps what runs', async () => {
    const { plane, outcome, status } = setup();
    await outcome(plane.applyDesired({ pipeline: LIVE }));
    await status((s) => s.pipelines.main?.state === 'playing');
    const rejected = await outcome(plane.applyDesired({ pipeline: 'videotestsrc ! nosuch ! fakesink', $version: 3 }));
    assert.equal(rejected.status, 'rejected');
    assert.match(rejected.error ?? '', /main: no element "nosuch"/);
    const doc = await status((s) => s.config.rejectedVersion === 3);
    assert.equal(doc.pipelines.main?.state, 'playing');
    await plane.close();
  });

  it('relays WebRTC through its port: commands to the engine, peer events back', async () => {
    const { engine, plane, outcome } = setup();
    await outcome(plane.applyDesired({ pipeline: `${LIVE.replace('fakesink', 'x264enc ! appsink name=video')}` }));
    assert.equal(plane.webrtc.settings()?.mode, 'shared');
    const heard = firstValueFrom(plane.webrtc.events$);
    assert.equal(plane.webrtc.open({ peer: 'p1', mode: 'shared', launch: null, stunServer: null, turnServers: [], offer: null }), true);
    plane.webrtc.close('p1');
    assert.deepEqual(engine.commands.slice(-2).map((c) => c.type), ['webrtc-open', 'webrtc-close']);
    engine.events$.next({ type: 'webrtc-state', peer: 'p1', state: 'connected', reason: null });
    assert.deepEqual(await heard, { type: 'webrtc-state', peer: 'p1', state: 'connected', reason: null });
    await plane.close();
  });
});
