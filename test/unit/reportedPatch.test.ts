import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyPatch, reportedPatch } from '../../actors/reportedPatch.js';

describe('reported properties patches', () => {
  it('sends only what changed, and null for what is gone', () => {
    const before = { config: { status: 'applied', error: null }, pipelines: { main: { state: 'playing', restarts: 0 }, cam2: { state: 'playing' } } };
    const after = { config: { status: 'rejected', error: 'bad' }, pipelines: { main: { state: 'playing', restarts: 0 } } };
    assert.deepEqual(reportedPatch(before, after), { config: { status: 'rejected', error: 'bad' }, pipelines: { cam2: null } });
  });

  it('returns null when nothing changed, so nothing is sent', () => {
    const doc = { a: { b: [1, 2] }, c: 'x' };
    assert.equal(reportedPatch(doc, structuredClone(doc)), null);
  });

  it('gives back the next document when the patch is applied as the hub does', () => {
    const before = { a: { b: 1, c: 2 }, d: 3 };
    const after = { a: { b: 1, e: { f: 4 } }, g: null };
    const patch = reportedPatch(before, after)!;
    assert.deepEqual(applyPatch(before, patch), { a: { b: 1, e: { f: 4 } } });
  });
});
