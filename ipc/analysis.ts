/**
 * Messages of video analysis, on two channels:
 * 1. control plane <-> media engine: part of ipc/protocol.ts's unions (the `analysis` command, the `analysis-tap` and
 *    `analysis-decoder` events), named here for the analysis code: the engine builds one analysis tap per analyzer
 *    and says on which loopback port its frames can be read;
 * 2. control plane <-> analyzer worker process (its own fork IPC channel): set-up, the frame socket, results.
 * Frames never cross either channel: they go from GStreamer (`gdppay ! tcpserversink`) to the worker's socket.
 */
import type { Detection, FrameResult } from '../analysis/types.js';
import type { EngineCommand, EngineEvent } from './protocol.js';

export type { AnalysisSource, AnalysisTapSpec, DecoderChoice } from './protocol.js';

/** Where the engine's frame sockets listen: loopback only, frames are for local analyzer processes. */
export const FRAME_HOST = '127.0.0.1';

/** The engine's side of analysis: the `analysis` command and the `analysis-tap` / `analysis-decoder` events. */
export type AnalysisEngineCommand = Extract<EngineCommand, { type: 'analysis' }>;
export type AnalysisEngineEvent = Extract<EngineEvent, { type: 'analysis-tap' | 'analysis-decoder' }>;

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
