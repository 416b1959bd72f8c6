import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, SimulatedClock } from 'xstate';
import { viewerChildren, webrtcPeerMachine, webrtcViewersMachine, type WebRtcPeerEmitted, type WebRtcPeerEvent, type WebRtcSessionInput } from '../../machines/webrtcPeer.js';
import { fakeCallback } from '../support/fakeCallback.js';

function setup() {
  const session = fakeCallback<WebRtcSessionInput, WebRtcPeerEvent>();
  const clock = new SimulatedClock();
  const actor = createActor(webrtcPeerMachine.provide({ actors: { session: session.logic } }), {
    input: { peer: 'p1', negotiationTimeoutMs: 10_000 },
    clock,
  });
  const emitted: WebRtcPeerEmitted[] = [];
  actor.on('closed', (e) => emitted.push(e));
  actor.on('connected', (e) => emitted.push(e));
  actor.on('answered', (e) => emitted.push(e));
  actor.start();
  return { session, clock, actor, emitted };
}

describe('WebRTC peer machine', () => {
  it('goes connecting -> negotiating -> connected as the engine reports', () => {
    const { session, actor, emitted } = setup();
    assert.equal(session.last.input.peer, 'p1');
    assert.deepEqual(actor.getSnapshot().value, { open: 'connecting' });
    session.last.sendBack({ type: 'NEGOTIATING' });
    assert.deepEqual(actor.getSnapshot().value, { open: 'negotiating' });
    session.last.sendBack({ type: 'CONNECTED' });
    assert.deepEqual(actor.getSnapshot().value, { open: 'connected' });
    assert.deepEqual(emitted, [{ type: 'connected', peer: 'p1' }]);
  });

  it('closes a peer whose negotiation does not finish in time, and tears its session down', () => {
    const { session, clock, actor, emitted } = setup();
    session.last.sendBack({ type: 'NEGOTIATING' });
    clock.increment(9_999);
    assert.equal(actor.getSnapshot().status, 'active');
    clock.increment(1);
    assert.equal(actor.getSnapshot().status, 'done');
    assert.equal(session.last.stopped, true);
    assert.deepEqual(emitted, [{ type: 'closed', peer: 'p1', reason: 'negotiation did not finish within 10000 ms' }]);
  });

  it('stays open past the negotiation timeout once connected', () => {
    const { session, clock, actor } = setup();
    session.last.sendBack({ type: 'CONNECTED' });
    clock.increment(60_000);
    assert.deepEqual(actor.getSnapshot().value, { open: 'connected' });
  });

  it('closes when the viewer leaves or ICE fails, with the reason', () => {
    const left = setup();
    left.actor.send({ type: 'CLOSE', reason: 'socket closed' });
    assert.deepEqual(left.emitted, [{ type: 'closed', peer: 'p1', reason: 'socket closed' }]);
    assert.equal(left.session.last.stopped, true);
    const failed = setup();
    failed.session.last.sendBack({ type: 'FAILED', reason: 'ICE failed' });
    assert.deepEqual(failed.emitted, [{ type: 'closed', peer: 'p1', reason: 'ICE failed' }]);
  });

  it('says "no offer" when the engine never produced one in time (a source that gives no media)', () => {
    const { clock, actor, emitted } = setup();
    clock.increment(10_000);
    assert.equal(actor.getSnapshot().status, 'done');
    assert.deepEqual(emitted, [
      { type: 'closed', peer: 'p1', reason: 'no offer within 10000 ms: the pipeline produced no media to negotiate (is its source down?)' },
    ]);
  });

  it('bounds the whole negotiation from the moment the viewer came, not per step', () => {
    const { session, clock, actor } = setup();
    clock.increment(6_000);
    session.last.sendBack({ type: 'NEGOTIATING' });
    clock.increment(4_000);
    assert.equal(actor.getSnapshot().status, 'done');
  });

  it('closes a viewer ICE-disconnected for 10 s, frees its slot, and keeps one that comes back', () => {
    const gone = setup();
    gone.session.last.sendBack({ type: 'CONNECTED' });
    gone.session.last.sendBack({ type: 'DISCONNECTED' });
    gone.clock.increment(9_999);
    assert.deepEqual(gone.actor.getSnapshot().value, { open: 'disconnected' });
    gone.clock.increment(1);
    assert.equal(gone.actor.getSnapshot().status, 'done');
    assert.deepEqual(gone.emitted.at(-1), { type: 'closed', peer: 'p1', reason: 'ICE disconnected for 10 s: the viewer is gone' });
    const back = setup();
    back.session.last.sendBack({ type: 'CONNECTED' });
    back.session.last.sendBack({ type: 'DISCONNECTED' });
    back.clock.increment(5_000);
    back.session.last.sendBack({ type: 'CONNECTED' });
    back.clock.increment(60_000);
    assert.deepEqual(back.actor.getSnapshot().value, { open: 'connected' });
  });

  it('hands a WHEP answer to its owner and waits for ICE', () => {
    const { session, actor, emitted } = setup();
    session.last.sendBack({ type: 'ANSWERED', sdp: 'v=0 answer' });
    assert.deepEqual(actor.getSnapshot().value, { open: 'negotiating' });
    assert.deepEqual(emitted, [{ type: 'answered', peer: 'p1', sdp: 'v=0 answer' }]);
  });
});

describe('WebRTC viewers machine', () => {
  it('spawns a peer per viewer, closes them all at once, and forgets closed ones', () => {
    const session = fakeCallback<WebRtcSessionInput, WebRtcPeerEvent>();
    const viewers = createActor(webrtcViewersMachine.provide({ actors: { peer: webrtcPeerMachine.provide({ actors: { session: session.logic } }) } }));
    viewers.start();
    for (const peer of ['a', 'b']) viewers.send({ type: 'ADD', input: { peer, negotiationTimeoutMs: 1_000 } });
    const children = viewerChildren(viewers.getSnapshot());
    assert.deepEqual([...children.keys()], ['a', 'b']);
    assert.deepEqual(session.instances.map((i) => i.input.peer), ['a', 'b']);
    const reasons: string[] = [];
    for (const child of children.values()) child.on('closed', ({ reason }) => reasons.push(reason));
    viewers.send({ type: 'CLOSE_ALL', reason: 'module stopping' });
    assert.deepEqual(reasons, ['module stopping', 'module stopping']);
    assert.ok(session.instances.every((i) => i.stopped));
    viewers.send({ type: 'REMOVE', peer: 'a' });
    assert.deepEqual([...viewerChildren(viewers.getSnapshot()).keys()], ['b']);
  });

  it('drops an event for a viewer that is already gone, and keeps serving the others', () => {
    const session = fakeCallback<WebRtcSessionInput, WebRtcPeerEvent>();
    const viewers = createActor(webrtcViewersMachine.provide({ actors: { peer: webrtcPeerMachine.provide({ actors: { session: session.logic } }) } }));
    viewers.start();
    viewers.send({ type: 'ADD', input: { peer: 'a', negotiationTimeoutMs: 1_000 } });
    viewers.send({ type: 'REMOVE', peer: 'a' });
    // The socket of a peer that failed fast closes after the peer was removed.
    viewers.send({ type: 'TO', peer: 'a', event: { type: 'CLOSE', reason: 'socket closed' } });
    assert.equal(viewers.getSnapshot().status, 'active');
    viewers.send({ type: 'ADD', input: { peer: 'b', negotiationTimeoutMs: 1_000 } });
    assert.deepEqual([...viewerChildren(viewers.getSnapshot()).keys()], ['b']);
  });
});
