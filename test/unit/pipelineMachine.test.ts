import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, SimulatedClock } from 'xstate';
import type { RestartPolicy } from '../../config/desired.js';
import { backoffDelay } from '../../machines/backoff.js';
import { PIPELINE_STATES, pipelineMachine, pipelineStateName, type PipelineRunInput, type PipelineRunnerCommand, type SourceProbeInput } from '../../machines/pipeline.js';
import { fakeCallback } from '../support/fakeCallback.js';

const policy: RestartPolicy = {
  initialDelayMs: 100,
  maxDelayMs: 400,
  startTimeoutMs: 1_000,
  stopTimeoutMs: 500,
  stableAfterMs: 5_000,
};

function setup(onEos: 'restart' | 'stop' = 'restart') {
  const runner = fakeCallback<PipelineRunInput, PipelineRunnerCommand>();
  const probe = fakeCallback<SourceProbeInput>();
  const clock = new SimulatedClock();
  const actor = createActor(pipelineMachine.provide({ actors: { runner: runner.logic, probe: probe.logic } }), {
    input: { name: 'main', launch: 'videotestsrc ! fakesink', template: 'videotestsrc ! fakesink', onEos, policy, now: () => clock.now() },
    clock,
  });
  actor.start();
  const state = () => pipelineStateName(actor.getSnapshot());
  return { runner, probe, clock, actor, state };
}

describe('pipeline machine', () => {
  it('starts a runner with the pipeline text and reports playing when the runner says PLAYING', () => {
    const { runner, actor, state } = setup();
    assert.equal(state(), 'idle');
    actor.send({ type: 'START' });
    assert.equal(state(), 'starting');
    assert.equal(runner.last.input.launch, 'videotestsrc ! fakesink');
    runner.last.sendBack({ type: 'PLAYING' });
    assert.equal(state(), 'playing');
  });

  it('restarts a failing pipeline after doubling delays capped at the maximum', () => {
    const { runner, clock, actor, state } = setup();
    actor.send({ type: 'START' });
    const expected = [100, 200, 400, 400];
    for (const [i, delay] of expected.entries()) {
      runner.last.sendBack({ type: 'ERROR', message: `boom ${i}` });
      assert.equal(state(), 'backoff');
      assert.equal(runner.instances[i]!.stopped, true, 'the failed run is torn down');
      clock.increment(delay - 1);
      assert.equal(state(), 'backoff', `still waiting before ${delay} ms`);
      clock.increment(1);
      assert.equal(state(), 'starting', `restarted after ${delay} ms`);
      assert.equal(runner.instances.length, i + 2);
    }
    assert.equal(actor.getSnapshot().context.restarts, 4);
    assert.equal(actor.getSnapshot().context.lastError?.message, 'boom 3');
  });

  it('computes the backoff delay from the policy', () => {
    assert.deepEqual([0, 1, 2, 3, 10, 1_000].map((n) => backoffDelay(policy, n)), [100, 200, 400, 400, 400, 400]);
  });

  it('stamps state changes and errors with the clock it is given', () => {
    const { runner, clock, actor } = setup();
    clock.set(1_000_000);
    actor.send({ type: 'START' });
    assert.equal(actor.getSnapshot().context.since, 1_000_000);
    clock.increment(250);
    runner.last.sendBack({ type: 'ERROR', message: 'boom' });
    assert.deepEqual(actor.getSnapshot().context.lastError, { message: 'boom', at: 1_000_250 });
  });

  it('lists every state it can be reported in', () => {
    assert.deepEqual(PIPELINE_STATES, ['idle', 'starting', 'playing', 'stopping', 'backoff', 'waiting-for-source', 'ended', 'stopped']);
  });

  it('counts a start that never reaches PLAYING as a failure', () => {
    const { clock, actor, state } = setup();
    actor.send({ type: 'START' });
    clock.increment(999);
    assert.equal(state(), 'starting');
    clock.increment(1);
    assert.equal(state(), 'backoff');
    assert.match(actor.getSnapshot().context.lastError!.message, /did not reach PLAYING within 1000 ms/);
  });

  it('resets the backoff delay after playing for the stable time', () => {
    const { runner, clock, actor } = setup();
    actor.send({ type: 'START' });
    runner.last.sendBack({ type: 'ERROR', message: 'a' });
    clock.increment(100);
    runner.last.sendBack({ type: 'ERROR', message: 'b' });
    clock.increment(200);
    assert.equal(actor.getSnapshot().context.attempt, 2);
    runner.last.sendBack({ type: 'PLAYING' });
    clock.increment(5_000);
    assert.equal(actor.getSnapshot().context.attempt, 0);
    runner.last.sendBack({ type: 'ERROR', message: 'c' });
    clock.increment(100);
    assert.equal(pipelineStateName(actor.getSnapshot()), 'starting', 'back to the initial delay');
  });

  it('restarts after an unexpected EOS by default', () => {
    const { runner, actor, state } = setup('restart');
    actor.send({ type: 'START' });
    runner.last.sendBack({ type: 'PLAYING' });
    runner.last.sendBack({ type: 'EOS' });
    assert.equal(state(), 'backoff');
    assert.equal(actor.getSnapshot().context.lastError?.message, 'end of stream');
  });

  it('ends without restarting on EOS when on_eos is stop', () => {
    const { runner, clock, actor, state } = setup('stop');
    actor.send({ type: 'START' });
    runner.last.sendBack({ type: 'PLAYING' });
    runner.last.sendBack({ type: 'EOS' });
    assert.equal(state(), 'ended');
    clock.increment(60_000);
    assert.equal(state(), 'ended');
    assert.equal(runner.instances.length, 1);
  });

  it('asks the runner for a graceful stop and is stopped when the runner reports STOPPED', () => {
    const { runner, actor, state } = setup();
    actor.send({ type: 'START' });
    runner.last.sendBack({ type: 'PLAYING' });
    actor.send({ type: 'STOP' });
    assert.equal(state(), 'stopping');
    assert.deepEqual(runner.last.received, [{ type: 'STOP', graceful: true }]);
    runner.last.sendBack({ type: 'ERROR', message: 'late error while stopping' });
    assert.equal(state(), 'stopped');
    assert.equal(actor.getSnapshot().context.restarts, 0);
  });

  it('gives up waiting for a stop after the stop timeout', () => {
    const { runner, clock, actor, state } = setup();
    actor.send({ type: 'START' });
    runner.last.sendBack({ type: 'PLAYING' });
    actor.send({ type: 'STOP', graceful: false });
    assert.deepEqual(runner.last.received, [{ type: 'STOP', graceful: false }]);
    clock.increment(2_499);
    assert.equal(state(), 'stopping');
    clock.increment(1);
    assert.equal(state(), 'stopped');
    assert.equal(runner.last.stopped, true);
  });

  it('does not wait out the backoff when the engine comes back', () => {
    const { runner, actor, state } = setup();
    actor.send({ type: 'START' });
    runner.last.sendBack({ type: 'ERROR', message: 'media engine died' });
    assert.equal(state(), 'backoff');
    actor.send({ type: 'ENGINE_READY' });
    assert.equal(state(), 'starting');
    assert.equal(runner.instances.length, 2);
  });

  it('restarts a playing pipeline on RESTART gracefully (EOS first, so recordings finalise), with a new runner', () => {
    const { runner, actor, state } = setup();
    actor.send({ type: 'START' });
    runner.last.sendBack({ type: 'PLAYING' });
    actor.send({ type: 'RESTART' });
    assert.equal(state(), 'stopping');
    assert.deepEqual(runner.last.received, [{ type: 'STOP', graceful: true }]);
    assert.equal(runner.instances.length, 1, 'no second run while the first finishes');
    runner.last.sendBack({ type: 'STOPPED' });
    assert.equal(state(), 'starting');
    assert.equal(runner.instances.length, 2);
    assert.equal(runner.instances[0]!.stopped, true);
    assert.equal(actor.getSnapshot().context.restarts, 1);
  });

  it('stays stopped when a STOP comes during a restart\'s stop', () => {
    const { runner, actor, state } = setup();
    actor.send({ type: 'START' });
    runner.last.sendBack({ type: 'PLAYING' });
    actor.send({ type: 'RESTART' });
    actor.send({ type: 'STOP' });
    runner.last.sendBack({ type: 'STOPPED' });
    assert.equal(state(), 'stopped');
    assert.equal(runner.instances.length, 1);
  });

  it('waits for a network source that is down the second time, and starts the moment the probe reaches it', () => {
    const { runner, probe, clock, actor, state } = setup();
    const CAMERA = 'rtsp://***@10.0.0.5/live';
    actor.send({ type: 'START' });
    runner.last.sendBack({ type: 'ERROR', message: 'Could not open resource for reading and writing.', sourceUri: CAMERA });
    assert.equal(state(), 'backoff', 'the first failure retries after the initial delay');
    clock.increment(100);
    runner.last.sendBack({ type: 'ERROR', message: 'Could not open resource for reading and writing.', sourceUri: CAMERA });
    assert.equal(state(), 'waiting-for-source');
    assert.equal(actor.getSnapshot().context.waitingFor, CAMERA);
    assert.deepEqual(probe.last.input, { uri: CAMERA });
    clock.increment(150);
    assert.equal(state(), 'waiting-for-source');
    probe.last.sendBack({ type: 'SOURCE_REACHABLE' });
    assert.equal(state(), 'starting', 'no waiting out the doubled delay');
    assert.equal(probe.last.stopped, true);
    assert.equal(runner.instances.length, 3);
  });

  it('still tries a real start after the backoff delay while waiting for a source, and falls back to backoff when it cannot be probed', () => {
    const { runner, probe, clock, actor, state } = setup();
    actor.send({ type: 'START' });
    runner.last.sendBack({ type: 'ERROR', message: 'x', sourceUri: 'udp://239.0.0.1:5000' });
    clock.increment(100);
    runner.last.sendBack({ type: 'ERROR', message: 'x', sourceUri: 'udp://239.0.0.1:5000' });
    assert.equal(state(), 'waiting-for-source');
    probe.last.sendBack({ type: 'SOURCE_UNPROBEABLE' });
    assert.equal(state(), 'backoff');
    clock.increment(200);
    assert.equal(state(), 'starting');
    runner.last.sendBack({ type: 'ERROR', message: 'x', sourceUri: 'rtsp://cam/x' });
    assert.equal(state(), 'waiting-for-source');
    clock.increment(400);
    assert.equal(state(), 'starting', 'the doubled delay bounds the wait for a source');
    assert.equal(actor.getSnapshot().context.restarts, 3);
  });

  it('does not wait for a source when the error is the pipeline\'s own', () => {
    const { runner, clock, actor, state } = setup();
    actor.send({ type: 'START' });
    runner.last.sendBack({ type: 'ERROR', message: 'not negotiated' });
    clock.increment(100);
    runner.last.sendBack({ type: 'ERROR', message: 'not negotiated' });
    assert.equal(state(), 'backoff');
    assert.equal(actor.getSnapshot().context.waitingFor, null);
  });

  it('takes an end of stream from a network source that recurs for a camera that hung up, and waits for it', () => {
    const { runner, probe, clock, actor, state } = setup();
    actor.send({ type: 'START' });
    runner.last.sendBack({ type: 'PLAYING' });
    runner.last.sendBack({ type: 'EOS', sourceUri: 'rtsp://cam/live' });
    assert.equal(state(), 'backoff', 'the first end of stream retries after the initial delay');
    clock.increment(100);
    runner.last.sendBack({ type: 'EOS', sourceUri: 'rtsp://cam/live' });
    assert.equal(state(), 'waiting-for-source');
    assert.equal(actor.getSnapshot().context.lastError?.message, 'end of stream');
    probe.last.sendBack({ type: 'SOURCE_REACHABLE' });
    assert.equal(state(), 'starting');
  });
});
