import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, fromCallback, SimulatedClock } from 'xstate';
import {
  GATHER_TIMEOUT_MS,
  isReleased,
  RELEASE_DRAIN_MS,
  SETTLE_TIMEOUT_MS,
  webrtcNegotiationMachine,
  type WebRtcNegotiationEvent,
  type WebRtcNegotiationInput,
} from '../../machines/webrtcNegotiation.js';

/** The actions the engine's peer provides, as recorded calls: `name` or `name params-as-JSON`. */
const ACTIONS = [
  'play',
  'report',
  'createOffer',
  'setLocalDescription',
  'sendOffer',
  'sendCandidate',
  'applyAnswer',
  'applyOffer',
  'createAnswer',
  'checkGathering',
  'sendAnswer',
  'addCandidates',
  'release',
  'setNull',
] as const;

function setup(input: Partial<WebRtcNegotiationInput> = {}) {
  const calls: string[] = [];
  const record = (name: string) => (_: unknown, params: unknown) => calls.push(params === undefined ? name : `${name} ${JSON.stringify(params)}`);
  const actions = Object.fromEntries(ACTIONS.map((name) => [name, record(name)]));
  const stats = { running: 0, started: 0 };
  const statsLogic = fromCallback(() => {
    stats.running++;
    stats.started++;
    return () => {
      stats.running--;
    };
  });
  const clock = new SimulatedClock();
  const actor = createActor(webrtcNegotiationMachine.provide({ actions, actors: { stats: statsLogic } }), { input: { offer: null, ...input }, clock });
  actor.start();
  const send = (event: WebRtcNegotiationEvent) => actor.send(event);
  /** Calls since the last look. */
  const taken = () => calls.splice(0);
  /** States reported to the owner since the last look. */
  const reported = (all: string[]) => all.filter((c) => c.startsWith('report ')).map((c) => JSON.parse(c.slice('report '.length)) as { state: string; reason?: string });
  return { actor, clock, send, taken, reported, stats };
}

const OFFER = 'v=0 offer';
const ANSWER = 'v=0 answer';

/** A seed-protocol peer with its first offer out. */
function offered() {
  const peer = setup();
  peer.send({ type: 'START' });
  peer.send({ type: 'NEGOTIATION_NEEDED' });
  peer.send({ type: 'OFFER_CREATED', sdp: OFFER });
  peer.taken();
  return peer;
}

describe('WebRTC negotiation machine, seed protocol (the module offers)', () => {
  it('plays on START and reports connecting, then offers when webrtcbin asks: set the offer, say negotiating, send it', () => {
    const { actor, send, taken } = setup();
    assert.equal(actor.getSnapshot().value, 'idle');
    send({ type: 'START' });
    assert.deepEqual(taken(), ['play', 'report {"state":"connecting"}']);
    send({ type: 'NEGOTIATION_NEEDED' });
    assert.deepEqual(taken(), ['createOffer']);
    send({ type: 'OFFER_CREATED', sdp: OFFER });
    assert.deepEqual(taken(), [
      'setLocalDescription {"type":"offer","sdp":"v=0 offer"}',
      'sendOffer {"sdp":"v=0 offer"}',
      'report {"state":"negotiating"}',
    ]);
    assert.ok(actor.getSnapshot().matches({ live: { negotiation: { offering: { exchange: 'awaitingAnswer' } } } }));
  });

  it('applies the answer, then hands webrtcbin the candidates that came before it, in order', () => {
    const { actor, send, taken } = offered();
    send({ type: 'REMOTE_CANDIDATE', mline: 0, candidate: 'candidate:1' });
    send({ type: 'REMOTE_CANDIDATE', mline: 1, candidate: 'candidate:2' });
    assert.deepEqual(taken(), [], 'held: webrtcbin has no remote description yet');
    send({ type: 'ANSWER', sdp: ANSWER });
    assert.deepEqual(taken(), [
      'applyAnswer {"sdp":"v=0 answer"}',
      'addCandidates {"candidates":[{"mline":0,"candidate":"candidate:1"},{"mline":1,"candidate":"candidate:2"}]}',
    ]);
    send({ type: 'REMOTE_CANDIDATE', mline: 0, candidate: 'candidate:3' });
    assert.deepEqual(taken(), ['addCandidates {"candidates":[{"mline":0,"candidate":"candidate:3"}]}'], 'later ones go straight in');
    send({ type: 'ANSWER_APPLIED' });
    assert.ok(actor.getSnapshot().matches({ live: { negotiation: 'negotiated' } }));
  });

  it('refuses an answer before the offer is out, and a second answer', () => {
    const { actor, send } = setup();
    send({ type: 'START' });
    assert.equal(actor.getSnapshot().can({ type: 'ANSWER', sdp: ANSWER }), false, 'no offer yet');
    send({ type: 'NEGOTIATION_NEEDED' });
    assert.equal(actor.getSnapshot().can({ type: 'ANSWER', sdp: ANSWER }), false, 'offer still being created');
    send({ type: 'OFFER_CREATED', sdp: OFFER });
    assert.equal(actor.getSnapshot().can({ type: 'ANSWER', sdp: ANSWER }), true);
    send({ type: 'ANSWER', sdp: ANSWER });
    assert.equal(actor.getSnapshot().can({ type: 'ANSWER', sdp: ANSWER }), false, 'the answer is in');
  });

  it('offers again after the answer when webrtcbin asked again while the offer was out (renegotiation pending)', () => {
    const { actor, send, taken, reported } = offered();
    send({ type: 'NEGOTIATION_NEEDED' });
    assert.ok(actor.getSnapshot().matches({ live: { negotiation: { offering: { exchange: 'awaitingAnswer', again: 'pending' } } } }));
    assert.deepEqual(taken(), [], 'no second offer while the first is out');
    send({ type: 'ANSWER', sdp: ANSWER });
    send({ type: 'ANSWER_APPLIED' });
    const calls = taken();
    assert.deepEqual(calls.filter((c) => !c.startsWith('addCandidates')), ['applyAnswer {"sdp":"v=0 answer"}', 'createOffer']);
    assert.ok(actor.getSnapshot().matches({ live: { negotiation: { offering: { exchange: 'creating', again: 'no' } } } }));
    assert.equal(actor.getSnapshot().can({ type: 'ANSWER', sdp: ANSWER }), false);
    send({ type: 'REMOTE_CANDIDATE', mline: 0, candidate: 'candidate:9' });
    assert.deepEqual(taken(), [], 'candidates wait for the new answer');
    send({ type: 'OFFER_CREATED', sdp: 'v=0 offer 2' });
    assert.deepEqual(reported(taken()), [], 'still negotiating: nothing new to report');
  });

  it('offers again when webrtcbin asks after a negotiation has finished', () => {
    const { actor, send, taken } = offered();
    send({ type: 'ANSWER', sdp: ANSWER });
    send({ type: 'ANSWER_APPLIED' });
    taken();
    send({ type: 'NEGOTIATION_NEEDED' });
    assert.deepEqual(taken(), ['createOffer']);
    assert.ok(actor.getSnapshot().matches({ live: { negotiation: { offering: { exchange: 'creating' } } } }));
  });

  it('sends local candidates to the viewer as they come', () => {
    const { send, taken } = offered();
    send({ type: 'LOCAL_CANDIDATE', mline: 0, candidate: 'candidate:local' });
    assert.deepEqual(taken(), ['sendCandidate {"mline":0,"candidate":"candidate:local"}']);
  });

  it('refuses remote candidates beyond the limit while they are held', () => {
    const { actor, send } = setup({ maxPendingCandidates: 2 });
    send({ type: 'START' });
    for (const n of [1, 2]) send({ type: 'REMOTE_CANDIDATE', mline: 0, candidate: `candidate:${n}` });
    assert.equal(actor.getSnapshot().can({ type: 'REMOTE_CANDIDATE', mline: 0, candidate: 'candidate:3' }), false);
    assert.equal(actor.getSnapshot().context.pendingCandidates.length, 2);
  });
});

describe('WebRTC negotiation machine, WHEP (the viewer offers)', () => {
  function whep() {
    const peer = setup({ offer: OFFER });
    peer.send({ type: 'START' });
    peer.send({ type: 'NEGOTIATION_NEEDED' });
    return peer;
  }

  it('applies the offer, creates the answer, and sends it with every candidate once gathering is complete', () => {
    const { actor, send, taken } = whep();
    assert.deepEqual(taken(), ['play', 'report {"state":"connecting"}', 'applyOffer {"sdp":"v=0 offer"}', 'addCandidates {"candidates":[]}']);
    send({ type: 'NEGOTIATION_NEEDED' });
    assert.deepEqual(taken(), [], 'asking again changes nothing');
    send({ type: 'OFFER_APPLIED' });
    assert.deepEqual(taken(), ['createAnswer']);
    send({ type: 'ANSWER_CREATED', sdp: ANSWER });
    assert.deepEqual(taken(), ['setLocalDescription {"type":"answer","sdp":"v=0 answer"}', 'checkGathering', 'report {"state":"negotiating"}']);
    send({ type: 'LOCAL_CANDIDATE', mline: 0, candidate: 'candidate:a' });
    send({ type: 'LOCAL_CANDIDATE', mline: 0, candidate: 'candidate:b' });
    assert.deepEqual(taken(), [], 'gathered, not trickled');
    send({ type: 'GATHERING_COMPLETE' });
    assert.deepEqual(taken(), [
      'sendAnswer {"sdp":"v=0 answer","candidates":[{"mline":0,"candidate":"candidate:a"},{"mline":0,"candidate":"candidate:b"}]}',
    ]);
    assert.ok(actor.getSnapshot().matches({ live: { negotiation: { answering: 'answered' } } }));
    send({ type: 'GATHERING_COMPLETE' });
    assert.deepEqual(taken(), [], 'the answer goes out once');
  });

  it('sends the answer with the candidates found so far when gathering takes longer than the gather timeout', () => {
    const { clock, send, taken } = whep();
    send({ type: 'OFFER_APPLIED' });
    send({ type: 'ANSWER_CREATED', sdp: ANSWER });
    send({ type: 'LOCAL_CANDIDATE', mline: 0, candidate: 'candidate:a' });
    taken();
    clock.increment(GATHER_TIMEOUT_MS - 1);
    assert.deepEqual(taken(), []);
    clock.increment(1);
    assert.deepEqual(taken(), ['sendAnswer {"sdp":"v=0 answer","candidates":[{"mline":0,"candidate":"candidate:a"}]}']);
  });

  it('never takes an answer from the viewer', () => {
    const { actor, send } = whep();
    send({ type: 'OFFER_APPLIED' });
    send({ type: 'ANSWER_CREATED', sdp: ANSWER });
    assert.equal(actor.getSnapshot().can({ type: 'ANSWER', sdp: ANSWER }), false);
  });
});

describe('WebRTC negotiation machine, connection and release', () => {
  it('reports connected once ICE and DTLS are both up, not on ICE alone, and reads stats while connected', () => {
    const { actor, send, taken, reported, stats } = offered();
    send({ type: 'CONNECTION_STATE', ice: 'connected', connection: 'connecting' });
    assert.deepEqual(reported(taken()), []);
    send({ type: 'CONNECTION_STATE', ice: 'completed', connection: 'connected' });
    assert.deepEqual(reported(taken()), [{ state: 'connected' }]);
    assert.equal(stats.running, 1);
    send({ type: 'NEGOTIATION_NEEDED' });
    send({ type: 'OFFER_CREATED', sdp: 'v=0 offer 2' });
    assert.deepEqual(reported(taken()), [], 'a renegotiation once connected is not reported');
    actor.send({ type: 'CLOSE' });
    assert.equal(stats.running, 0, 'stats stop on release');
  });

  it('reports disconnected when ICE loses the viewer, and connected again when it is back', () => {
    const { send, taken, reported, stats } = offered();
    send({ type: 'CONNECTION_STATE', ice: 'connected', connection: 'connected' });
    send({ type: 'CONNECTION_STATE', ice: 'disconnected', connection: 'connected' });
    assert.deepEqual(reported(taken()), [{ state: 'connected' }, { state: 'disconnected' }]);
    assert.equal(stats.running, 0, 'no stats while disconnected');
    send({ type: 'CONNECTION_STATE', ice: 'connected', connection: 'connected' });
    assert.deepEqual(reported(taken()), [{ state: 'connected' }]);
  });

  it('fails with a reason when ICE fails, or DTLS does, also after connecting', () => {
    const ice = offered();
    ice.send({ type: 'CONNECTION_STATE', ice: 'failed', connection: 'failed' });
    assert.deepEqual(ice.reported(ice.taken()), [{ state: 'failed', reason: 'ICE failed (no candidate pair works: check advertised host, STUN/TURN)' }]);
    const dtls = offered();
    dtls.send({ type: 'CONNECTION_STATE', ice: 'connected', connection: 'connected' });
    dtls.send({ type: 'CONNECTION_STATE', ice: 'connected', connection: 'failed' });
    assert.deepEqual(dtls.reported(dtls.taken()), [{ state: 'connected' }, { state: 'failed', reason: 'connection failed (DTLS)' }]);
    assert.ok(isReleased(dtls.actor.getSnapshot()));
  });

  it('on close: releases at once, NULL after the drain once webrtcbin owes no reply, then closed', () => {
    const { actor, clock, send, taken } = offered();
    send({ type: 'CLOSE' });
    assert.deepEqual(taken(), ['release']);
    assert.ok(isReleased(actor.getSnapshot()));
    send({ type: 'SETTLED' });
    clock.increment(RELEASE_DRAIN_MS - 1);
    assert.deepEqual(taken(), [], 'webrtcbin callbacks on their way are served first');
    clock.increment(1);
    assert.deepEqual(taken(), ['setNull', 'report {"state":"closed"}']);
    assert.equal(actor.getSnapshot().status, 'done');
  });

  it('waits after the drain for the replies webrtcbin owes (its thread would wait for JS inside the NULL), bounded', () => {
    const settles = offered();
    settles.send({ type: 'CLOSE' });
    settles.taken();
    settles.clock.increment(RELEASE_DRAIN_MS + 100);
    assert.deepEqual(settles.taken(), [], 'a reply is still owed');
    settles.send({ type: 'SETTLED' });
    assert.deepEqual(settles.taken(), ['setNull', 'report {"state":"closed"}']);
    const never = offered();
    never.send({ type: 'CLOSE' });
    never.taken();
    never.clock.increment(RELEASE_DRAIN_MS);
    never.clock.increment(SETTLE_TIMEOUT_MS - 1);
    assert.deepEqual(never.taken(), []);
    never.clock.increment(1);
    assert.deepEqual(never.taken(), ['setNull', 'report {"state":"closed"}'], 'a reply that never comes does not keep the pipeline');
  });

  it('on failure: reports failed, releases, and reports closed only once the owner has closed too', () => {
    const { actor, clock, send, taken } = offered();
    send({ type: 'FAIL', reason: 'webrtcbin: boom' });
    assert.deepEqual(taken(), ['report {"state":"failed","reason":"webrtcbin: boom"}', 'release']);
    assert.equal(actor.getSnapshot().context.failure, 'webrtcbin: boom');
    send({ type: 'SETTLED' });
    clock.increment(RELEASE_DRAIN_MS);
    assert.deepEqual(taken(), ['setNull']);
    assert.equal(actor.getSnapshot().status, 'active', 'waiting for the owner');
    send({ type: 'FAIL', reason: 'again' });
    assert.deepEqual(taken(), [], 'one failure is all');
    send({ type: 'CLOSE' });
    assert.deepEqual(taken(), ['report {"state":"closed"}']);
    assert.equal(actor.getSnapshot().status, 'done');
  });

  it('closes after the NULL when the owner closes a failed peer during the drain', () => {
    const { actor, clock, send, taken } = offered();
    send({ type: 'FAIL', reason: 'boom' });
    send({ type: 'CLOSE' });
    send({ type: 'SETTLED' });
    taken();
    clock.increment(RELEASE_DRAIN_MS);
    assert.deepEqual(taken(), ['setNull', 'report {"state":"closed"}']);
    assert.equal(actor.getSnapshot().status, 'done');
  });

  it('ignores what webrtcbin sends after the release (replies, candidates, states)', () => {
    const { send, taken } = offered();
    send({ type: 'CLOSE' });
    taken();
    send({ type: 'OFFER_CREATED', sdp: OFFER });
    send({ type: 'LOCAL_CANDIDATE', mline: 0, candidate: 'candidate:late' });
    send({ type: 'CONNECTION_STATE', ice: 'connected', connection: 'connected' });
    send({ type: 'ANSWER_APPLIED' });
    assert.deepEqual(taken(), []);
  });

  it('closes a peer that never started without playing it', () => {
    const { actor, clock, send, taken } = setup();
    send({ type: 'CLOSE' });
    send({ type: 'START' });
    send({ type: 'SETTLED' });
    clock.increment(RELEASE_DRAIN_MS);
    assert.deepEqual(taken(), ['release', 'setNull', 'report {"state":"closed"}']);
    assert.equal(actor.getSnapshot().status, 'done');
  });

  it('sends no offer, and so reports nothing past connecting, for a pipeline that never asks to negotiate', () => {
    const { clock, send, taken } = setup();
    send({ type: 'START' });
    clock.increment(60_000);
    assert.deepEqual(taken(), ['play', 'report {"state":"connecting"}'], 'the bound is the control plane peer machine\'s');
  });
});
