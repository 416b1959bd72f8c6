import { createHash } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { SegmentFileError, UploadError, VerificationError } from './errors.js';
import { openSegment, readPiece } from './localFile.js';
import { S3_MIN_PART, type S3TargetSettings } from './settings.js';
import { md5OfFile } from './fileMd5.js';
import { describeError, httpStatus, inParallel, keyHash, pieces, type ResumeState, type UploadJob, type UploadResult, type UploadTarget } from './target.js';

/** S3 allows at most this many parts per upload. */
const MAX_PARTS = 10_000;

/** What the journal keeps to resume a multipart upload: its id and the ETag of every part the server took. */
interface S3Resume {
  readonly kind: 's3';
  readonly uploadId: string;
  readonly partSize: number;
  /** {@link keyHash} of the job: another file's upload is never resumed as this one's. */
  readonly key: string;
  /** ETag of part i+1, '' while not uploaded. */
  readonly etags: readonly string[];
}

function isS3Resume(value: ResumeState | null, key: string): value is ResumeState & S3Resume {
  return value !== null && value.kind === 's3' && typeof value.uploadId === 'string' && typeof value.partSize === 'number' && value.key === key && Array.isArray(value.etags);
}

const unquote = (etag: string | undefined) => (etag ?? '').replace(/"/g, '');

export interface S3TargetOptions {
  readonly blockSize: number;
  readonly concurrency: number;
  readonly requestTimeoutMs: number;
}

/**
 * Uploads segments with multipart uploads that survive a crash: the UploadId and each part's ETag are persisted
 * as they come back (lib-storage's `Upload` keeps them in memory and starts over; ListParts is not something every
 * S3-compatible server has), and the upload is completed with them. Each part is sent with its Content-MD5 (S3
 * refuses a part whose bytes do not match) from a Buffer, never a stream: with the SDK's default checksums a
 * stream body is sent aws-chunked, which some S3-compatible servers store as data. The object's length (and
 * ETag, unless `verify_etag` is off) is read back before the upload counts as done.
 */
export class S3Target implements UploadTarget {
  readonly name: string;
  readonly type = 's3' as const;
  readonly #client: S3Client;
  readonly #settings: S3TargetSettings;
  readonly #options: S3TargetOptions;

  constructor(settings: S3TargetSettings, options: S3TargetOptions) {
    this.name = settings.name;
    this.#settings = settings;
    this.#options = options;
    this.#client = new S3Client({
      region: settings.region,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      forcePathStyle: settings.forcePathStyle,
      ...(settings.accessKeyId && settings.secretAccessKey
        ? { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey, ...(settings.sessionToken ? { sessionToken: settings.sessionToken } : {}) } }
        : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The queue retries with its own backoff; SDK retries would hide an outage behind long waits.
      maxAttempts: 1,
      requestHandler: { requestTimeout: options.requestTimeoutMs, connectionTimeout: Math.min(options.requestTimeoutMs, 10_000) },
    });
  }

  /** The object's URL (no credentials: S3 URLs carry none unless presigned). */
  objectUrl(key: string): string {
    const path = key.split('/').map(encodeURIComponent).join('/');
    if (this.#settings.endpoint) {
      const base = this.#settings.endpoint.replace(/\/+$/, '');
      if (this.#settings.forcePathStyle) return `${base}/${this.#settings.bucket}/${path}`;
      const u = new URL(base);
      return `${u.protocol}//${this.#settings.bucket}.${u.host}/${path}`;
    }
    return `https://${this.#settings.bucket}.s3.${this.#settings.region}.amazonaws.com/${path}`;
  }

  async upload(job: UploadJob, signal: AbortSignal): Promise<UploadResult> {
    const url = this.objectUrl(job.objectName);
    const Bucket = this.#settings.bucket;
    const Key = job.objectName;
    const Metadata = { ...job.metadata };
    const key = keyHash(job.key);
    try {
      const partSize = Math.max(this.#options.blockSize, S3_MIN_PART, Math.ceil(job.size / MAX_PARTS));
      if (job.size <= partSize && !isS3Resume(job.resume, key)) {
        // One part's worth: a single PutObject (Content-MD5 checked by S3) costs a third of the requests, and a
        // retry sends no more than a resumed multipart upload would.
        const handle = await openSegment(job.path, job.size);
        let body: Buffer;
        try {
          body = await readPiece(handle, job.path, 0, job.size);
        } finally {
          await handle.close();
        }
        const md5 = createHash('md5').update(body).digest('base64');
        await this.#client.send(new PutObjectCommand({ Bucket, Key, Body: body, ContentLength: job.size, ContentType: job.contentType, ContentMD5: md5, Metadata }), { abortSignal: signal });
        job.onProgress(job.size);
        await this.#verify(job, md5, [], signal);
        return { md5, url, bytesSent: job.size, bytesSkipped: 0, unitsSkipped: 0, units: 1 };
      }
      let state: S3Resume;
      if (isS3Resume(job.resume, key)) {
        state = job.resume;
      } else {
        const created = await this.#client.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: job.contentType, Metadata }), { abortSignal: signal });
        if (!created.UploadId) throw new UploadError('CreateMultipartUpload returned no UploadId');
        state = { kind: 's3', uploadId: created.UploadId, partSize, key, etags: pieces(job.size, partSize).map(() => '') };
        await job.saveResume({ ...state });
      }
      const parts = pieces(job.size, state.partSize);
      const etags = [...state.etags];
      const todo = parts.map(([offset, length], i) => ({ i, offset, length })).filter((p) => !etags[p.i]);
      const bytesSkipped = job.size - todo.reduce((sum, p) => sum + p.length, 0);
      let done = bytesSkipped;
      // Saves one after another, in the order parts finish.
      let saving = Promise.resolve();
      const handle = await openSegment(job.path, job.size);
      // The whole file's MD5 (the ETag of some S3-compatible servers, the journal, the event) on a worker thread.
      const whole = md5OfFile(job.path);
      whole.catch(() => undefined);
      try {
        await inParallel(todo, this.#options.concurrency, async ({ i, offset, length }) => {
          const body = await readPiece(handle, job.path, offset, length);
          const md5 = createHash('md5').update(body).digest();
          const answer = await this.#client.send(
            new UploadPartCommand({ Bucket, Key, UploadId: state.uploadId, PartNumber: i + 1, Body: body, ContentLength: length, ContentMD5: md5.toString('base64') }),
            { abortSignal: signal },
          );
          const etag = unquote(answer.ETag);
          if (!etag) throw new UploadError(`part ${i + 1}: no ETag in the answer`);
          if (this.#settings.verifyEtag && etag !== md5.toString('hex')) throw new UploadError(`part ${i + 1}: stored ETag ${etag} is not the part's MD5 ${md5.toString('hex')}`);
          etags[i] = etag;
          // The lane goes on with its next part while the journal write (an fsync) happens; progress is reported
          // once persisted, so a crash after that point does not send the part again.
          const snapshot = { ...state, etags: [...etags] };
          saving = saving.then(async () => {
            await job.saveResume(snapshot);
            done += length;
            job.onProgress(done);
          });
        });
      } finally {
        await handle.close();
        await saving.catch(() => undefined);
      }
      await saving;
      const md5 = await whole;
      try {
        await this.#client.send(
          new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: state.uploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag: `"${ETag}"` })) } }),
          { abortSignal: signal },
        );
      } catch (error) {
        if ((error as { name?: string }).name !== 'NoSuchUpload') throw error;
        // Completed by an attempt whose answer was lost, or expired: the object says which.
        try {
          await this.#verify(job, md5, etags, signal);
        } catch {
          await job.saveResume(null);
          throw new UploadError(`multipart upload ${Key} no longer exists and the object does not match: starting over`);
        }
      }
      await this.#verify(job, md5, etags, signal);
      return { md5, url, bytesSent: job.size - bytesSkipped, bytesSkipped, unitsSkipped: parts.length - todo.length, units: parts.length };
    } catch (error) {
      if (error instanceof SegmentFileError || error instanceof VerificationError || error instanceof UploadError || signal.aborted) throw error;
      throw new UploadError(describeError(error), httpStatus(error));
    }
  }

  /** The object has the file's length, and an ETag that is its MD5 or the multipart MD5 of its parts. */
  async #verify(job: UploadJob, md5: string, etags: readonly string[], signal: AbortSignal): Promise<void> {
    const head = await this.#client.send(new HeadObjectCommand({ Bucket: this.#settings.bucket, Key: job.objectName }), { abortSignal: signal });
    if (head.ContentLength !== job.size) throw new VerificationError(`${job.objectName}: stored ${head.ContentLength} bytes, expected ${job.size}`);
    if (!this.#settings.verifyEtag) return;
    const etag = unquote(head.ETag);
    const whole = Buffer.from(md5, 'base64').toString('hex');
    const multipart = createHash('md5').update(Buffer.concat(etags.map((e) => Buffer.from(e, 'hex')))).digest('hex');
    // AWS: md5-of-part-md5s "-N"; some S3-compatible servers: the whole file's MD5, or the multipart one without "-N".
    if (etag !== whole && etag !== `${multipart}-${etags.length}` && etag !== multipart) {
      throw new VerificationError(`${job.objectName}: stored ETag ${etag} matches neither the file's MD5 nor its parts'`);
    }
  }

  close(): void {
    this.#client.destroy();
  }
}
