import type { TargetSettings, UploadSettings } from './settings.js';
import type { UploadTarget } from './target.js';

/**
 * Creates the upload target for one `record.targets[]` entry. The SDKs are loaded here, on first use, so a module
 * that does not record never pays their start-up cost.
 *
 * @example
 * const targets = await Promise.all(settings.targets.map((t) => createTarget(t, settings.upload)));
 */
export async function createTarget(settings: TargetSettings, upload: UploadSettings): Promise<UploadTarget> {
  const options = { blockSize: upload.blockSize, concurrency: upload.concurrency, requestTimeoutMs: upload.requestTimeoutMs };
  if (settings.type === 'azure-blob') {
    const { AzureBlobTarget } = await import('./AzureBlobTarget.js');
    return new AzureBlobTarget(settings, options);
  }
  const { S3Target } = await import('./S3Target.js');
  return new S3Target(settings, options);
}
