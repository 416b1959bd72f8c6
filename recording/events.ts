import type { DiskAlarm } from './budget.js';

/** A segment as events and status show it (no local path: the file name is enough, and paths are host details). */
export interface SegmentInfo {
  readonly id: string;
  readonly camera: string;
  readonly stream: string;
  /** UTC start, ISO 8601. */
  readonly start: string;
  readonly durationMs: number;
  readonly size: number;
  readonly file: string;
  readonly objectName: string;
}

/**
 * The body of the IoT Hub output message for one segment uploaded to one target: routes can forward it upstream
 * (a video index, an alert with a clip link). The URL never carries a SAS token or other query string.
 */
export interface SegmentUploadedEvent {
  readonly type: 'recording-uploaded';
  readonly camera: string;
  readonly stream: string;
  readonly target: string;
  readonly targetType: 'azure-blob' | 's3';
  readonly url: string;
  readonly objectName: string;
  readonly start: string;
  readonly durationMs: number;
  readonly size: number;
  /** MD5 of the file, base64 (as Azure's Content-MD5). */
  readonly md5: string;
  /** Milliseconds from the segment's end (its close) to the verified upload. */
  readonly delayMs: number;
}

/** What the queue tells its observers (metrics, IoT Hub events, status, logs). */
export type RecordingObserverEvents = {
  /** A segment is on disk and in the durable queue. */
  queued: [SegmentInfo & { source: 'recorder' | 'folder' | 'recovered' }];
  /** An upload of one segment to one target begins; `resumed` when an earlier attempt left progress. */
  'upload-started': [{ segment: SegmentInfo; target: string; resumed: boolean }];
  /** Bytes of a segment (by id) the server has confirmed, as blocks or parts complete. */
  'upload-progress': [{ segment: string; target: string; bytesDone: number; size: number }];
  /** One verified upload's transfer: what was sent, what an earlier attempt had already put there. */
  'upload-done': [{ segment: string; target: string; bytesSent: number; bytesSkipped: number; unitsSkipped: number; units: number; ms: number }];
  /** Verified on one target. */
  uploaded: [SegmentUploadedEvent];
  /** A try failed; the next one is in `delayMs`. */
  'upload-retry': [{ target: string; attempt: number; delayMs: number; error: string }];
  /** A segment that can never be uploaded (its file vanished or changed). */
  failed: [{ segment: SegmentInfo; target: string | null; error: string }];
  /** A segment not uploaded was deleted to keep the disk budget: lost, said out loud. */
  dropped: [{ segment: SegmentInfo; reason: 'disk-budget' | 'max-age' }];
  /** A local file whose segment is safe elsewhere (or has no target) was deleted. */
  'local-deleted': [{ segment: SegmentInfo; reason: 'uploaded' | 'disk-budget' | 'max-age' }];
  /** The disk alarm was raised or changed (always before any `dropped`). */
  alarm: [DiskAlarm];
  'alarm-cleared': [];
  /** Something worth a log line that is not one of the above (recovery of a crash remnant, a bad journal file). */
  log: [{ level: 'info' | 'warn' | 'error'; msg: string }];
};
