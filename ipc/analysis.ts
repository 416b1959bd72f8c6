/**
 * Messages of video analysis, on two channels:
 * 1. control plane <-> media engine (to merge into ipc/protocol.ts's EngineCommand / EngineEvent unions): the engine
 *    builds one analysis tap per analyzer and says on which loopback port its frames can be read;
 * 2. control plane <-> analyzer worker process (its own fork IPC channel): set-up, the frame socket, results.
 * Frames never cross either channel: they go from GStreamer (`gdppay ! tcpserversink`) to the worker's socket.
 */
import type { Detection, FrameResult } from '../analysis/types.js';

/** Where the engine's frame sockets listen: loopback only, frames are for local analyzer processes. */
export const FRAME_HOST = '127.0.0.1';

/** Decoder preference for `decodebin` in the engine (twin key `decoder`). */
export type DecoderChoice = 'auto' | 'software' | 'nvcodec' | 'vaapi' | 'v4l2';

/** Where an analyzer's frames come from: a named `inference` element of a pipeline, or a sample-hub stream. */
export type AnalysisSource = { readonly kind: 'element'; readonly element: string } | { readonly kind: 'stream'; readonly stream: string };

/** What the engine needs to build one analyzer's tap (from the parsed twin; see config/analysis.ts). */
export interface AnalysisTapSpec {
  readonly analyzer: string;
  readonly source: AnalysisSource;
  /** Frames per second to hand on (videorate drops the rest after decoding). */
  readonly fps: number;
  /** Frames fit in size x size (aspect kept), RGB. */
  readonly inputSize: number;
  /** Decode key frames only (cheapest; the rate is then at most the camera's key-frame rate). */
  readonly keyFramesOnly: boolean;
}

/** Control plane -> engine (add to EngineCommand). `analysis` replaces the whole set; an empty list removes all. */
export type AnalysisEngineCommand = { type: 'analysis'; taps: readonly AnalysisTapSpec[]; decoder: DecoderChoice };

/** Engine -> control plane (add to EngineEvent). */
export type AnalysisEngineEvent =
  /**
   * A tap's frame socket: `port` on 127.0.0.1 (null: the tap is down, e.g. restarting). `decoder` is the factory
   * decodebin picked (null: raw input, or not decided yet).
   */
  | { type: 'analysis-tap'; analyzer: string; port: number | null; decoder: string | null; error: string | null }
  /** Decoder ranks applied for the `decoder` setting: factories changed, and the ones asked for but missing. */
  | { type: 'analysis-decoder'; choice: DecoderChoice; raised: string[]; lowered: string[]; missing: string[] };

/** One analyzer as its worker process runs it. */
export interface AnalyzerWorkerSpec {
  readonly name: string;
  /** The source's name, reported as `camera` in results. */
  readonly camera: string;
  /** Built-in model (`coco`) or null when `module` is a user's plugin. */
  readonly model: 'coco' | null;
  /** Absolute path of an ES module whose default export is an AnalyzerFactory. */
  readonly module: string | null;
  readonly inputSize: number;
  readonly runtime: 'auto' | 'onnxruntime' | 'tfjs-wasm';
  readonly threads: number;
  readonly threshold: number;
  readonly classes: readonly string[] | null;
  readonly options: Readonly<Record<string, unknown>>;
}

/** Control plane -> worker. */
export type AnalyzerCommand =
  | { type: 'init'; spec: AnalyzerWorkerSpec }
  /** Where to read frames (null: nowhere for now). */
  | { type: 'source'; host: string; port: number | null }
  | { type: 'shutdown' };

/** Counters a worker sends every second (also its heartbeat). */
export interface AnalyzerWorkerStats {
  readonly received: number;
  readonly analyzed: number;
  /** Frames replaced by newer ones while the analyzer was busy. */
  readonly dropped: number;
  readonly connected: boolean;
  /** How long the current `analyze` call has been running, ms (0: idle). A stuck model shows here. */
  readonly busyMs: number;
}

/** Worker -> control plane. */
export type AnalyzerReport =
  | { type: 'ready'; pid: number; runtime: string; loadMs: number }
  | { type: 'result'; result: FrameResult }
  | { type: 'stats'; stats: AnalyzerWorkerStats }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string };

export function isAnalyzerReport(value: unknown): value is AnalyzerReport {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

export function isAnalyzerCommand(value: unknown): value is AnalyzerCommand {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

export type { Detection, FrameResult };
