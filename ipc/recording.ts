/**
 * Recording messages between the control plane and the media engine, to be joined into {@link EngineCommand} and
 * {@link EngineEvent} in ipc/protocol.ts (`| RecordCommand` and `| RecordEvent`). Media never crosses: the engine
 * writes segment files, the control plane queues and uploads them.
 */

/** One recorder the engine runs: a hub stream into MP4 segments. */
export interface RecorderSpec {
  /** Unique per engine; the stream's name is a good one. */
  readonly name: string;
  /** Sample hub stream with H.264 or H.265 (a main pipeline's `appsink name=video`). */
  readonly stream: string;
  /** Hub stream muxed into the same segments when it exists (AAC or Opus); null: video only. */
  readonly audio: string | null;
  /** Folder the segments are written into (the queue's recordings folder). */
  readonly dir: string;
  readonly segmentMs: number;
  readonly fragmentMs: number;
}

/** A segment file the recorder finished (closed by splitmuxsink, renamed from `.part`). */
export interface RecordedSegment {
  readonly recorder: string;
  readonly stream: string;
  readonly path: string;
  /** UTC start, ms since 1970 (the pipeline clock's running time of its first buffer, mapped to the wall clock). */
  readonly startMs: number;
  readonly durationMs: number;
  readonly size: number;
  /** An audio track is in the file. */
  readonly audio: boolean;
}

export type RecorderStateName = 'waiting' | 'recording' | 'stopping' | 'stopped' | 'failed';

/** Control plane -> engine. */
export type RecordCommand =
  /** The full set of recorders to run: new ones start, missing or changed ones stop gracefully (their segment is finished). */
  { type: 'record-configure'; recorders: readonly RecorderSpec[] };

/** Engine -> control plane. */
export type RecordEvent =
  /** A segment file was opened (`.part`): not a crash remnant while this engine lives. */
  | { type: 'record-segment-opened'; recorder: string; stream: string; path: string; startMs: number }
  /** A segment is finished: queue it. */
  | { type: 'record-segment'; segment: RecordedSegment }
  | { type: 'record-state'; recorder: string; state: RecorderStateName; error: string | null };
