import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { iotHubConnectionMachine, type IotHubConnectionEmitted } from '../../machines/iotHubConnection.js';

/** A promise actor the test settles by hand, one per start. */
function manualPromise() {
  const calls: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  const logic = fromPromise<void>(() => new Promise<void>((resolve, reject) => calls.push({ resolve, reject })));
  return { logic, calls, get last() { return calls.at(-1)!; } };
}

function setup() {
  const connect = manualPromise();
  const fetchTwin = manualPromise();
  const clock = new SimulatedClock();
  const actor = createActor(iotHubConnectionMachine.provide({ actors: { connect: connect.logic, fetchTwin: fetchTwin.logic } }), { clock });
  const emitted: IotHubConnectionEmitted[] = [];
  for (const type of ['synced', 'connectFailed', 'fetchFailed', 'disconnected'] as const) actor.on(type, (e) => emitted.push(e));
  actor.start();
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { connect, fetchTwin, clock, actor, emitted, settle };
}

describe('IoT Hub connection machine', () => {
  it('is in sync once connected (client open, twin fetched)', async () => {
    const { connect, actor, emitted, settle } = setup();
    assert.equal(actor.getSnapshot().value, 'connecting');
    connect.last.resolve();
    await settle();
    assert.deepEqual(actor.getSnapshot().value, { connected: 'synced' });
    assert.deepEqual(emitted, [{ type: 'synced' }]);
  });

  it('retries a failed connect after doubling delays', async () => {
    const { connect, clock, actor, emitted, settle } = setup();
    connect.last.reject(new Error('refused'));
    await settle();
    assert.equal(actor.getSnapshot().value, 'waiting');
    assert.equal(emitted[0]?.type === 'connectFailed' && emitted[0].retryInMs, 1_000);
    clock.increment(1_000);
    assert.equal(connect.calls.length, 2);
    connect.last.reject(new Error('refused'));
    await settle();
    assert.equal(emitted[1]?.type === 'connectFailed' && emitted[1].retryInMs, 2_000);
    clock.increment(1_999);
    assert.equal(connect.calls.length, 2);
    clock.increment(1);
    assert.equal(connect.calls.length, 3);
  });

  it('after the SDK reconnects, is out of sync until the twin is fetched again', async () => {
    const { connect, fetchTwin, actor, emitted, settle } = setup();
    connect.last.resolve();
    await settle();
    actor.send({ type: 'RECONNECTED' });
    assert.deepEqual(actor.getSnapshot().value, { connected: 'fetching' }, 'patches are not applied meanwhile');
    fetchTwin.last.resolve();
    await settle();
    assert.deepEqual(actor.getSnapshot().value, { connected: 'synced' });
    assert.deepEqual(emitted, [{ type: 'synced' }, { type: 'synced' }]);
  });

  it('retries a failed twin fetch with backoff, never applying what it has meanwhile', async () => {
    const { connect, fetchTwin, clock, actor, emitted, settle } = setup();
    connect.last.resolve();
    await settle();
    actor.send({ type: 'RECONNECTED' });
    fetchTwin.last.reject(new Error('timeout'));
    await settle();
    assert.deepEqual(actor.getSnapshot().value, { connected: 'refetchWaiting' });
    assert.equal(emitted.at(-1)?.type, 'fetchFailed');
    clock.increment(1_000);
    assert.equal(fetchTwin.calls.length, 2);
    fetchTwin.last.resolve();
    await settle();
    assert.deepEqual(actor.getSnapshot().value, { connected: 'synced' });
  });

  it('connects anew when the SDK gives up on the connection', async () => {
    const { connect, clock, actor, emitted, settle } = setup();
    connect.last.resolve();
    await settle();
    actor.send({ type: 'DISCONNECTED' });
    await settle();
    assert.equal(actor.getSnapshot().value, 'waiting');
    assert.ok(emitted.some((e) => e.type === 'disconnected'));
    clock.increment(1_000);
    assert.equal(connect.calls.length, 2);
  });

  it('closes for good', async () => {
    const { connect, actor, settle } = setup();
    connect.last.resolve();
    await settle();
    actor.send({ type: 'CLOSE' });
    await settle();
    assert.equal(actor.getSnapshot().status, 'done');
  });
});
