/** The recording subsystem's public API (control plane side; the engine side is media/Recorder.ts). */
export { parseRecordSettings, DEFAULT_OBJECT_NAME, DEFAULT_FOLDER_OBJECT_NAME } from './settings.js';
export type {
  RecordSettings,
  ParsedRecordSettings,
  RecordStreamSettings,
  WatchedFolderSettings,
  LocalSettings,
  UploadSettings,
  TargetSettings,
  AzureBlobTargetSettings,
  S3TargetSettings,
  WhenFull,
} from './settings.js';
export { Recordings, type RecordingsOptions, type RecordingsStatus } from './Recordings.js';
export { SegmentQueue, type ClosedSegment, type SegmentEntry, type SegmentQueueOptions, type RecordingStats, type RecordingStatus, type TargetStatus } from './SegmentQueue.js';
export type { RecordingObserverEvents, SegmentInfo, SegmentUploadedEvent } from './events.js';
export type { DiskAlarm } from './budget.js';
export { planBudget } from './budget.js';
export { queryRecordings, parseRecordingsQuery, type RecordingsQuery, type RecordingsAnswer, type RecordingItem } from './recordingsQuery.js';
export { RecordingMetrics } from './metrics.js';
export { FolderWatcher } from './FolderWatcher.js';
export { createTarget } from './targets.js';
export type { UploadTarget, UploadJob, UploadResult } from './target.js';
export { UploadError, VerificationError, SegmentFileError, ClosedError } from './errors.js';
export { parseObjectNameTemplate, renderObjectName, TEMPLATE_FIELDS } from './template.js';
