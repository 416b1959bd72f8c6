import { createHash } from 'node:crypto';
import { AnonymousCredential, BlobServiceClient, ContainerClient, type BlockBlobClient, type StoragePipelineOptions } from '@azure/storage-blob';
import { SegmentFileError, UploadError, VerificationError } from './errors.js';
import { openSegment, readPiece } from './localFile.js';
import type { AzureBlobTargetSettings } from './settings.js';
import { md5OfFile } from './fileMd5.js';
import { describeError, httpStatus, inParallel, keyHash, pieces, withoutQuery, type ResumeState, type UploadJob, type UploadResult, type UploadTarget } from './target.js';

/** What the journal keeps to resume a blob upload: the block size (so the file is cut the same way again). */
interface AzureResume {
  readonly kind: 'azure-blob';
  readonly blockSize: number;
  /** {@link keyHash} of the job: progress of another file is never taken for this one's. */
  readonly key: string;
}

function isAzureResume(value: ResumeState | null, key: string): value is ResumeState & AzureResume {
  return value !== null && value.kind === 'azure-blob' && typeof value.blockSize === 'number' && value.key === key;
}

/**
 * Block ids derived from the queued file ({@link keyHash} of its job key) and the block's index: the same file cut
 * the same way always gives the same ids, so after a crash `getBlockList('uncommitted')` says which blocks are
 * already staged, and blocks another file left under the same blob name are never taken for this one's. All ids
 * of one blob must have the same length (Azure's rule), hence the padding.
 */
export function blockId(key: string, index: number): string {
  return Buffer.from(`${key}-${String(index).padStart(6, '0')}`).toString('base64');
}

export interface AzureBlobTargetOptions {
  readonly blockSize: number;
  readonly concurrency: number;
  readonly requestTimeoutMs: number;
}

/**
 * Uploads segments as block blobs, resumably: deterministic block ids ({@link blockId}), each block sent with its
 * MD5 (the service refuses a block whose bytes do not match), `getBlockList` to skip what is staged, and a
 * commit with the whole file's MD5 as `Content-MD5`; the committed length and MD5 are read back before the
 * upload counts as done. The SDK's own retries are off: the queue retries with its backoff.
 */
export class AzureBlobTarget implements UploadTarget {
  readonly name: string;
  readonly type = 'azure-blob' as const;
  /** The container segments go into. */
  readonly #container: ContainerClient;
  readonly #options: AzureBlobTargetOptions;

  constructor(settings: AzureBlobTargetSettings, options: AzureBlobTargetOptions) {
    this.name = settings.name;
    this.#options = options;
    const pipeline: StoragePipelineOptions = { retryOptions: { maxTries: 1, tryTimeoutInMs: options.requestTimeoutMs } };
    if (settings.auth.kind === 'connection-string') {
      this.#container = BlobServiceClient.fromConnectionString(settings.auth.connectionString, pipeline).getContainerClient(settings.container);
    } else if (settings.auth.containerInUrl) {
      this.#container = new ContainerClient(settings.auth.url, new AnonymousCredential(), pipeline);
    } else {
      this.#container = new BlobServiceClient(settings.auth.url, new AnonymousCredential(), pipeline).getContainerClient(settings.container);
    }
  }

  async upload(job: UploadJob, signal: AbortSignal): Promise<UploadResult> {
    const blob = this.#container.getBlockBlobClient(job.objectName);
    const url = withoutQuery(blob.url);
    const key = keyHash(job.key);
    try {
      if (job.size === 0) {
        const md5 = createHash('md5').digest('base64');
        await blob.upload(Buffer.alloc(0), 0, { blobHTTPHeaders: this.#headers(job, md5), metadata: { ...job.metadata }, abortSignal: signal });
        await this.#verify(blob, job, md5, signal);
        return { md5, url, bytesSent: 0, bytesSkipped: 0, unitsSkipped: 0, units: 1 };
      }
      let state: AzureResume;
      const resuming = isAzureResume(job.resume, key);
      if (resuming) {
        state = job.resume as AzureResume;
      } else {
        state = { kind: 'azure-blob', blockSize: this.#options.blockSize, key };
        // Before the first block: a restart must cut the file the same way to find its blocks again.
        await job.saveResume({ ...state });
      }
      const parts = pieces(job.size, state.blockSize);
      const ids = parts.map((_, i) => blockId(key, i));
      let committed: Array<{ name: string; size: number }> = [];
      let uncommitted: Array<{ name: string; size: number }> = [];
      // A first attempt has nothing to find: its block ids are new, and the resume state is saved before any block.
      if (resuming) {
        try {
          const list = await blob.getBlockList('all', { abortSignal: signal });
          committed = list.committedBlocks ?? [];
          uncommitted = list.uncommittedBlocks ?? [];
        } catch (error) {
          // No blob and no staged block yet.
          if (httpStatus(error) !== 404) throw error;
        }
      }
      const alreadyCommitted = committed.length === ids.length && committed.every((b, i) => b.name === ids[i] && b.size === parts[i]![1]);
      const staged = new Set(uncommitted.map((b) => `${b.name}/${b.size}`));
      const todo = parts.map(([offset, length], i) => ({ i, offset, length })).filter((p) => !alreadyCommitted && !staged.has(`${ids[p.i]}/${p.length}`));
      const bytesSkipped = job.size - todo.reduce((sum, p) => sum + p.length, 0);
      let done = bytesSkipped;
      const handle = await openSegment(job.path, job.size);
      // The whole file's MD5 (stored as Content-MD5, and checked) on a worker thread, while the blocks go.
      const whole = md5OfFile(job.path);
      whole.catch(() => undefined);
      try {
        await inParallel(todo, this.#options.concurrency, async ({ i, offset, length }) => {
          const body = await readPiece(handle, job.path, offset, length);
          const md5 = createHash('md5').update(body).digest();
          await blob.stageBlock(ids[i]!, body, length, { transactionalContentMD5: md5, abortSignal: signal });
          done += length;
          job.onProgress(done);
        });
      } finally {
        await handle.close();
      }
      const md5 = await whole;
      // An earlier attempt committed, and its answer (or our journal write) was lost: only the check is left.
      if (!alreadyCommitted) await blob.commitBlockList(ids, { blobHTTPHeaders: this.#headers(job, md5), metadata: { ...job.metadata }, abortSignal: signal });
      await this.#verify(blob, job, md5, signal);
      return { md5, url, bytesSent: job.size - bytesSkipped, bytesSkipped, unitsSkipped: ids.length - todo.length, units: ids.length };
    } catch (error) {
      if (error instanceof SegmentFileError || error instanceof VerificationError || signal.aborted) throw error;
      throw new UploadError(describeError(error), httpStatus(error));
    }
  }

  #headers(job: UploadJob, md5: string) {
    return { blobContentType: job.contentType, blobContentMD5: Buffer.from(md5, 'base64') };
  }

  /** The committed blob has the file's length and MD5. */
  async #verify(blob: BlockBlobClient, job: UploadJob, md5: string, signal: AbortSignal): Promise<void> {
    const props = await blob.getProperties({ abortSignal: signal });
    const stored = props.contentMD5 ? Buffer.from(props.contentMD5).toString('base64') : null;
    if (props.contentLength !== job.size || stored !== md5) {
      throw new VerificationError(`${job.objectName}: stored ${props.contentLength} bytes, MD5 ${stored ?? 'none'}; expected ${job.size} bytes, MD5 ${md5}`);
    }
  }

  close(): void {
    // The SDK keeps no resources that outlive its requests.
  }
}
