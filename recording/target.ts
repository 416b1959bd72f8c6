import { createHash } from 'node:crypto';
import type { TargetSettings } from './settings.js';

/** JSON a target persists in the queue's journal to resume an upload after a crash. */
export type ResumeState = { readonly [key: string]: string | number | boolean | null | ResumeState | readonly ResumeState[] | readonly string[] };

/** One segment to upload (or to finish uploading). */
export interface UploadJob {
  readonly path: string;
  readonly objectName: string;
  readonly size: number;
  /**
   * Names this queued file for as long as it is queued (stable across attempts and restarts, different for any
   * other file): block ids and resume state derive from it, so staged data of another file is never reused.
   */
  readonly key: string;
  readonly contentType: string;
  /** Metadata stored with the object (ASCII keys and values). */
  readonly metadata: Readonly<Record<string, string>>;
  /** What the last attempt persisted, or null for a first attempt. */
  readonly resume: ResumeState | null;
  /** Persists progress (awaited: once it resolves, a crash resumes from there). Calls are not concurrent. */
  readonly saveResume: (state: ResumeState | null) => Promise<void>;
  /** Bytes confirmed by the server so far (for throughput and status). */
  readonly onProgress: (bytesDone: number) => void;
}

/** What a verified upload reports. */
export interface UploadResult {
  /** MD5 of the whole file, base64, hashed from the bytes read for the upload (no extra pass over the file). */
  readonly md5: string;
  /** The object's URL without any query string (a SAS token never leaves the target). */
  readonly url: string;
  /** Bytes sent in this attempt. */
  readonly bytesSent: number;
  /** Bytes already on the server from an earlier attempt (resumed). */
  readonly bytesSkipped: number;
  /** Blocks or parts found already uploaded, and how many the file has. */
  readonly unitsSkipped: number;
  readonly units: number;
}

/**
 * Where segments go. `upload` resumes from `job.resume`, persists progress with `job.saveResume`, verifies the
 * stored object before it resolves, and rejects with an UploadError (retry later), a VerificationError (start
 * over) or a SegmentFileError (the local file cannot be read as queued).
 */
export interface UploadTarget {
  readonly name: string;
  readonly type: TargetSettings['type'];
  upload(job: UploadJob, signal: AbortSignal): Promise<UploadResult>;
  close(): void;
}

/** Parts of [0, size) in `unit`-sized pieces: [offset, length]. A zero-byte file has one empty piece. */
export function pieces(size: number, unit: number): Array<[number, number]> {
  if (size === 0) return [[0, 0]];
  const out: Array<[number, number]> = [];
  for (let offset = 0; offset < size; offset += unit) out.push([offset, Math.min(unit, size - offset)]);
  return out;
}

/** Runs `work` over `items` with at most `limit` at once; the first failure rejects (the rest are let finish). */
export async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const lane = async () => {
    while (failure === null && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure !== null) throw (failure as { error: unknown }).error;
}

/** A URL without its query string (SAS tokens, presigned signatures). */
export function withoutQuery(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** Error text for status and logs: status code and service error code first, no URL query strings. */
export function describeError(error: unknown): string {
  const e = error as { name?: string; code?: string; statusCode?: number; message?: string; $metadata?: { httpStatusCode?: number }; Code?: string } | null;
  const status = e?.statusCode ?? e?.$metadata?.httpStatusCode;
  const code = e?.code ?? e?.Code ?? (e?.name && e.name !== 'Error' ? e.name : undefined);
  const message = (e?.message ?? String(error)).split('\n')[0]!.slice(0, 300);
  const head = [status, code].filter((x) => x !== undefined && x !== '').join(' ');
  return stripQueries(head ? `${head}: ${message}` : message);
}

/** Removes query strings from URLs inside text. */
export function stripQueries(text: string): string {
  return text.replace(/(\bhttps?:\/\/[^\s?"'<>]+)\?[^\s"'<>]*/gi, '$1?…');
}

/** HTTP status of an SDK error, when the server answered. */
export function httpStatus(error: unknown): number | null {
  const e = error as { statusCode?: number; $metadata?: { httpStatusCode?: number } } | null;
  return e?.statusCode ?? e?.$metadata?.httpStatusCode ?? null;
}

/** A stable short id from a job key, for block ids and resume checks. */
export function keyHash(key: string): string {
  return createHash('sha1').update(key).digest('hex').slice(0, 12);
}
