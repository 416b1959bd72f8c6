import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDesired } from '../../config/desired.js';
import { resolveDesired } from '../../config/resolve.js';
import { planSwap } from '../../machines/swapPlan.js';

describe('swap plan', () => {
  it('plans a swap that touches only what changed', () => {
    const before = resolveDesired(parseDesired({ pipeline: 'a', pipelines: { cam2: 'b', cam3: 'c' } }), {});
    const after = resolveDesired(parseDesired({ pipeline: 'a', pipelines: { cam2: 'B', cam4: 'd' } }), {});
    const plan = planSwap(before, after);
    assert.deepEqual(plan.keep, ['main']);
    assert.deepEqual([...plan.stop].sort(), ['cam2', 'cam3']);
    assert.deepEqual(plan.start.map((p) => p.name).sort(), ['cam2', 'cam4']);
  });

  it('restarts a pipeline whose variables changed value even though its text did not', () => {
    const doc = parseDesired({ pipeline: 'uri=$CAM' });
    const plan = planSwap(resolveDesired(doc, { CAM: 'one' }), resolveDesired(doc, { CAM: 'two' }));
    assert.deepEqual(plan.stop, ['main']);
  });
});
