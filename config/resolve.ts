/**
 * From a checked desired document to what runs: every launch line expanded into values (config/launch.ts), the
 * media folder checked, the WebRTC mode decided, the `record` settings expanded and checked (recording/settings.ts).
 */
import { realpathSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { rtspAuthSpec } from '../auth/rtspSpec.js';
import { parseAuthSettings } from '../auth/settings.js';
import { parseTlsSettings } from '../certs/settings.js';
import type { RtspConfig } from '../ipc/protocol.js';
import { MAIN_PIPELINE, PLAYER_MOUNT, type DesiredConfig, type ResolvedConfig, type ResolvedWebRtc } from './desired.js';
import { ConfigError } from './errors.js';
import { expand } from './expand.js';
import { expandLaunch } from './launch.js';
import { parseRecordSettings } from '../recording/settings.js';

/** What resolving needs to know of the module beyond the document. */
export interface ResolveOptions {
  /** The module's state folder (`STATE_DIR`): the media folder must not be or hold it, or /media would serve it. */
  readonly stateDir?: string;
  /** Where recording keeps its journal and segments (STATE_DIR, or the file mode's own): with `record` on, the media folder must not hold it either. */
  readonly recordingStateDir?: string;
}

/** The path and, where it exists, the path with symbolic links followed. */
function realForms(path: string): string[] {
  const forms = [resolve(path)];
  try {
    forms.push(realpathSync.native(path));
  } catch {
    // Not there yet: the engine creates it.
  }
  return forms;
}

const within = (folder: string, path: string) => path === folder || path.startsWith(folder.endsWith(sep) ? folder : folder + sep);

/**
 * Refuses a media folder (`http.media_root`, expanded) that the web server must not serve: a relative path, `/`,
 * or a folder that is or holds the module's state folder (the last applied document, which may hold secrets).
 * The message names no value (the path may come from the environment).
 *
 * @example
 * checkMediaRoot('/tmp', '/tmp/gst-iotedge-state') // throws: http.media_root must not be or hold the module's state folder (STATE_DIR)
 */
export function checkMediaRoot(mediaRoot: string, stateDir?: string): void {
  if (!mediaRoot.startsWith('/')) throw new ConfigError('http.media_root must be an absolute folder path');
  const roots = realForms(mediaRoot);
  if (roots.some((r) => r === '/')) throw new ConfigError('http.media_root must not be / (the web server would serve the whole file system)');
  if (stateDir === undefined) return;
  const states = realForms(stateDir);
  if (roots.some((r) => states.some((s) => within(r, s)))) {
    throw new ConfigError("http.media_root must not be or hold the module's state folder (STATE_DIR)");
  }
}

/** Whether a launch line has `appsink … name=video` in one element (linear: one element at a time). */
function hasVideoAppsink(launch: string): boolean {
  return launch.split('!').some((element) => {
    const at = element.search(/\bappsink\b/);
    return at >= 0 && /\bname=video\b/.test(element.slice(at));
  });
}

/**
 * Expands every pipeline of a checked document from `env`; an unset variable, a value used where it would change
 * the pipeline, or a media folder that must not be served is a {@link ConfigError}.
 *
 * @example
 * const config = resolveDesired(parseDesired(document), process.env, { stateDir: STATE_DIR });
 */
export function resolveDesired(config: DesiredConfig, env: NodeJS.ProcessEnv, options: ResolveOptions = {}): ResolvedConfig {
  const secrets = new Map<string, string>();
  const remember = (values: ReadonlyMap<string, string>) => {
    for (const [k, v] of values) secrets.set(k, v);
  };
  const launchOf = (template: string, where: string): string => {
    const { text, values } = expandLaunch(template, env, where);
    remember(values);
    return text;
  };
  const pipelines = config.pipelines.map((p) => ({
    ...p,
    launch: launchOf(p.template, p.name === MAIN_PIPELINE ? 'pipeline' : `pipelines.${p.name}`),
  }));
  const extraLaunches: Array<{ name: string; launch: string }> = [];
  const mounts = config.rtsp.mounts.map(({ path, template }) => {
    const where = path === PLAYER_MOUNT && config.rtspPipeline ? 'rtsp_pipeline' : `rtsp.mounts.${path.slice(1)}`;
    const launch = launchOf(template, where);
    extraLaunches.push({ name: where, launch });
    return { path, launch };
  });
  if (config.webrtcPipeline) {
    extraLaunches.push({ name: 'webrtc_pipeline', launch: launchOf(config.webrtcPipeline, 'webrtc_pipeline') });
  }
  // Users' passwords and the JWT key come from the environment like pipeline variables, and are redacted the same way.
  const auth = parseAuthSettings(config.authTemplate, env);
  remember(auth.secrets);
  // require_tls turns TLS on: credentials must have a TLS surface to go to.
  const tls = parseTlsSettings(config.tlsTemplate ?? (auth.settings?.requireTls ? true : undefined), env);
  remember(tls.secrets);
  // The RTSPS certificate is the control plane's to add: it is not part of the document.
  const rtspServer: RtspConfig = { port: config.rtsp.port, address: config.rtsp.address, mounts, auth: rtspAuthSpec(auth.settings), tls: null };
  const mediaRoot = expand(config.http.mediaRoot, env, 'http.media_root').text;
  checkMediaRoot(mediaRoot, options.stateDir);
  const record = parseRecordSettings(config.record, env);
  remember(record.secrets);
  if (record.settings && options.recordingStateDir !== undefined) checkMediaRoot(mediaRoot, options.recordingStateDir);
  const main = pipelines.find((p) => p.name === MAIN_PIPELINE);
  const sharesVideo = main !== undefined && hasVideoAppsink(main.launch);
  const webrtcLaunch = extraLaunches.find((l) => l.name === 'webrtc_pipeline')?.launch ?? null;
  const mode = config.webrtc.mode ?? (webrtcLaunch ? 'per-viewer' : sharesVideo ? 'shared' : null);
  if (mode === 'per-viewer' && !webrtcLaunch) throw new ConfigError('webrtc.mode "per-viewer" needs webrtc_pipeline');
  const webrtcResolved: ResolvedWebRtc = {
    ...config.webrtc,
    mode,
    launch: webrtcLaunch,
    // URIs, not launch lines: expanded as text.
    turnServers: config.webrtc.turnServers.map((t, i) => {
      const { text, values } = expand(t, env, `webrtc.turn_servers[${i}]`);
      remember(values);
      return text;
    }),
  };
  // The raw `record` value may quote inline credentials: only the parsed settings go on.
  const { record: _raw, ...rest } = config;
  // Keys the schema's walk reported already are not reported twice.
  const known = new Set(config.unknownKeys);
  const recordWarnings = record.warnings.filter((w) => !known.has(w.split(' ')[0]!));
  return {
    ...rest,
    http: { ...config.http, mediaRoot },
    pipelines,
    extraLaunches,
    secrets,
    rtspServer,
    webrtcResolved,
    recording: record.settings,
    recordWarnings,
    auth: auth.settings,
    tls: tls.settings,
    warnings: auth.warnings,
  };
}
