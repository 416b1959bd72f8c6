import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, SimulatedClock } from 'xstate';
import { webrtcPeerMachine, type WebRtcPeerEmitted, type WebRtcPeerEvent, type WebRtcSessionInput } from '../../machines/webrtcPeer.js';
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
});
