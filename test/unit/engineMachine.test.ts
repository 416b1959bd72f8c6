import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, SimulatedClock, type NonReducibleUnknown } from 'xstate';
import { engineMachine, type EngineEmitted, type EngineProcessCommand, type EngineSupervisionPolicy } from '../../machines/engine.js';
import { fakeCallback } from '../support/fakeCallback.js';

const policy: EngineSupervisionPolicy = {
  initialDelayMs: 100,
  maxDelayMs: 800,
  startTimeoutMs: 2_000,
  shutdownTimeoutMs: 1_000,
  stableAfterMs: 10_000,
  hangTimeoutMs: 3_000,
};

function setup() {
  const process = fakeCallback<NonReducibleUnknown, EngineProcessCommand>();
  const clock = new SimulatedClock();
  const actor = createActor(engineMachine.provide({ actors: { process: process.logic } }), { input: { policy }, clock });
  const emitted: EngineEmitted[] = [];
  for (const type of ['ready', 'failedToStart', 'died', 'stopped'] as const) actor.on(type, (e) => emitted.push(e));
  actor.start();
  return { process, clock, actor, emitted };
}

describe('engine machine', () => {
  it('emits "ready" when the forked engine says it is ready', () => {
    const { process, actor, emitted } = setup();
    assert.equal(process.instances.length, 1);
    process.last.sendBack({ type: 'READY', pid: 42 });
    assert.ok(actor.getSnapshot().matches({ up: 'running' }));
    assert.deepEqual(emitted, [{ type: 'ready', pid: 42 }]);
  });

  it('emits "died" if the engine exits while running, and restarts it after a delay', () => {
    const { process, clock, actor, emitted } = setup();
    process.last.sendBack({ type: 'READY', pid: 42 });
    process.last.sendBack({ type: 'EXIT', code: null, signal: 'SIGSEGV' });
    assert.deepEqual(emitted.at(-1), { type: 'died', reason: 'killed by signal SIGSEGV', cause: 'exited' });
    assert.equal(actor.getSnapshot().context.lastError, 'died: killed by signal SIGSEGV');
    assert.equal(process.instances.length, 1);
    clock.increment(100);
    assert.equal(process.instances.length, 2, 'forked again');
    assert.equal(actor.getSnapshot().context.restarts, 1);
  });

  it('emits "failedToStart", not "died", if the engine exits before it is ready', () => {
    const { process, clock, emitted } = setup();
    process.last.sendBack({ type: 'EXIT', code: 1, signal: null });
    assert.deepEqual(emitted, [{ type: 'failedToStart', reason: 'exited with code 1' }]);
    clock.increment(100);
    process.last.sendBack({ type: 'EXIT', code: 1, signal: null });
    clock.increment(199);
    assert.equal(process.instances.length, 2, 'the second delay doubles');
    clock.increment(1);
    assert.equal(process.instances.length, 3);
  });

  it('counts an engine that never becomes ready as failed to start, and kills it', () => {
    const { process, clock, emitted } = setup();
    clock.increment(2_000);
    assert.deepEqual(emitted, [{ type: 'failedToStart', reason: 'not ready in time' }]);
    assert.equal(process.instances[0]!.stopped, true);
  });

  it('asks a running engine to shut down and stops for good when it exits', () => {
    const { process, clock, actor, emitted } = setup();
    process.last.sendBack({ type: 'READY', pid: 7 });
    actor.send({ type: 'SHUTDOWN' });
    assert.deepEqual(process.last.received, [{ type: 'SHUTDOWN', timeoutMs: 1_000 }]);
    process.last.sendBack({ type: 'EXIT', code: 0, signal: null });
    assert.equal(actor.getSnapshot().status, 'done');
    assert.deepEqual(emitted.at(-1), { type: 'stopped' });
    clock.increment(60_000);
    assert.equal(process.instances.length, 1, 'no restart after shutdown');
  });

  it('asks a silent engine once more before it calls it hung, and keeps one that answers', () => {
    const { process, clock, actor, emitted } = setup();
    process.last.sendBack({ type: 'READY', pid: 42 });
    clock.increment(3_000);
    assert.deepEqual(process.last.received, [{ type: 'PING' }], 'silence: a ping, no verdict yet');
    // A control plane that was stopped reads the engine's queued messages right after its timers ran.
    process.last.sendBack({ type: 'HEARD' });
    clock.increment(5_000);
    assert.ok(actor.getSnapshot().matches({ up: 'running' }));
    assert.equal(process.instances.length, 1);
    assert.deepEqual(emitted, [{ type: 'ready', pid: 42 }]);
  });

  it('resets the silence timer on every sign of life', () => {
    const { process, clock, actor } = setup();
    process.last.sendBack({ type: 'READY', pid: 42 });
    for (let i = 0; i < 10; i++) {
      clock.increment(2_000);
      process.last.sendBack({ type: 'HEARD' });
    }
    assert.deepEqual(process.last.received, [], 'never silent long enough to ask');
    assert.ok(actor.getSnapshot().matches({ up: { running: 'answering' } }));
  });

  it('kills an engine that stays silent after the ping, reporting it hung, and restarts it', () => {
    const { process, clock, actor, emitted } = setup();
    process.last.sendBack({ type: 'READY', pid: 42 });
    clock.increment(3_000);
    clock.increment(2_999);
    assert.ok(actor.getSnapshot().matches({ up: { running: 'suspect' } }));
    clock.increment(1);
    assert.deepEqual(emitted.at(-1), { type: 'died', reason: 'hung (no answer for 6000 ms)', cause: 'hung' });
    assert.equal(actor.getSnapshot().context.lastError, 'died: hung (no answer for 6000 ms)');
    assert.equal(process.instances[0]!.stopped, true, 'the hung process is killed');
    clock.increment(100);
    assert.equal(process.instances.length, 2, 'forked again');
  });
});
