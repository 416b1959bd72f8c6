/**
 * The types an analyzer works with, the built-in CenterNet detector and users' own plugins alike. A plugin is an ES
 * module whose default export is an {@link AnalyzerFactory}; see docs/analyzers.md and examples/analyzers/.
 *
 * @module
 */

/**
 * One video frame as an analyzer gets it: packed RGB, 8 bits a channel, scaled in GStreamer so that it fits
 * `inputSize` x `inputSize` with its aspect ratio kept (a 1280x720 camera at 320 arrives as 320x180).
 */
export interface Frame {
  /** The analyzer's source: the `inference` element's name or the sample-hub stream. */
  readonly camera: string;
  /** Counts frames received by this analyzer process, from 1. */
  readonly sequence: number;
  /** When the frame reached the analyzer process, ms since the epoch (results carry it as their timestamp). */
  readonly receivedAt: number;
  /** The buffer's presentation time in the analysis pipeline, ns (null when GStreamer gave none). */
  readonly pts: bigint | null;
  readonly width: number;
  readonly height: number;
  /** Bytes from one row to the next (GStreamer pads RGB rows to a multiple of 4). */
  readonly stride: number;
  /** `height * stride` bytes, RGB. Valid until the analyzer's promise settles; copy what you keep. */
  readonly data: Uint8Array;
}

/** A box in the frame's own coordinates, normalised to 0..1 (x, y: top left corner). */
export interface NormalizedBox {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** One thing found in a frame. */
export interface Detection {
  /** A class name, e.g. a COCO label such as `person`. */
  readonly class: string;
  /** Confidence 0..1. */
  readonly score: number;
  readonly box: NormalizedBox;
}

/** What an analyzer makes of one frame. */
export interface FrameAnalysis {
  readonly detections: readonly Detection[];
}

/** Settings a factory receives: the twin's analyzer entry, parsed. */
export interface AnalyzerContext {
  /** The analyzer's name (its key under `analyzers`). */
  readonly name: string;
  /** The side of the square the frames fit in (frames are at most this wide and high). */
  readonly inputSize: number;
  /** Detections scoring below this are not reported. */
  readonly threshold: number;
  /** Only these classes are reported (null: all). */
  readonly classes: readonly string[] | null;
  /** The entry's `options` object as written in the twin, for a plugin's own settings. */
  readonly options: Readonly<Record<string, unknown>>;
  /** Writes a line to the module's log. */
  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string): void;
}

/**
 * An analyzer: looks at one frame at a time. `analyze` is never called again before its previous promise
 * settled; frames that arrive meanwhile are dropped but the newest. It runs in its own process, so a throw or a
 * hang costs a restart of that process, never the pipeline.
 */
export interface Analyzer {
  analyze(frame: Frame): Promise<FrameAnalysis>;
  /** Releases models and native resources (optional). */
  close?(): Promise<void> | void;
}

/** What a plugin module exports as default: makes its analyzer once the process starts. */
export type AnalyzerFactory = (context: AnalyzerContext) => Promise<Analyzer> | Analyzer;

/**
 * One analyzed frame's result as the analyzer process reports it (every analyzed frame, detections after the
 * threshold and class filter).
 */
export interface FrameResult {
  readonly analyzer: string;
  readonly camera: string;
  readonly sequence: number;
  /** ISO 8601, when the frame reached the analyzer. */
  readonly timestamp: string;
  readonly width: number;
  readonly height: number;
  /** Time in `analyze`, ms. */
  readonly latencyMs: number;
  readonly detections: readonly Detection[];
}

/**
 * One detection as a message for IoT Hub / Stream Analytics: flat, one per object, so a query needs no
 * `CROSS APPLY` (`SELECT camera, class, COUNT(*) FROM input TIMESTAMP BY timestamp GROUP BY ...`).
 */
export interface DetectionEvent {
  readonly type: 'detection';
  readonly analyzer: string;
  readonly camera: string;
  /** ISO 8601, when the frame reached the analyzer. */
  readonly timestamp: string;
  readonly class: string;
  readonly score: number;
  /** Normalised box, top-left corner and size, 0..1. */
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  /** Events the rate limit dropped since the previous event of this analyzer went out. */
  readonly dropped: number;
}
