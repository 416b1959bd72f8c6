import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyPatch, capReported, MAX_REPORTED_BYTES, reportedPatch } from '../../actors/reportedPatch.js';

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

  it('leaves a status that fits IoT Hub\'s limit as it is', () => {
    const status = { config: { status: 'applied' }, pipelines: { main: { state: 'playing', pipeline: 'videotestsrc ! fakesink' } } };
    assert.deepEqual(capReported(status), status);
  });

  it('cuts a status over the limit, long strings first, and says so', () => {
    const long = 'x'.repeat(20_000);
    const capped = capReported({ config: { status: 'rejected', error: long }, pipelines: { main: { state: 'playing', pipeline: long } } });
    assert.ok(Buffer.byteLength(JSON.stringify(capped)) <= MAX_REPORTED_BYTES);
    assert.deepEqual(capped.truncated, { strings: true });
    assert.equal((capped.pipelines as Record<string, { state: string }>).main!.state, 'playing');
  });

  it('leaves out pipelines that do not fit even shortened, and counts them', () => {
    const pipelines = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`cam${i}`, { state: 'playing', pipeline: 'p'.repeat(400), lastError: 'e'.repeat(400) }]));
    const capped = capReported({ config: { status: 'applied' }, pipelines });
    assert.ok(Buffer.byteLength(JSON.stringify(capped)) <= MAX_REPORTED_BYTES);
    const kept = Object.keys(capped.pipelines as object).length;
    assert.ok(kept > 0 && kept < 300);
    assert.deepEqual(capped.truncated, { strings: true, pipelinesLeftOut: 300 - kept });
  });
});
