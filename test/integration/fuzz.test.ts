import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runSeed } from '../support/fuzzRandom.js';
import { formatReport, fuzzSurface } from '../support/fuzzRunner.js';
import { fuzzSurfaces } from '../support/fuzzSurfaces.js';
import { FuzzTarget } from '../support/fuzzTarget.js';

// A small count per surface keeps this file near a minute and a half; `npm run fuzz` sends 10,000 each.
// Replay a failure with its seed: FUZZ_SEED=<seed> (FUZZ_ONLY=whep,twin to run some surfaces only).
// A fixed seed unless one is given, so that `npm test` sends the same inputs on every run and CI is repeatable;
// `npm run fuzz` draws a fresh seed each time and explores (FUZZ_SEED=random here does too).
const seed = process.env.FUZZ_SEED === 'random' ? runSeed({}) : process.env.FUZZ_SEED ? runSeed() : 829159190;
const only = process.env.FUZZ_ONLY?.split(',').filter(Boolean);
console.log(`[fuzz] seed ${seed}: replay with FUZZ_SEED=${seed}`);

let target: FuzzTarget;
before(async () => {
  target = await FuzzTarget.start();
});
after(async () => {
  await target?.close();
});

describe(`hostile input on every surface of a running module (FUZZ_SEED=${seed})`, () => {
  for (const { surface, testCount } of fuzzSurfaces().filter(({ surface }) => !only || only.includes(surface.name))) {
    it(`${surface.name}: ${testCount} inputs get the answers the README promises, and the module, its pipelines and its viewers stay up`, async () => {
      const from = target.module.logs.length;
      const report = await fuzzSurface(surface, target, seed, testCount);
      console.log(formatReport(report));
      const up = await target.stayUpProblems(from);
      assert.deepEqual([...report.problems, ...up], [], `${report.problemCount} input problem(s), ${up.length} stay-up problem(s) (FUZZ_SEED=${seed})`);
    });
  }
});
