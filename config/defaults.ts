/**
 * Every default of the desired document, in one place: the twin's JSON Schema (schema/desired.schema.json)
 * states the same values for editors, and a unit test keeps the two equal.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EosPolicy, RestartPolicy } from './desired.js';

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
 * How to show a listening address in a URL to copy: a wildcard address is reached as localhost.
 *
 * @example
 * displayHost('0.0.0.0') // 'localhost'
 */
export function displayHost(address: string): string {
  return address === ANY_ADDRESS || address === '::' ? 'localhost' : address;
}
