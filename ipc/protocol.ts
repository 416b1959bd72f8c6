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
  /** Who may watch which mount (null: open, no RTSPAuth at all, as before auth existed). */
  readonly auth: RtspAuthSpec | null;
  /** The RTSPS server beside the plain one (null: none). */
  readonly tls: RtspTlsSpec | null;
}

/** One user the RTSP server knows. Only users with a password: Basic and Digest both need it. */
export interface RtspUserSpec {
  readonly name: string;
  /** The expanded password (never logged; the engine hands it to GstRTSPAuth and forgets it). */
  readonly password: string;
  /** Mount paths (`/player`) this user may watch, or `*` for every mount. */
  readonly mounts: '*' | readonly string[];
}

/** RTSP authentication: users, what anyone may watch, and how credentials may be sent. */
export interface RtspAuthSpec {
  /** `WWW-Authenticate` realm (Digest hashes include it, so it must stay stable while clients are connected). */
  readonly realm: string;
  readonly users: readonly RtspUserSpec[];
  /** Mount paths anyone may watch without credentials, or `*`. */
  readonly anonymousMounts: '*' | readonly string[];
  /**
   * `auth.require_tls`: the plain server takes no credentials at all. Protected mounts answer 401 without a
   * challenge there, so no client is asked to send a password in clear.
   */
  readonly requireTls: boolean;
}

/** The RTSPS server: a second RTSPServer instance on its own port (TLS takes over the whole port). */
export interface RtspTlsSpec {
  readonly port: number;
  readonly address: string;
  /** PEM: the certificate and its chain, leaf first. */
  readonly certificatePem: string;
  /** PEM private key of the leaf certificate (checked to match before it is sent). */
  readonly privateKeyPem: string;
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
 * Where a viewer's peer is in the engine. `disconnected`: ICE lost the viewer (it may come back; the control plane
 * bounds how long it may stay so). `failed` has already released the pipeline (its reason goes with it);
 * `closed` is last and comes once, after the pipeline's NULL, also after `failed`.
 */
export type WebRtcPeerState = 'connecting' | 'negotiating' | 'connected' | 'disconnected' | 'failed' | 'closed';

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

/** One recorder the engine runs: a hub stream into MP4 segments (twin key `record`, see recording/README.md). */
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

/**
 * Recording, control plane -> engine: the full set of recorders to run; new ones start, missing or changed ones
 * stop gracefully (their segment is finished). Sent on every apply that changes it and again to every new engine.
 */
export type RecordCommand = { type: 'record-configure'; recorders: readonly RecorderSpec[] };

/** Recording, engine -> control plane. Media never crosses: the engine writes files, the control plane uploads them. */
export type RecordEvent =
  /** A segment file was opened (`.part`): not a crash remnant while this engine lives. */
  | { type: 'record-segment-opened'; recorder: string; stream: string; path: string; startMs: number }
  /** A segment is finished: queue it. */
  | { type: 'record-segment'; segment: RecordedSegment }
  | { type: 'record-state'; recorder: string; state: RecorderStateName; error: string | null };

/** Counters the engine sends every second (metrics, status). */
export interface EngineStats {
  /** Per sample-hub stream (named appsink): buffers and bytes so far, caps as text. */
  readonly streams: Record<string, { buffers: number; bytes: number; caps: string | null }>;
  /** Per RTSP mount path: sessions playing, and RTP bytes sent to them so far. */
  readonly rtsp: Record<string, { viewers: number; bytesSent: number }>;
  /** WebRTC peers alive in the engine. */
  readonly webrtcPeers: number;
  /** The engine process's memory in bytes (process.memoryUsage()): resident, V8 heap in use, and the memory of C++ objects V8 tracks. */
  readonly memory: { readonly rss: number; readonly heapUsed: number; readonly external: number };
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
  /**
   * Video analysis: the whole set of taps (one per analyzer; an empty list removes all) and the decoder choice.
   * Sent on every apply that changes it and again to every new engine (as `rtsp`).
   */
  | { type: 'analysis'; taps: readonly AnalysisTapSpec[]; decoder: DecoderChoice }
  /** Are you there? Answered with `pong` at once (the hang watchdog asks when the engine has been silent). */
  | { type: 'ping' }
  | RecordCommand;

/** Engine -> control plane. */
export type EngineEvent =
  | { type: 'ready'; pid: number; gstVersion: string }
  | { type: 'reply'; id: number; ok: true }
  | { type: 'reply'; id: number; ok: false; error: string }
  | { type: 'state'; pipeline: string; run: number; state: GstStateName }
  /**
   * `sourceUri`: set when the element that failed is a network source that could not reach its camera (connect,
   * resolve, read): its location, for the control plane to wait for rather than restart blindly.
   */
  | { type: 'error'; pipeline: string; run: number; message: string; source: string; debug: string | null; sourceUri?: string | null }
  | { type: 'warning'; pipeline: string; run: number; message: string; source: string }
  /** `sourceUri`: the pipeline's network source (a camera whose end of stream means it hung up), if it has one. */
  | { type: 'eos'; pipeline: string; run: number; sourceUri?: string | null }
  | { type: 'stopped'; pipeline: string; run: number; eos: boolean }
  /** `tlsPort`: the RTSPS server's bound port (null: none). */
  | { type: 'rtsp'; port: number | null; tlsPort?: number | null; mounts: string[]; error: string | null }
  | { type: 'stats'; stats: EngineStats }
  | { type: 'webrtc-signal'; peer: string; signal: SignalMessage }
  | { type: 'webrtc-state'; peer: string; state: WebRtcPeerState; reason: string | null }
  | { type: 'pong' }
  /**
   * An analyzer's frame socket: `port` on 127.0.0.1 (null: the tap is down, e.g. restarting). `decoder` is the
   * factory decodebin picked (null: raw input, or not decided yet); `error` why the tap failed (it retries).
   */
  | { type: 'analysis-tap'; analyzer: string; port: number | null; decoder: string | null; error: string | null }
  /** Decoder ranks applied for the `decoder` setting: factories changed, and the families asked for but missing. */
  | { type: 'analysis-decoder'; choice: DecoderChoice; raised: string[]; lowered: string[]; missing: string[] }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; pipeline?: string }
  | RecordEvent;

/** A check of one field's value. */
type Check = (value: unknown) => boolean;

const str: Check = (v) => typeof v === 'string';
const num: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const bool: Check = (v) => typeof v === 'boolean';
const nullable = (check: Check): Check => (v) => v === null || check(v);
const optional = (check: Check): Check => (v) => v === undefined || check(v);
const oneOf = (...values: readonly string[]): Check => (v) => typeof v === 'string' && values.includes(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const fields = (spec: Record<string, Check>): Check => (v) => isObject(v) && Object.entries(spec).every(([key, check]) => check(v[key]));
const recordOf = (check: Check): Check => (v) => isObject(v) && Object.values(v).every(check);
const arrayOf = (check: Check): Check => (v) => Array.isArray(v) && v.every(check);

const SIGNAL: Check = (v) =>
  fields({ sdp: fields({ type: oneOf('offer', 'answer'), sdp: str }) })(v) || fields({ ice: fields({ candidate: str, sdpMLineIndex: num }) })(v);
const STATS = fields({
  streams: recordOf(fields({ buffers: num, bytes: num, caps: nullable(str) })),
  rtsp: recordOf(fields({ viewers: num, bytesSent: num })),
  webrtcPeers: num,
  memory: fields({ rss: num, heapUsed: num, external: num }),
});
const RUN = { pipeline: str, run: num };
const DECODER = oneOf('auto', 'software', 'nvcodec', 'vaapi', 'v4l2');
const ANALYSIS_SOURCE: Check = (v) => fields({ kind: oneOf('element'), element: str })(v) || fields({ kind: oneOf('stream'), stream: str })(v);
const TAP_SPEC = fields({ analyzer: str, source: ANALYSIS_SOURCE, fps: num, inputSize: num, keyFramesOnly: bool });
const RECORDER_SPEC = fields({ name: str, stream: str, audio: nullable(str), dir: str, segmentMs: num, fragmentMs: num });
const RECORDED_SEGMENT = fields({ recorder: str, stream: str, path: str, startMs: num, durationMs: num, size: num, audio: bool });
const RECORDER_STATE = oneOf('waiting', 'recording', 'stopping', 'stopped', 'failed');
/** `*` or a list of mount paths. */
const MOUNTS: Check = (v) => v === '*' || arrayOf(str)(v);

/** The fields of every engine event, by type: what {@link isEngineEvent} checks. */
const EVENT_FIELDS: { readonly [T in EngineEvent['type']]: Record<string, Check> } = {
  ready: { pid: num, gstVersion: str },
  reply: { id: num, ok: bool, error: optional(str) },
  state: { ...RUN, state: oneOf('void-pending', 'null', 'ready', 'paused', 'playing') },
  error: { ...RUN, message: str, source: str, debug: nullable(str), sourceUri: optional(nullable(str)) },
  warning: { ...RUN, message: str, source: str },
  eos: { ...RUN, sourceUri: optional(nullable(str)) },
  stopped: { ...RUN, eos: bool },
  rtsp: { port: nullable(num), tlsPort: optional(nullable(num)), mounts: arrayOf(str), error: nullable(str) },
  stats: { stats: STATS },
  'webrtc-signal': { peer: str, signal: SIGNAL },
  'webrtc-state': { peer: str, state: oneOf('connecting', 'negotiating', 'connected', 'disconnected', 'failed', 'closed'), reason: nullable(str) },
  pong: {},
  'analysis-tap': { analyzer: str, port: nullable(num), decoder: nullable(str), error: nullable(str) },
  'analysis-decoder': { choice: DECODER, raised: arrayOf(str), lowered: arrayOf(str), missing: arrayOf(str) },
  log: { level: oneOf('debug', 'info', 'warn', 'error'), msg: str, pipeline: optional(str) },
  'record-segment-opened': { recorder: str, stream: str, path: str, startMs: num },
  'record-segment': { segment: RECORDED_SEGMENT },
  'record-state': { recorder: str, state: RECORDER_STATE, error: nullable(str) },
};

/** The fields of every command, by type: what {@link isEngineCommand} checks. */
const COMMAND_FIELDS: { readonly [T in EngineCommand['type']]: Record<string, Check> } = {
  validate: { id: num, launch: str },
  start: { ...RUN, launch: str },
  stop: { ...RUN, graceful: bool, timeoutMs: num },
  rtsp: {
    config: fields({
      port: num,
      address: str,
      mounts: arrayOf(fields({ path: str, launch: str })),
      auth: nullable(fields({ realm: str, users: arrayOf(fields({ name: str, password: str, mounts: MOUNTS })), anonymousMounts: MOUNTS, requireTls: bool })),
      tls: nullable(fields({ port: num, address: str, certificatePem: str, privateKeyPem: str })),
    }),
  },
  'webrtc-open': {
    spec: fields({
      peer: str,
      mode: oneOf('shared', 'per-viewer'),
      launch: nullable(str),
      stunServer: nullable(str),
      turnServers: arrayOf(str),
      offer: nullable(str),
    }),
  },
  'webrtc-signal': { peer: str, signal: SIGNAL },
  'webrtc-close': { peer: str },
  shutdown: { timeoutMs: num },
  analysis: { taps: arrayOf(TAP_SPEC), decoder: DECODER },
  ping: {},
  'record-configure': { recorders: arrayOf(RECORDER_SPEC) },
};

function matches(value: unknown, table: Readonly<Record<string, Record<string, Check>>>): boolean {
  if (!isObject(value) || typeof value.type !== 'string' || !Object.hasOwn(table, value.type)) return false;
  return fields(table[value.type]!)(value);
}

/**
 * Whether a message from the IPC channel is an {@link EngineEvent}: its type known and every field of that type
 * present with the right kind of value. The other side is our own code, but a bug there (or a plugin writing to
 * the channel) must not throw inside this side's subscribers.
 */
export function isEngineEvent(value: unknown): value is EngineEvent {
  return matches(value, EVENT_FIELDS);
}

/** Whether a message from the IPC channel is an {@link EngineCommand} (see {@link isEngineEvent}). */
export function isEngineCommand(value: unknown): value is EngineCommand {
  return matches(value, COMMAND_FIELDS);
}
