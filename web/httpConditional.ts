/**
 * HTTP conditional requests and byte ranges for files (RFC 9110): validators, If-None-Match /
 * If-Modified-Since, If-Range and a single `Range`. Pure functions of headers and a file's stat.
 */
import type { Stats } from 'node:fs';
import type { FastifyRequest } from 'fastify';

/** The byte range a `Range` header asks of a file of `size` bytes: one range, `'unsatisfiable'`, or null for the whole file. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  // Multiple ranges and unknown units are answered with the whole file, as RFC 9110 allows.
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    return suffix === 0 || size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size) return 'unsatisfiable';
  return start > end ? null : { start, end };
}

/** Validators of a file as nginx writes them: a strong ETag from mtime and size, and Last-Modified. */
export function validators(stat: Stats): { etag: string; lastModified: string } {
  return { etag: `"${Math.floor(stat.mtimeMs).toString(16)}-${stat.size.toString(16)}"`, lastModified: stat.mtime.toUTCString() };
}

/** RFC 9110 section 13.2.2 for GET/HEAD: If-None-Match wins over If-Modified-Since. */
export function notModified(request: FastifyRequest, etag: string, stat: Stats): boolean {
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    return ifNoneMatch.trim() === '*' || ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
  }
  const since = Date.parse(request.headers['if-modified-since'] ?? '');
  return !Number.isNaN(since) && Math.floor(stat.mtimeMs / 1000) * 1000 <= since;
}

/** If-Range: a range applies only to the representation the client already holds part of. */
export function rangeStillValid(request: FastifyRequest, etag: string, lastModified: string): boolean {
  const ifRange = request.headers['if-range'];
  if (typeof ifRange !== 'string') return ifRange === undefined;
  return ifRange.trim() === etag || ifRange.trim() === lastModified;
}

