/**
 * The desired document, read into a {@link DesiredConfig}: the shape is the schema's (config/schema.ts), the
 * defaults are config/defaults.ts', and the rules that JSON Schema cannot state are here. Expanding it into
 * what runs is config/resolve.ts' ({@link resolveDesired}, re-exported here with its types).
 */
import { ConfigError } from './errors.js';
import type { RtspConfig, WebRtcMode } from '../ipc/protocol.js';
import { parseOriginPolicy, type OriginPolicy } from '../auth/origin.js';
import type { AuthSettings } from '../auth/settings.js';
import type { TlsSettings } from '../certs/settings.js';
import {
  DEFAULT_HTTP,
  DEFAULT_HTTP_SERVER,
  DEFAULT_METRICS,
  DEFAULT_ON_EOS,
  DEFAULT_RESTART_POLICY,
  DEFAULT_RTSP,
  DEFAULT_WEBRTC,
} from './defaults.js';
import { checkDocumentBounds, unknownKeys, validateDesired } from './schema.js';
import { parseAnalysisSettings, type AnalysisSettings } from './analysis.js';
import type { RecordSettings } from '../recording/settings.js';

import type { EosPolicy, RestartPolicy } from './defaults.js';

export type { EosPolicy, RestartPolicy };

/** One pipeline as the twin describes it, before environment expansion. */
export interface PipelineSpec {
  /** `main` for the seed's `pipeline` key; the key under `pipelines` otherwise. */
  readonly name: string;
  /** The text as written in the twin, with `$VAR`s: the only form that is ever shown. */
  readonly template: string;
  readonly onEos: EosPolicy;
}

/** RTSP server settings (twin key `rtsp`, all optional) with the seed's `rtsp_pipeline` as mount `/player`. */
export interface RtspSettings {
  readonly port: number;
  readonly address: string;
  /** The RTSPS port, served while TLS is on; null: no RTSPS. */
  readonly tlsPort: number | null;
  /** Mount path -> launch template. */
  readonly mounts: ReadonlyArray<{ readonly path: string; readonly template: string }>;
}

/** The seed's mount for `rtsp_pipeline`. */
export const PLAYER_MOUNT = '/player';

/** The web server (seed key `http_server` turns it off; twin key `http` sets it up). */
export interface HttpSettings {
  readonly enabled: boolean;
  readonly port: number;
  readonly address: string;
  /** The folder served at /media (what hlssink2/dashsink/splitmuxsink write to). */
  readonly mediaRoot: string;
}

/** The Prometheus endpoint on its own port (IoT Edge convention 9600; twin key `metrics`, `port: null` turns it off). */
export interface MetricsSettings {
  readonly port: number | null;
  readonly address: string;
}

/** WebRTC playback (twin key `webrtc`, all optional). */
export interface WebRtcSettings {
  /** null: per-viewer when `webrtc_pipeline` is set, shared when the main pipeline has `appsink name=video`. */
  readonly mode: WebRtcMode | null;
  readonly maxPeers: number;
  /** Viewers one client address may hold. */
  readonly maxPeersPerAddress: number;
  /** New viewers admitted per second overall. */
  readonly newPeersPerSecond: number;
  readonly negotiationTimeoutMs: number;
  readonly stunServer: string | null;
  /** Templates: `turn://user:$TURN_PASSWORD@host:3478`. */
  readonly turnServers: readonly string[];
  /** The address viewers reach the module at (NAT, containers): replaces host candidates' addresses. */
  readonly advertisedHost: string | null;
}

/** WebRTC as the gateway and the engine use it: mode decided, templates expanded. */
export interface ResolvedWebRtc extends Omit<WebRtcSettings, 'mode'> {
  /** null: WebRTC is off (no webrtc_pipeline and no video appsink to share). */
  readonly mode: WebRtcMode | null;
  readonly launch: string | null;
}

/** A desired document, checked for shape. */
export interface DesiredConfig {
  /** The twin's `$version`, when it has one. */
  readonly version: number | null;
  readonly pipelines: readonly PipelineSpec[];
  /** Seed key `rtsp_pipeline` (served by the RTSP server; validated here). */
  readonly rtspPipeline: string | null;
  /** Seed key `webrtc_pipeline` (one per WebRTC viewer; validated here). */
  readonly webrtcPipeline: string | null;
  /** Seed key `http_server` (default true). */
  readonly httpServer: boolean;
  readonly restartPolicy: RestartPolicy;
  readonly rtsp: RtspSettings;
  readonly http: HttpSettings;
  readonly metrics: MetricsSettings;
  readonly webrtc: WebRtcSettings;
  /** Twin keys `analyzers` and `decoder` (config/analysis.ts): no analyzers and `auto` when absent. */
  readonly analysis: AnalysisSettings;
  /** Twin key `record` as the schema let it through: expanded and checked by resolveDesired (recording/settings.ts). */
  readonly record: unknown;
  /** `http.allowed_origins`: which browser origins may use /ws and WHEP (applied live, no server restart). */
  readonly origins: OriginPolicy;
  /** The twin's `auth` and `tls` values as written (`$VAR`s unexpanded): read with the environment by resolveDesired. */
  readonly authTemplate: unknown;
  readonly tlsTemplate: unknown;
  /** Keys this version does not know (`pipline`, `rtsp.prot`): reported, not fatal, so a newer twin still runs. */
  readonly unknownKeys: readonly string[];
}

/** A pipeline ready to run: expanded text plus what may be shown of it. */
export interface ResolvedPipeline extends PipelineSpec {
  /** Expanded text: given to GStreamer and nowhere else. */
  readonly launch: string;
}

/** A desired document with every pipeline expanded. */
export interface ResolvedConfig extends Omit<DesiredConfig, 'pipelines' | 'record'> {
  readonly pipelines: readonly ResolvedPipeline[];
  /** Users and rights (null: no `auth` key, the module is open). */
  readonly auth: AuthSettings | null;
  /** Where the server certificate comes from (null: TLS off). */
  readonly tls: TlsSettings | null;
  /** Things that work but should not be so (a password written in the twin), for the log and the status. */
  readonly warnings: readonly string[];
  /** What the engine's RTSP server gets: expanded launch per mount. */
  readonly rtspServer: RtspConfig;
  readonly webrtcResolved: ResolvedWebRtc;
  /** Expanded `rtsp_pipeline` / `webrtc_pipeline`, validated with the rest. */
  readonly extraLaunches: ReadonlyArray<{ readonly name: string; readonly launch: string }>;
  /** Every value that came from the environment, for the redactor. */
  readonly secrets: ReadonlyMap<string, string>;
  /** Recording (twin key `record`), expanded and checked; null: off. Its secrets are in `secrets`. */
  readonly recording: RecordSettings | null;
  /** Unknown settings inside `record` the schema's walk cannot see (list entries): reported as warnings. */
  readonly recordWarnings: readonly string[];
}

export const MAIN_PIPELINE = 'main';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The desired object of a document, or why there is none. Looks two keys deep, no further. */
function unwrap(document: unknown): Record<string, unknown> | string {
  if (!isObject(document)) return 'twin document must be a JSON object';
  if (isObject(document.properties)) {
    const desired = document.properties.desired;
    return isObject(desired) ? desired : 'properties.desired must be an object';
  }
  if (isObject(document.desired)) return document.desired;
  return document;
}

/**
 * Takes a twin file's content or a desired document and returns the desired object: accepts
 * `{"properties":{"desired":{...}}}` as in the seed's examples, `{"desired":{...}}`, or the desired object itself.
 *
 * @example
 * desiredOf({ properties: { desired: { pipeline: 'videotestsrc ! fakesink' } } }) // { pipeline: 'videotestsrc ! fakesink' }
 */
export function desiredOf(document: unknown): Record<string, unknown> {
  const desired = unwrap(document);
  if (typeof desired === 'string') throw new ConfigError(desired);
  return desired;
}

/**
 * The `$version` of a document's desired object (after the unwrapping {@link desiredOf} does), or null: for a
 * document that is refused too, so the refusal names its version. Never throws, never walks the document.
 *
 * @example
 * versionOf({ properties: { desired: { $version: 7 } } }) // 7
 */
export function versionOf(document: unknown): number | null {
  const desired = unwrap(document);
  return typeof desired !== 'string' && typeof desired.$version === 'number' ? desired.$version : null;
}

/** A string the schema let through: blank means absent (null). */
function launchText(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value : null;
}

function section(value: unknown): Record<string, unknown> {
  return isObject(value) ? value : {};
}

/** Checks the shape of a desired document (no environment, no GStreamer). */
export function parseDesired(document: unknown): DesiredConfig {
  checkDocumentBounds(document);
  const desired = desiredOf(document);
  validateDesired(desired);

  const pipelines: PipelineSpec[] = [];
  const main = launchText(desired.pipeline);
  const onEos = (value: unknown): EosPolicy => (value as EosPolicy | null | undefined) ?? DEFAULT_ON_EOS;
  if (main !== null) pipelines.push({ name: MAIN_PIPELINE, template: main, onEos: onEos(desired.on_eos) });
  for (const [name, value] of Object.entries(section(desired.pipelines))) {
    const template = launchText(isObject(value) ? value.pipeline : value); // null deletes (a twin patch)
    if (template !== null) pipelines.push({ name, template, onEos: onEos(isObject(value) ? value.on_eos : null) });
  }

  const rtspPipeline = launchText(desired.rtsp_pipeline);
  const httpServer = (desired.http_server as boolean | null | undefined) ?? DEFAULT_HTTP_SERVER;
  return {
    version: typeof desired.$version === 'number' ? desired.$version : null,
    pipelines,
    rtspPipeline,
    webrtcPipeline: launchText(desired.webrtc_pipeline),
    httpServer,
    restartPolicy: restartPolicyOf(section(desired.restart_policy)),
    rtsp: rtspSettingsOf(section(desired.rtsp), rtspPipeline),
    http: httpSettingsOf(section(desired.http), httpServer),
    metrics: metricsSettingsOf(section(desired.metrics)),
    webrtc: webrtcSettingsOf(section(desired.webrtc)),
    analysis: parseAnalysisSettings(desired),
    record: desired.record,
    origins: parseOriginPolicy(section(desired.http).allowed_origins, 'http.allowed_origins'),
    authTemplate: desired.auth ?? null,
    tlsTemplate: desired.tls ?? null,
    unknownKeys: unknownKeys(desired),
  };
}

/** A number or string the schema let through, or the default for null and absent. */
function or<T>(value: unknown, fallback: T): T {
  return (value as T | null | undefined) ?? fallback;
}

function restartPolicyOf(settings: Record<string, unknown>): RestartPolicy {
  const policy: RestartPolicy = {
    initialDelayMs: or(settings.initial_delay_ms, DEFAULT_RESTART_POLICY.initialDelayMs),
    maxDelayMs: or(settings.max_delay_ms, DEFAULT_RESTART_POLICY.maxDelayMs),
    startTimeoutMs: or(settings.start_timeout_ms, DEFAULT_RESTART_POLICY.startTimeoutMs),
    stopTimeoutMs: or(settings.stop_timeout_ms, DEFAULT_RESTART_POLICY.stopTimeoutMs),
    stableAfterMs: or(settings.stable_after_ms, DEFAULT_RESTART_POLICY.stableAfterMs),
  };
  if (policy.maxDelayMs < policy.initialDelayMs) {
    throw new ConfigError(`restart_policy.max_delay_ms must not be below initial_delay_ms, got ${policy.maxDelayMs} < ${policy.initialDelayMs}`);
  }
  return policy;
}

function rtspSettingsOf(settings: Record<string, unknown>, rtspPipeline: string | null): RtspSettings {
  const mounts: Array<{ path: string; template: string }> = [];
  if (rtspPipeline) mounts.push({ path: PLAYER_MOUNT, template: rtspPipeline });
  for (const [name, launch] of Object.entries(section(settings.mounts))) {
    if (typeof launch !== 'string') continue; // null deletes
    if (`/${name}` === PLAYER_MOUNT && rtspPipeline) throw new ConfigError('rtsp.mounts.player: /player is rtsp_pipeline already');
    mounts.push({ path: `/${name}`, template: launch });
  }
  // null turns RTSPS off; absent is the default.
  const tlsPort = settings.tls_port === undefined ? DEFAULT_RTSP.tlsPort : (settings.tls_port as number | null);
  return { port: or(settings.port, DEFAULT_RTSP.port), address: or(settings.address, DEFAULT_RTSP.address), tlsPort, mounts };
}

function httpSettingsOf(settings: Record<string, unknown>, enabled: boolean): HttpSettings {
  return {
    enabled,
    port: or(settings.port, DEFAULT_HTTP.port),
    address: or(settings.address, DEFAULT_HTTP.address),
    // Absolute, or starting with a variable ($MEDIA_ROOT): checked again once expanded.
    mediaRoot: or(settings.media_root, DEFAULT_HTTP.mediaRoot),
  };
}

function metricsSettingsOf(settings: Record<string, unknown>): MetricsSettings {
  // null turns the port off; absent is the default.
  return { port: settings.port === undefined ? DEFAULT_METRICS.port : (settings.port as number | null), address: or(settings.address, DEFAULT_METRICS.address) };
}

function webrtcSettingsOf(settings: Record<string, unknown>): WebRtcSettings {
  return {
    mode: or<WebRtcMode | null>(settings.mode, null),
    maxPeers: or(settings.max_peers, DEFAULT_WEBRTC.maxPeers),
    maxPeersPerAddress: or(settings.max_peers_per_address, DEFAULT_WEBRTC.maxPeersPerAddress),
    newPeersPerSecond: or(settings.new_peers_per_second, DEFAULT_WEBRTC.newPeersPerSecond),
    negotiationTimeoutMs: or(settings.negotiation_timeout_ms, DEFAULT_WEBRTC.negotiationTimeoutMs),
    stunServer: or<string | null>(settings.stun_server, null),
    turnServers: or(settings.turn_servers, DEFAULT_WEBRTC.turnServers),
    advertisedHost: or<string | null>(settings.advertised_host, null),
  };
}
