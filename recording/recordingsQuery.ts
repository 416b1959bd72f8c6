import { ConfigError } from '../config/errors.js';
import type { SegmentEntry } from './SegmentQueue.js';
import { stripQueries } from './target.js';

/** A `/api/recordings` question: segments overlapping [from, to), optionally of one stream. */
export interface RecordingsQuery {
  readonly fromMs: number;
  readonly toMs: number;
  readonly stream: string | null;
  /** At most this many segments, oldest first. */
  readonly limit: number;
}

/** One segment in the answer. */
export interface RecordingItem {
  readonly id: string;
  readonly stream: string;
  readonly start: string;
  readonly end: string;
  readonly durationMs: number;
  readonly size: number;
  /** pending: waiting for upload; uploaded; failed or dropped: never will be (reason says why). */
  readonly state: SegmentEntry['state'];
  /** The local file's name while it is on disk, else null. */
  readonly file: string | null;
  /** Where it was uploaded: one per target done. */
  readonly uploads: ReadonlyArray<{ readonly target: string; readonly url: string; readonly at: string }>;
  readonly reason: string | null;
}

export interface RecordingsAnswer {
  readonly from: string;
  readonly to: string;
  readonly count: number;
  /** More segments matched than `limit`. */
  readonly truncated: boolean;
  readonly segments: readonly RecordingItem[];
}

const DAY_MS = 86_400_000;
const MAX_LIMIT = 10_000;

/**
 * Reads the query string of `/api/recordings`: `from` and `to` as ISO 8601 times or ms since 1970 (default: the
 * last 24 hours), `stream`, `limit` (1000). A bad value is a {@link ConfigError} whose message can go back to the
 * client as a 400.
 *
 * @example
 * parseRecordingsQuery({ from: '2024-05-01T00:00:00Z', to: '2024-05-02T00:00:00Z', stream: 'video' }, Date.now())
 */
export function parseRecordingsQuery(query: Readonly<Record<string, string | undefined>>, now: number): RecordingsQuery {
  const time = (key: string, fallback: number): number => {
    const value = query[key];
    if (value === undefined || value === '') return fallback;
    const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
    if (!Number.isFinite(ms)) throw new ConfigError(`${key} must be an ISO 8601 time or ms since 1970, got "${value.slice(0, 40)}"`);
    return ms;
  };
  const toMs = time('to', now);
  const fromMs = time('from', toMs - DAY_MS);
  if (fromMs > toMs) throw new ConfigError(`from (${new Date(fromMs).toISOString()}) is after to (${new Date(toMs).toISOString()})`);
  const limitText = query.limit;
  const limit = limitText === undefined || limitText === '' ? 1000 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new ConfigError(`limit must be an integer from 1 to ${MAX_LIMIT}, got "${String(limitText).slice(0, 20)}"`);
  const stream = query.stream === undefined || query.stream === '' ? null : query.stream;
  return { fromMs, toMs, stream, limit };
}

/**
 * Answers `/api/recordings` from the queue's entries ({@link SegmentQueue.entries}): local and uploaded segments
 * whose time span overlaps the range, oldest first. Pure: no I/O, so the route is a one-liner and tests need no
 * queue. URLs carry no query string (no SAS token).
 *
 * @example
 * reply.send(queryRecordings(queue.entries(), parseRecordingsQuery(request.query, Date.now())));
 */
export function queryRecordings(entries: ReadonlyArray<Readonly<SegmentEntry>>, query: RecordingsQuery): RecordingsAnswer {
  const matches = entries
    .filter((e) => (query.stream === null || e.stream === query.stream) && e.startMs < query.toMs && e.startMs + Math.max(e.durationMs, 1) > query.fromMs)
    .sort((a, b) => a.startMs - b.startMs || a.seq - b.seq);
  const segments = matches.slice(0, query.limit).map((e): RecordingItem => ({
    id: e.id,
    stream: e.stream,
    start: new Date(e.startMs).toISOString(),
    end: new Date(e.startMs + e.durationMs).toISOString(),
    durationMs: e.durationMs,
    size: e.size,
    state: e.state,
    file: e.local === 'present' ? (e.path.split('/').pop() ?? null) : null,
    uploads: Object.entries(e.targets)
      .filter(([, p]) => p.state === 'done' && p.url !== null)
      .map(([target, p]) => ({ target, url: stripQueries(p.url!), at: new Date(p.uploadedAt ?? 0).toISOString() })),
    reason: e.reason,
  }));
  return { from: new Date(query.fromMs).toISOString(), to: new Date(query.toMs).toISOString(), count: segments.length, truncated: matches.length > segments.length, segments };
}
