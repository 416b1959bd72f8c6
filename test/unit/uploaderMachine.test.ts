import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { retryDelay, uploaderMachine, type UploadStepOutput } from '../../recording/uploaderMachine.js';

/** A step actor whose every run the test settles by hand. */
function fakeStep() {
  const runs: Array<{ resolve: (o: UploadStepOutput) => void; reject: (e: Error) => void; signal: AbortSignal }> = [];
  const logic = fromPromise<UploadStepOutput, { target: string }>(({ signal }) => new Promise((resolve, reject) => runs.push({ resolve, reject, signal })));
  return { logic, runs };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

function setup() {
  const step = fakeStep();
  const clock = new SimulatedClock();
  const actor = createActor(uploaderMachine.provide({ actors: { step: step.logic } }), { input: { target: 't', initialDelayMs: 100, maxDelayMs: 400 }, clock });
  const retries: Array<{ attempt: number; delayMs: number; error: string }> = [];
  actor.on('retry', (e) => retries.push(e));
  actor.start();
  return { step, clock, actor, retries, state: () => actor.getSnapshot().value };
}

describe('uploader machine', () => {
  it('uploads step after step while there is work, then waits idle', async () => {
    const { step, actor, state } = setup();
    assert.equal(state(), 'idle');
    actor.send({ type: 'WORK' });
    assert.equal(state(), 'uploading');
    step.runs[0]!.resolve({ empty: false });
    await flush();
    assert.equal(step.runs.length, 2, 'a second step after an upload');
    step.runs[1]!.resolve({ empty: true });
    await flush();
    assert.equal(state(), 'idle');
  });

  it('runs another step when work arrived during one that found nothing', async () => {
    const { step, actor, state } = setup();
    actor.send({ type: 'WORK' });
    actor.send({ type: 'WORK' });
    step.runs[0]!.resolve({ empty: true });
    await flush();
    assert.equal(state(), 'uploading');
    assert.equal(step.runs.length, 2);
  });

  it('retries a failed step after doubling delays capped at the maximum, and resets after a success', async () => {
    const { step, clock, actor, retries, state } = setup();
    actor.send({ type: 'WORK' });
    for (const [i, delay] of [100, 200, 400, 400].entries()) {
      step.runs.at(-1)!.reject(new Error(`down ${i}`));
      await flush();
      assert.equal(state(), 'backoff');
      clock.increment(delay - 1);
      assert.equal(state(), 'backoff', `still waiting before ${delay} ms`);
      clock.increment(1);
      assert.equal(state(), 'uploading', `retried after ${delay} ms`);
    }
    assert.deepEqual(retries.map((r) => [r.attempt, r.delayMs, r.error]), [[1, 100, 'down 0'], [2, 200, 'down 1'], [3, 400, 'down 2'], [4, 400, 'down 3']]);
    step.runs.at(-1)!.resolve({ empty: false });
    await flush();
    assert.equal(actor.getSnapshot().context.attempt, 0);
    assert.equal(actor.getSnapshot().context.lastError, null);
    step.runs.at(-1)!.reject(new Error('again'));
    await flush();
    assert.equal(retries.at(-1)!.delayMs, 100, 'the delay starts over after a success');
  });

  it('skips the backoff wait on RETRY_NOW', async () => {
    const { step, actor, state } = setup();
    actor.send({ type: 'WORK' });
    step.runs[0]!.reject(new Error('down'));
    await flush();
    assert.equal(state(), 'backoff');
    actor.send({ type: 'RETRY_NOW' });
    assert.equal(state(), 'uploading');
  });

  it('aborts the step in flight when paused and uploads again on resume', async () => {
    const { step, actor, state } = setup();
    actor.send({ type: 'WORK' });
    actor.send({ type: 'PAUSE' });
    assert.equal(state(), 'paused');
    assert.equal(step.runs[0]!.signal.aborted, true);
    actor.send({ type: 'WORK' });
    assert.equal(state(), 'paused', 'work waits while paused');
    actor.send({ type: 'RESUME' });
    assert.equal(state(), 'uploading');
    assert.equal(step.runs.length, 2);
  });

  it('computes the delay with the pipelines\' backoff formula', () => {
    assert.deepEqual([0, 1, 2, 3, 20].map((n) => retryDelay({ initialDelayMs: 500, maxDelayMs: 3000 }, n)), [500, 1000, 2000, 3000, 3000]);
  });
});
