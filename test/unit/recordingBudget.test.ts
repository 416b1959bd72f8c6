import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planBudget, type BudgetItem } from '../../recording/budget.js';
import { parseSegmentFileName, segmentFileName } from '../../recording/naming.js';
import { parseRecordingsQuery, queryRecordings } from '../../recording/recordingsQuery.js';
import type { SegmentEntry } from '../../recording/SegmentQueue.js';

const item = (id: string, startMs: number, size: number, uploaded: boolean): BudgetItem => ({ id, startMs, size, uploaded });
const local = { maxBytes: 100, maxAgeMs: null, whenFull: 'drop-oldest' as const, alarmAt: 0.9 };

describe('disk budget', () => {
  it('deletes uploaded files oldest first before touching anything not uploaded', () => {
    const plan = planBudget([item('u1', 1, 40, true), item('p1', 2, 40, false), item('u2', 3, 40, true)], local, 10);
    assert.deepEqual(plan.deleteUploaded, ['u1']);
    assert.deepEqual(plan.drop, []);
    assert.equal(plan.alarm, null);
  });

  it('raises the filling alarm when not-uploaded bytes pass alarm_at, before any drop', () => {
    const plan = planBudget([item('p1', 1, 45, false), item('p2', 2, 46, false)], local, 10);
    assert.deepEqual(plan.drop, []);
    assert.equal(plan.alarm?.level, 'filling');
  });

  it('drops the oldest not-uploaded segments only when nothing uploaded is left, with the dropping alarm', () => {
    const plan = planBudget([item('u1', 0, 10, true), item('p1', 1, 50, false), item('p2', 2, 50, false), item('p3', 3, 50, false)], local, 10);
    assert.deepEqual(plan.deleteUploaded, ['u1']);
    assert.deepEqual(plan.drop, [{ id: 'p1', reason: 'disk-budget' }], 'just enough to fit: 10 + 3 x 50 bytes in a budget of 100');
    assert.equal(plan.alarm?.level, 'dropping');
    assert.match(plan.alarm!.message, /dropping 1 segment\(s\) not uploaded/);
  });

  it('drops the newest instead with when_full drop-newest', () => {
    const plan = planBudget([item('p1', 1, 60, false), item('p2', 2, 60, false)], { ...local, whenFull: 'drop-newest' }, 10);
    assert.deepEqual(plan.drop, [{ id: 'p2', reason: 'disk-budget' }]);
  });

  it('applies the age limit to every local file, reporting not-uploaded ones as dropped', () => {
    const plan = planBudget([item('u1', 0, 1, true), item('p1', 0, 1, false), item('p2', 95, 1, false)], { ...local, maxAgeMs: 50 }, 100);
    assert.deepEqual(plan.deleteUploaded, ['u1']);
    assert.deepEqual(plan.drop, [{ id: 'p1', reason: 'max-age' }]);
    assert.equal(plan.alarm?.level, 'dropping');
  });
});

describe('segment names', () => {
  it('name files by stream and UTC start, and read both back', () => {
    const start = Date.UTC(2024, 4, 1, 12, 0, 0, 123);
    assert.equal(segmentFileName('video', start), 'video-20240501T120000.123Z.mp4');
    assert.deepEqual(parseSegmentFileName('cam-2-20240501T120000.123Z-1.mp4.part'), { stream: 'cam-2', startMs: start, partial: true, finalName: 'cam-2-20240501T120000.123Z-1.mp4' });
    assert.equal(parseSegmentFileName('segment00001.ts'), null);
  });
});

describe('recordings query', () => {
  const entry = (seq: number, stream: string, startMs: number, state: SegmentEntry['state'], url: string | null): SegmentEntry => ({
    id: `${stream}-${seq}`,
    seq,
    path: `/rec/${stream}-${seq}.mp4`,
    stream,
    source: 'recorder',
    startMs,
    durationMs: 10_000,
    size: 1000,
    md5: 'x',
    objectName: `o/${seq}`,
    addedAt: startMs,
    origin: null,
    state,
    local: url ? 'deleted' : 'present',
    targets: { t: { state: url ? 'done' : 'pending', resume: null, url, uploadedAt: url ? startMs + 20_000 : null } },
    uploadedAt: url ? startMs + 20_000 : null,
    reason: null,
  });
  const entries = [entry(1, 'video', 0, 'uploaded', 'https://a/b/1.mp4'), entry(2, 'video', 10_000, 'pending', null), entry(3, 'hls', 15_000, 'pending', null), entry(4, 'video', 20_000, 'pending', null)];

  it('lists local and uploaded segments overlapping the range, oldest first', () => {
    const answer = queryRecordings(entries, { fromMs: 5_000, toMs: 20_000, stream: null, limit: 100 });
    assert.deepEqual(answer.segments.map((s) => s.id), ['video-1', 'video-2', 'hls-3']);
    assert.deepEqual(answer.segments[0]!.uploads, [{ target: 't', url: 'https://a/b/1.mp4', at: new Date(20_000).toISOString() }]);
    assert.equal(answer.segments[0]!.file, null);
    assert.equal(answer.segments[1]!.file, 'video-2.mp4');
  });

  it('filters by stream and limits the answer', () => {
    const answer = queryRecordings(entries, { fromMs: 0, toMs: 100_000, stream: 'video', limit: 2 });
    assert.deepEqual(answer.segments.map((s) => s.id), ['video-1', 'video-2']);
    assert.equal(answer.truncated, true);
  });

  it('reads the query string and refuses bad values with a clear message', () => {
    assert.deepEqual(parseRecordingsQuery({ from: '1970-01-01T00:00:01Z', to: '5000', stream: 'video' }, 0), { fromMs: 1000, toMs: 5000, stream: 'video', limit: 1000 });
    assert.deepEqual(parseRecordingsQuery({}, 86_400_000 * 2), { fromMs: 86_400_000, toMs: 86_400_000 * 2, stream: null, limit: 1000 });
    assert.throws(() => parseRecordingsQuery({ from: 'yesterday' }, 0), /from must be an ISO 8601 time/);
    assert.throws(() => parseRecordingsQuery({ from: '10', to: '5' }, 0), /is after to/);
    assert.throws(() => parseRecordingsQuery({ limit: '0' }, 0), /limit must be an integer/);
  });
});
