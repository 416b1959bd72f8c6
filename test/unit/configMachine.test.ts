import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, fromPromise, waitFor } from 'xstate';
import { parseDesired, type ResolvedConfig } from '../../config/desired.js';
import { resolveDesired } from '../../config/resolve.js';
import { configMachine, type ApplyInput, type ConfigEmitted, type ValidateInput } from '../../machines/config.js';

/** A promise the test settles by hand. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function resolved(pipeline: string): ResolvedConfig {
  return resolveDesired(parseDesired({ pipeline }), {});
}

function setup() {
  const validations: Array<{ input: ValidateInput; result: ReturnType<typeof deferred<ResolvedConfig>> }> = [];
  const applies: Array<{ input: ApplyInput; result: ReturnType<typeof deferred<void>> }> = [];
  let concurrentApplies = 0;
  let maxConcurrentApplies = 0;
  const actor = createActor(
    configMachine.provide({
      actors: {
        validate: fromPromise<ResolvedConfig, ValidateInput>(({ input }) => {
          const result = deferred<ResolvedConfig>();
          validations.push({ input, result });
          return result.promise;
        }),
        apply: fromPromise<void, ApplyInput>(async ({ input }) => {
          const result = deferred<void>();
          applies.push({ input, result });
          concurrentApplies++;
          maxConcurrentApplies = Math.max(maxConcurrentApplies, concurrentApplies);
          try {
            await result.promise;
          } finally {
            concurrentApplies--;
          }
        }),
      },
    }),
  );
  const emitted: ConfigEmitted[] = [];
  for (const type of ['applied', 'rejected', 'superseded'] as const) actor.on(type, (e) => emitted.push(e));
  actor.start();
  const desired = (sequence: number, pipeline: string) => actor.send({ type: 'DESIRED', desired: { document: { pipeline }, sequence } });
  const settle = () => new Promise((r) => setImmediate(r));
  return { actor, validations, applies, emitted, desired, settle, maxConcurrent: () => maxConcurrentApplies };
}

describe('config machine', () => {
  it('validates then applies a desired document', async () => {
    const { actor, validations, applies, emitted, desired, settle } = setup();
    desired(1, 'a');
    assert.equal(validations.length, 1);
    validations[0]!.result.resolve(resolved('a'));
    await settle();
    assert.equal(applies.length, 1);
    assert.equal(applies[0]!.input.applied, null);
    applies[0]!.result.resolve();
    await waitFor(actor, (s) => s.matches('idle'));
    assert.deepEqual(emitted.map((e) => e.type), ['applied']);
    assert.equal(actor.getSnapshot().context.applied?.pipelines[0]?.launch, 'a');
  });

  it('rejects an invalid document and keeps the applied config', async () => {
    const { actor, validations, applies, emitted, desired, settle } = setup();
    desired(1, 'good');
    validations[0]!.result.resolve(resolved('good'));
    await settle();
    applies[0]!.result.resolve();
    await waitFor(actor, (s) => s.matches('idle'));
    desired(2, 'bad');
    validations[1]!.result.reject(new Error('main: no element "bad"'));
    await waitFor(actor, (s) => s.matches('idle'));
    assert.equal(applies.length, 1, 'nothing applied for the bad document');
    assert.equal(actor.getSnapshot().context.applied?.pipelines[0]?.launch, 'good');
    const rejected = emitted.find((e) => e.type === 'rejected');
    assert.ok(rejected && rejected.type === 'rejected');
    assert.equal(rejected.error, 'main: no element "bad"');
    assert.equal(rejected.sequence, 2);
  });

  it('coalesces documents that arrive during a swap: the last one wins', async () => {
    const { actor, validations, applies, emitted, desired, settle, maxConcurrent } = setup();
    desired(1, 'one');
    desired(2, 'two');
    desired(3, 'three');
    assert.equal(validations.length, 1);
    validations[0]!.result.resolve(resolved('one'));
    await settle();
    assert.equal(applies.length, 0, 'a superseded document is not applied');
    assert.equal(validations.length, 2);
    assert.equal((validations[1]!.input.desired.document as { pipeline: string }).pipeline, 'three');
    validations[1]!.result.resolve(resolved('three'));
    await settle();
    desired(4, 'four');
    desired(5, 'five');
    applies[0]!.result.resolve();
    await settle();
    assert.equal(validations.length, 3);
    assert.equal((validations[2]!.input.desired.document as { pipeline: string }).pipeline, 'five');
    assert.equal(validations[2]!.input.applied?.pipelines[0]?.launch, 'three');
    validations[2]!.result.resolve(resolved('five'));
    await settle();
    applies[1]!.result.resolve();
    await waitFor(actor, (s) => s.matches('idle'));
    assert.deepEqual(
      applies.map((a) => a.input.next.pipelines[0]?.launch),
      ['three', 'five'],
    );
    assert.equal(maxConcurrent(), 1, 'never two swaps at once');
    assert.deepEqual(emitted.map((e) => e.type), ['superseded', 'applied', 'applied']);
  });
});
