/**
 * Every default of the desired document, in one place: the twin's JSON Schema (schema/desired.schema.json)
 * states the same values for editors, and a unit test keeps the two equal.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DecoderChoice } from '../ipc/protocol.js';

/** What to do when a pipeline ends with EOS on its own: a camera that hangs up ends the stream too. */
export type EosPolicy = 'restart' | 'stop';

/** Restart and timing policy for pipelines (twin key `restart_policy`, all optional). */
export interface RestartPolicy {
  /** First delay after a failure; doubles per consecutive failure. */
  readonly initialDelayMs: number;
  /** Cap of the doubling delay. */
  readonly maxDelayMs: number;
  /** A start that has not reached PLAYING after this long counts as failed. */
  readonly startTimeoutMs: number;
  /** Bounded wait for EOS to drain on a graceful stop (muxers finalise files), then NULL anyway. */
  readonly stopTimeoutMs: number;
  /** PLAYING this long resets the doubling delay. */
  readonly stableAfterMs: number;
}

/** All interfaces: the original module's default for every listener. */
export const ANY_ADDRESS = '0.0.0.0';

/** Seed key `http_server`: the web server runs unless it is `false`. */
export const DEFAULT_HTTP_SERVER = true;

/** What a pipeline does at end of stream (`on_eos`): a camera that hangs up ends the stream too. */
export const DEFAULT_ON_EOS: EosPolicy = 'restart';

/**
 * The web server (pages, /media, /ws, WHEP, /api/status, /metrics): the original module's port 8000. The media
 * folder is the module's own (not /tmp, which holds other programs' files and the module's state folder); the
 * schema states it as /tmp/gst-iotedge-media, the value where the OS temporary folder is /tmp.
 */
export const DEFAULT_HTTP = { port: 8000, address: ANY_ADDRESS, mediaRoot: join(tmpdir(), 'gst-iotedge-media') } as const;

/** The RTSP server: port 8554, as the original. */
export const DEFAULT_RTSP = { port: 8554, address: ANY_ADDRESS, tlsPort: 8322 } as const;

/**
 * Users and rights (twin key `auth`; without it the module is open). auth/settings.ts reads the twin with these.
 * `rateLimit` is `auth.rate_limit`, `jwt` the defaults inside `auth.jwt`.
 */
export const DEFAULT_AUTH = {
  requireTls: false,
  realm: 'gst-iotedge',
  rateLimit: { maxFailures: 10, windowS: 60, blockS: 300 },
  jwt: { rightsClaim: 'rights', clockToleranceS: 30, jwksTimeoutMs: 5_000 },
} as const;

/** The server certificate (twin key `tls`); certs/settings.ts reads the twin with these. */
export const DEFAULT_TLS = { source: 'auto', validityDays: 90, subjectAltNames: ['localhost', '127.0.0.1'] as readonly string[] } as const;

/** The metrics-only server: the IoT Edge convention (edgeHub and edgeAgent serve :9600/metrics). */
export const DEFAULT_METRICS = { port: 9600, address: ANY_ADDRESS } as const;

/** WebRTC viewers (twin key `webrtc`). */
export const DEFAULT_WEBRTC = { maxPeers: 10, maxPeersPerAddress: 10, newPeersPerSecond: 20, negotiationTimeoutMs: 15_000, turnServers: [] as readonly string[] } as const;

/** Restarts and timing of pipelines (twin key `restart_policy`). */
export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  startTimeoutMs: 15_000,
  stopTimeoutMs: 5_000,
  stableAfterMs: 10_000,
};

/**
 * One analyzer's settings (twin key `analyzers.<name>`) when the entry leaves them out: the built-in COCO detector
 * at 5 frames a second, letterboxed into 320x320 (CenterNet's fastest size), whichever runtime loads first, one
 * thread (a small device's other core is the pipelines'), detection events as pipeline events: 20 per 10 s.
 */
export const DEFAULT_ANALYZER = {
  model: 'coco',
  fps: 5,
  threshold: 0.5,
  inputSize: 320,
  runtime: 'auto',
  threads: 1,
  keyFramesOnly: false,
  events: { max: 20, windowMs: 10_000 },
} as const;

/** Twin key `decoder`: GStreamer's own decoder ranks. */
export const DEFAULT_DECODER: DecoderChoice = 'auto';

/** The IoT Hub module output detections go to (env `ANALYSIS_OUTPUT`). */
export const DEFAULT_ANALYSIS_OUTPUT = 'inference';

/**
 * Recording (twin key `record`, see recording/README.md) when the key leaves a setting out: the `video` stream with
 * `audio` muxed in when it has AAC or Opus, 60 s segments of 1 s fragments (what a crash loses at most), a 2 GiB
 * local budget whose alarm rises at 90 %, uploads with the pipelines' doubling backoff from 1 s to 60 s in 4 MiB
 * blocks (S3's parts are at least 5 MiB), four at a time, uploaded segments listed by /api/recordings for 7 days.
 */
export const DEFAULT_RECORD = {
  enabled: true,
  streams: ['video'] as readonly string[],
  audio: 'audio',
  segmentSeconds: 60,
  fragmentMs: 1_000,
  objectName: '{camera}/{stream}/{yyyy}/{MM}/{dd}/{start}.mp4',
  local: { maxBytes: 2 * 1024 ** 3, keepUploaded: false, whenFull: 'drop-oldest', alarmAt: 0.9 },
  upload: { initialDelayMs: 1_000, maxDelayMs: 60_000, blockSize: 4 * 1024 ** 2, concurrency: 4, requestTimeoutMs: 120_000, historyDays: 7 },
} as const;

/** One watched folder of `record.folders` (a pipeline's own splitmuxsink or hlssink2 files). */
export const DEFAULT_RECORD_FOLDER = {
  pattern: '*.mp4',
  settleMs: 2_000,
  /** At least `settle_ms`. */
  idleCloseMs: 30_000,
  objectName: '{camera}/{stream}/{yyyy}/{MM}/{dd}/{name}{ext}',
} as const;

/** The IoT Hub module output that a message per uploaded segment goes to (env `RECORDINGS_OUTPUT`). */
export const DEFAULT_RECORDINGS_OUTPUT = 'recordings';

/**
 * How to show a listening address in a URL to copy: a wildcard address is reached as localhost.
 *
 * @example
 * displayHost('0.0.0.0') // 'localhost'
 */
export function displayHost(address: string): string {
  return address === ANY_ADDRESS || address === '::' ? 'localhost' : address;
}
