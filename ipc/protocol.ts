import type { SignalMessage } from './signalling.js';

/**
 * The one message protocol between the control plane and the media engine child process (fork IPC).
 * Both sides import these types; media never crosses this channel, only commands, state and text.
 *
 * `run` numbers one start of one pipeline: events of an earlier run of the same pipeline are stale.
 */

/** GStreamer element states as names, as they appear in logs and reported properties. */
export type GstStateName = 'void-pending' | 'null' | 'ready' | 'paused' | 'playing';

/** The RTSP server: where it listens and what it serves (expanded launch lines). No mounts: no server. */
export interface RtspConfig {
  readonly port: number;
  readonly address: string;
  readonly mounts: ReadonlyArray<{ readonly path: string; readonly launch: string }>;
}

/** One WebRTC viewer's peer as the engine builds it. */
export interface WebRtcPeerSpec {
  readonly peer: string;
  readonly mode: WebRtcMode;
  /** Expanded `webrtc_pipeline` (per-viewer mode). */
  readonly launch: string | null;
  readonly stunServer: string | null;
  /** turn(s)://user:password@host:port */
  readonly turnServers: readonly string[];
  /** WHEP: the viewer's offer, to answer (null: the module offers, as the original). */
  readonly offer: string | null;
}

export type { SignalMessage } from './signalling.js';

/**
 * `per-viewer`: the twin's `webrtc_pipeline` is parsed for each viewer (one encode each, as the original does).
 * `shared`: each viewer reads the main pipeline's `video` samples from the sample hub, so viewers cost one encode.
 */
export type WebRtcMode = 'per-viewer' | 'shared';

/**
 * Where a viewer's peer is in the engine. `failed` has already released the pipeline (its reason goes with it);
 * `closed` is last and comes once, after the pipeline's NULL, also after `failed`.
 */
export type WebRtcPeerState = 'connecting' | 'negotiating' | 'connected' | 'failed' | 'closed';

/** Counters the engine sends every second (metrics, status). */
export interface EngineStats {
  /** Per sample-hub stream (named appsink): buffers and bytes so far, caps as text. */
  readonly streams: Record<string, { buffers: number; bytes: number; caps: string | null }>;
  /** Per RTSP mount path: sessions playing, and RTP bytes sent to them so far. */
  readonly rtsp: Record<string, { viewers: number; bytesSent: number }>;
  /** WebRTC peers alive in the engine. */
  readonly webrtcPeers: number;
}

/** Control plane -> engine. */
export type EngineCommand =
  | { type: 'validate'; id: number; launch: string }
  | { type: 'start'; pipeline: string; run: number; launch: string }
  | { type: 'stop'; pipeline: string; run: number; graceful: boolean; timeoutMs: number }
  | { type: 'rtsp'; config: RtspConfig }
  | { type: 'webrtc-open'; spec: WebRtcPeerSpec }
  | { type: 'webrtc-signal'; peer: string; signal: SignalMessage }
  | { type: 'webrtc-close'; peer: string }
  | { type: 'shutdown'; timeoutMs: number }
  /** Are you there? Answered with `pong` at once (the hang watchdog asks when the engine has been silent). */
  | { type: 'ping' };

/** Engine -> control plane. */
export type EngineEvent =
  | { type: 'ready'; pid: number; gstVersion: string }
  | { type: 'reply'; id: number; ok: true }
  | { type: 'reply'; id: number; ok: false; error: string }
  | { type: 'state'; pipeline: string; run: number; state: GstStateName }
  | { type: 'error'; pipeline: string; run: number; message: string; source: string; debug: string | null }
  | { type: 'warning'; pipeline: string; run: number; message: string; source: string }
  | { type: 'eos'; pipeline: string; run: number }
  | { type: 'stopped'; pipeline: string; run: number; eos: boolean }
  | { type: 'rtsp'; port: number | null; mounts: string[]; error: string | null }
  | { type: 'stats'; stats: EngineStats }
  | { type: 'webrtc-signal'; peer: string; signal: SignalMessage }
  | { type: 'webrtc-state'; peer: string; state: WebRtcPeerState; reason: string | null }
  | { type: 'pong' }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; pipeline?: string };

/** Type guard for messages arriving on the IPC channel (the other side is our own code, but a bug there must not crash this side). */
export function isEngineEvent(value: unknown): value is EngineEvent {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

export function isEngineCommand(value: unknown): value is EngineCommand {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}
