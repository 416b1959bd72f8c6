import { ConfigError } from './errors.js';
import { expand } from './expand.js';
import { shellQuotesToGst } from './launch.js';
import type { RtspConfig, WebRtcMode } from '../ipc/protocol.js';
import { ANY_ADDRESS, DEFAULT_HTTP, DEFAULT_METRICS, DEFAULT_RESTART_POLICY, DEFAULT_RTSP, DEFAULT_WEBRTC } from './defaults.js';

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
  /** Keys this version does not know: reported, not fatal, so a newer twin still runs. */
  readonly unknownKeys: readonly string[];
}

/** A pipeline ready to run: expanded text plus what may be shown of it. */
export interface ResolvedPipeline extends PipelineSpec {
  /** Expanded text: given to GStreamer and nowhere else. */
  readonly launch: string;
}

/** A desired document with every pipeline expanded. */
export interface ResolvedConfig extends Omit<DesiredConfig, 'pipelines'> {
  readonly pipelines: readonly ResolvedPipeline[];
  /** What the engine's RTSP server gets: expanded launch per mount. */
  readonly rtspServer: RtspConfig;
  readonly webrtcResolved: ResolvedWebRtc;
  /** Expanded `rtsp_pipeline` / `webrtc_pipeline`, validated with the rest. */
  readonly extraLaunches: ReadonlyArray<{ readonly name: string; readonly launch: string }>;
  /** Every value that came from the environment, for the redactor. */
  readonly secrets: ReadonlyMap<string, string>;
}

export const MAIN_PIPELINE = 'main';
const KNOWN_KEYS = new Set([
  'pipeline',
  'rtsp_pipeline',
  'webrtc_pipeline',
  'http_server',
  'pipelines',
  'on_eos',
  'restart_policy',
  'rtsp',
  'http',
  'metrics',
  'webrtc',
]);
const MOUNT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const PIPELINE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Takes a twin file's content or a desired document and returns the desired object: accepts
 * `{"properties":{"desired":{...}}}` as in the seed's examples, `{"desired":{...}}`, or the desired object itself.
 */
export function desiredOf(document: unknown): Record<string, unknown> {
  if (!isObject(document)) throw new ConfigError('twin document must be a JSON object');
  if (isObject(document.properties)) {
    const desired = document.properties.desired;
    if (!isObject(desired)) throw new ConfigError('properties.desired must be an object');
    return desired;
  }
  if (isObject(document.desired)) return document.desired;
  return document;
}

function optionalString(desired: Record<string, unknown>, key: string): string | null {
  const value = desired[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new ConfigError(`${key} must be a string, got ${typeof value}`);
  return value.trim() === '' ? null : value;
}

function eosPolicy(value: unknown, where: string): EosPolicy {
  if (value === undefined || value === null) return 'restart';
  if (value === 'restart' || value === 'stop') return value;
  throw new ConfigError(`${where} must be "restart" or "stop"`);
}

function restartPolicyOf(value: unknown): RestartPolicy {
  if (value === undefined || value === null) return DEFAULT_RESTART_POLICY;
  if (!isObject(value)) throw new ConfigError('restart_policy must be an object');
  const fields: Array<[keyof RestartPolicy, string]> = [
    ['initialDelayMs', 'initial_delay_ms'],
    ['maxDelayMs', 'max_delay_ms'],
    ['startTimeoutMs', 'start_timeout_ms'],
    ['stopTimeoutMs', 'stop_timeout_ms'],
    ['stableAfterMs', 'stable_after_ms'],
  ];
  const policy: Record<string, number> = { ...DEFAULT_RESTART_POLICY };
  for (const [field, key] of fields) {
    const v = value[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 86_400_000) {
      throw new ConfigError(`restart_policy.${key} must be a number of milliseconds between 0 and 86400000`);
    }
    policy[field] = v;
  }
  const result = policy as unknown as RestartPolicy;
  if (result.maxDelayMs < result.initialDelayMs) {
    throw new ConfigError('restart_policy.max_delay_ms must not be below initial_delay_ms');
  }
  return result;
}

function rtspSettingsOf(value: unknown, rtspPipeline: string | null): RtspSettings {
  if (value !== undefined && value !== null && !isObject(value)) throw new ConfigError('rtsp must be an object');
  const settings = (value ?? {}) as Record<string, unknown>;
  const port = portOf(settings.port, DEFAULT_RTSP.port, 'rtsp.port');
  const address = addressOf(settings.address, 'rtsp.address');
  const mounts: Array<{ path: string; template: string }> = [];
  if (rtspPipeline) mounts.push({ path: PLAYER_MOUNT, template: rtspPipeline });
  const extra = settings.mounts;
  if (extra !== undefined && extra !== null) {
    if (!isObject(extra)) throw new ConfigError('rtsp.mounts must be an object of name -> launch line');
    for (const [name, launch] of Object.entries(extra)) {
      if (launch === null) continue;
      if (!MOUNT_NAME.test(name)) throw new ConfigError(`rtsp.mounts.${name}: a mount name is letters, digits, '-', '_' or '.'`);
      if (`/${name}` === PLAYER_MOUNT && rtspPipeline) throw new ConfigError('rtsp.mounts.player: /player is rtsp_pipeline already');
      if (typeof launch !== 'string' || launch.trim() === '') throw new ConfigError(`rtsp.mounts.${name} must be a launch line`);
      mounts.push({ path: `/${name}`, template: launch });
    }
  }
  return { port, address, mounts };
}

function portOf(value: unknown, fallback: number, where: string): number {
  const port = value ?? fallback;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`${where} must be a port number (0-65535)`);
  return port;
}


function addressOf(value: unknown, where: string): string {
  const address = value ?? ANY_ADDRESS;
  if (typeof address !== 'string' || address === '') throw new ConfigError(`${where} must be an IP address`);
  return address;
}

function httpSettingsOf(value: unknown, enabled: boolean): HttpSettings {
  if (value !== undefined && value !== null && !isObject(value)) throw new ConfigError('http must be an object');
  const settings = (value ?? {}) as Record<string, unknown>;
  const mediaRoot = settings.media_root ?? DEFAULT_HTTP.mediaRoot;
  // Absolute, or starting with a variable ($MEDIA_ROOT), checked again once expanded.
  if (typeof mediaRoot !== 'string' || !/^[/$]/.test(mediaRoot)) throw new ConfigError('http.media_root must be an absolute folder path');
  return { enabled, port: portOf(settings.port, DEFAULT_HTTP.port, 'http.port'), address: addressOf(settings.address, 'http.address'), mediaRoot };
}

function metricsSettingsOf(value: unknown): MetricsSettings {
  if (value !== undefined && value !== null && !isObject(value)) throw new ConfigError('metrics must be an object');
  const settings = (value ?? {}) as Record<string, unknown>;
  const port = settings.port === null ? null : portOf(settings.port, DEFAULT_METRICS.port, 'metrics.port');
  return { port, address: addressOf(settings.address, 'metrics.address') };
}

function webrtcSettingsOf(value: unknown): WebRtcSettings {
  if (value !== undefined && value !== null && !isObject(value)) throw new ConfigError('webrtc must be an object');
  const settings = (value ?? {}) as Record<string, unknown>;
  const mode = settings.mode ?? null;
  if (mode !== null && mode !== 'shared' && mode !== 'per-viewer') throw new ConfigError('webrtc.mode must be "shared" or "per-viewer"');
  const number = (key: string, fallback: number, max: number) => {
    const v = settings[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new ConfigError(`webrtc.${key} must be a whole number from 1 to ${max}`);
    return v;
  };
  const stun = settings.stun_server ?? null;
  if (stun !== null && (typeof stun !== 'string' || !/^stuns?:\/\//.test(stun))) throw new ConfigError('webrtc.stun_server must be a stun://host:port URI');
  const turn = settings.turn_servers ?? [];
  if (!Array.isArray(turn) || turn.some((t) => typeof t !== 'string' || !/^turns?:\/\//.test(t))) {
    throw new ConfigError('webrtc.turn_servers must be a list of turn://user:password@host:port URIs');
  }
  const advertised = settings.advertised_host ?? null;
  if (advertised !== null && (typeof advertised !== 'string' || !/^[A-Za-z0-9.:-]+$/.test(advertised))) {
    throw new ConfigError('webrtc.advertised_host must be an IP address or host name');
  }
  return {
    mode,
    maxPeers: number('max_peers', DEFAULT_WEBRTC.maxPeers, 1000),
    negotiationTimeoutMs: number('negotiation_timeout_ms', DEFAULT_WEBRTC.negotiationTimeoutMs, 600_000),
    stunServer: stun,
    turnServers: turn as string[],
    advertisedHost: advertised,
  };
}

/** Checks the shape of a desired document (no environment, no GStreamer). */
export function parseDesired(document: unknown): DesiredConfig {
  const desired = desiredOf(document);
  const version = typeof desired.$version === 'number' ? desired.$version : null;
  const pipelines: PipelineSpec[] = [];
  const main = optionalString(desired, 'pipeline');
  const mainOnEos = eosPolicy(desired.on_eos, 'on_eos');
  if (main !== null) pipelines.push({ name: MAIN_PIPELINE, template: main, onEos: mainOnEos });

  const extra = desired.pipelines;
  if (extra !== undefined && extra !== null) {
    if (!isObject(extra)) throw new ConfigError('pipelines must be an object of name -> pipeline');
    for (const [name, value] of Object.entries(extra)) {
      if (value === null) continue; // a twin patch deletes with null
      if (!PIPELINE_NAME.test(name) || name === MAIN_PIPELINE) {
        throw new ConfigError(`pipelines.${name}: a name is 1-32 letters, digits, '-' or '_', not "${MAIN_PIPELINE}"`);
      }
      if (typeof value === 'string') {
        if (value.trim() !== '') pipelines.push({ name, template: value, onEos: 'restart' });
      } else if (isObject(value)) {
        const template = optionalString(value, 'pipeline');
        if (template === null) throw new ConfigError(`pipelines.${name}.pipeline must be a non-empty string`);
        pipelines.push({ name, template, onEos: eosPolicy(value.on_eos, `pipelines.${name}.on_eos`) });
      } else {
        throw new ConfigError(`pipelines.${name} must be a string or an object with "pipeline"`);
      }
    }
  }

  const httpServer = desired.http_server;
  if (httpServer !== undefined && httpServer !== null && typeof httpServer !== 'boolean') {
    throw new ConfigError('http_server must be true or false');
  }
  const rtspPipeline = optionalString(desired, 'rtsp_pipeline');
  return {
    version,
    pipelines,
    rtspPipeline,
    rtsp: rtspSettingsOf(desired.rtsp, rtspPipeline),
    webrtcPipeline: optionalString(desired, 'webrtc_pipeline'),
    httpServer: httpServer !== false,
    http: httpSettingsOf(desired.http, httpServer !== false),
    metrics: metricsSettingsOf(desired.metrics),
    webrtc: webrtcSettingsOf(desired.webrtc),
    restartPolicy: restartPolicyOf(desired.restart_policy),
    unknownKeys: Object.keys(desired).filter((k) => !k.startsWith('$') && !KNOWN_KEYS.has(k)),
  };
}

/** Expands every pipeline of a checked document from `env`; an unset variable is a {@link ConfigError}. */
export function resolveDesired(config: DesiredConfig, env: NodeJS.ProcessEnv): ResolvedConfig {
  const secrets = new Map<string, string>();
  const expandInto = (template: string, where: string): string => {
    const { text, values } = expand(template, env, where);
    for (const [k, v] of values) secrets.set(k, v);
    return shellQuotesToGst(text);
  };
  const pipelines = config.pipelines.map((p) => ({
    ...p,
    launch: expandInto(p.template, p.name === MAIN_PIPELINE ? 'pipeline' : `pipelines.${p.name}`),
  }));
  const extraLaunches: Array<{ name: string; launch: string }> = [];
  const mounts = config.rtsp.mounts.map(({ path, template }) => {
    const where = path === PLAYER_MOUNT && config.rtspPipeline ? 'rtsp_pipeline' : `rtsp.mounts.${path.slice(1)}`;
    const launch = expandInto(template, where);
    extraLaunches.push({ name: where, launch });
    return { path, launch };
  });
  if (config.webrtcPipeline) {
    extraLaunches.push({ name: 'webrtc_pipeline', launch: expandInto(config.webrtcPipeline, 'webrtc_pipeline') });
  }
  const rtspServer: RtspConfig = { port: config.rtsp.port, address: config.rtsp.address, mounts };
  const mediaRoot = expand(config.http.mediaRoot, env, 'http.media_root').text;
  if (!mediaRoot.startsWith('/')) throw new ConfigError('http.media_root must be an absolute folder path');
  const main = pipelines.find((p) => p.name === MAIN_PIPELINE);
  const sharesVideo = main !== undefined && /\bappsink\b[^!]*\bname=video\b/.test(main.launch);
  const webrtcLaunch = extraLaunches.find((l) => l.name === 'webrtc_pipeline')?.launch ?? null;
  const mode = config.webrtc.mode ?? (webrtcLaunch ? 'per-viewer' : sharesVideo ? 'shared' : null);
  if (mode === 'per-viewer' && !webrtcLaunch) throw new ConfigError('webrtc.mode "per-viewer" needs webrtc_pipeline');
  const webrtcResolved: ResolvedWebRtc = {
    ...config.webrtc,
    mode,
    launch: webrtcLaunch,
    turnServers: config.webrtc.turnServers.map((t, i) => expandInto(t, `webrtc.turn_servers[${i}]`)),
  };
  return { ...config, http: { ...config.http, mediaRoot }, pipelines, extraLaunches, secrets, rtspServer, webrtcResolved };
}
