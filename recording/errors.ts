/** Errors of the recording subsystem. Messages never hold secrets: they are built from names, not values. */

/**
 * An upload that failed for a reason that may pass (network down, server busy, credentials being rotated):
 * the queue keeps the segment and tries again with backoff.
 */
export class UploadError extends Error {
  override readonly name = 'UploadError';
  constructor(
    message: string,
    /** HTTP status when the server answered, null when it was not reached. */
    readonly status: number | null = null,
  ) {
    super(message);
  }
}

/**
 * The stored object does not match the local file (length or checksum). The queue forgets the upload's
 * progress and uploads the segment again from the start; the local file is kept.
 */
export class VerificationError extends Error {
  override readonly name = 'VerificationError';
}

/** The local file is gone or changed since it was queued: it can never be uploaded as recorded. */
export class SegmentFileError extends Error {
  override readonly name = 'SegmentFileError';
}

/** A call on a queue (or recorder) that was closed. */
export class ClosedError extends Error {
  override readonly name = 'ClosedError';
}
