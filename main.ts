#!/usr/bin/env node
/**
 * gst-iotedge: runs GStreamer pipelines from a module twin. Without Azure it reads the twin from a file
 * (default: twins/default.json) and reconfigures itself when the file changes.
 */
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { auditTime, concatMap } from 'rxjs';
import { ControlPlane } from './actors/ControlPlane.js';
import { EngineClient } from './actors/EngineClient.js';
import { Metrics } from './actors/Metrics.js';
import { Security } from './actors/Security.js';
import { prepareStateDir } from './actors/stateDir.js';
import { ReportedFile, reportedPathFor, watchTwinFile } from './actors/twinFile.js';
import { DEFAULT_ENGINE_POLICY, type EngineSupervisionPolicy } from './machines/engine.js';
import { WebAuth } from './web/WebAuth.js';
import { WebRtcGateway } from './web/WebRtcGateway.js';
import { WebServers } from './web/WebServers.js';
import { analyzersWithoutElement, checkAnalyzerModules } from './config/analysis.js';
import { CertificateError, loadCertificateFiles } from './certs/certificate.js';
import { parseDesired } from './config/desired.js';
import { resolveDesired } from './config/resolve.js';
import { SAME_ORIGIN_ONLY } from './auth/origin.js';
import { Redactor } from './config/redact.js';

const DEFAULT_TWIN = new URL('../twins/default.json', import.meta.url).pathname;
/** The browser pages (the sign-in page embeds their auth.js). */
const WWWROOT = new URL('../wwwroot', import.meta.url).pathname;

const USAGE = `Usage: gst-iotedge [--twin <twin.json>] [--reported <file>]
       gst-iotedge --check <twin.json>

  --twin <file>      twin file to run (env TWIN_FILE; default ${DEFAULT_TWIN}).
                     Holds {"properties":{"desired":{...}}} or just the desired object; edits apply live.
  --reported <file>  where reported properties go (env REPORTED_FILE; default <twin>.reported.json beside it)
  --check <file>     validate a twin offline (JSON shape, environment variables, every pipeline parses);
                     exit code 0 when valid, 1 when not
  -h, --help         this text

IoT Edge: with IOTEDGE_WORKLOADURI (set by the IoT Edge runtime) or EdgeHubConnectionString (a module connection
string; EdgeModuleCACertificateFile adds a CA) the module twin drives the module instead of a file.
  EVENTS_OUTPUT (events)      module output for pipeline state events
  ANALYSIS_OUTPUT (inference) module output for analyzers' detections
  RECORDINGS_OUTPUT (recordings) module output for a message per uploaded recording segment
  REPORT_INTERVAL_MS (1000)   reported properties are coalesced over this window
  STATE_DIR (<tmp>/gst-iotedge-state)  a private folder (0700) that keeps the last applied desired document, run at start until the hub answers,
                     and recording's journal and segments (twin key record; in twin-file mode too)

TLS: TLS_CERT_FILE / TLS_KEY_FILE (PEM files; a pair that does not match stops the start), TLS_FILE_POLL_MS (60000,
how often they are read again for a renewed certificate); or the twin's "tls" key (docs/auth.md).

Environment: LOG_LEVEL (info), GST_DEBUG (passed to GStreamer).`;

async function check(path: string): Promise<number> {
  let document: unknown;
  try {
    document = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    console.error(`✗ ${path}: ${(error as Error).message}`);
    return 1;
  }
  const redactor = new Redactor();
  let config;
  try {
    config = resolveDesired(parseDesired(document), process.env);
  } catch (error) {
    console.error(`✗ ${path}: ${(error as Error).message}`);
    return 1;
  }
  redactor.add(config.secrets);
  try {
    await checkAnalyzerModules(config.analysis);
  } catch (error) {
    console.error(`✗ ${path}: ${(error as Error).message}`);
    return 1;
  }
  for (const analyzer of config.analysis.analyzers) {
    const { source } = analyzer;
    console.log(`✓ analyzer ${analyzer.name}: ${analyzer.module ?? analyzer.model} on ${source.kind === 'element' ? `inference name=${source.element}` : `stream ${source.stream}`}, ${analyzer.fps} fps`);
  }
  for (const name of analyzersWithoutElement(config.analysis, config.pipelines.map((p) => p.template))) {
    console.log(`! analyzer ${name}: no pipeline has its inference element; it would wait for one`);
  }
  let failures = 0;
  if (config.tls?.source === 'files') {
    try {
      const cert = await loadCertificateFiles(config.tls.certFile!, config.tls.keyFile!);
      console.log(`✓ tls: ${cert.subject}, SHA-256 ${cert.fingerprint256}, valid until ${cert.notAfter.toISOString()}`);
    } catch (error) {
      failures++;
      console.error(`✗ tls: ${(error as Error).message}`);
    }
  }
  for (const warning of config.warnings) console.log(`! ${warning}`);
  const engine = new EngineClient({ onOutput: (line) => console.error(redactor.redact(line)) });
  engine.start();
  try {
    for (const { name, launch } of [...config.pipelines, ...config.extraLaunches]) {
      const error = await engine.validate(launch);
      if (error === null) console.log(`✓ ${name}: parses`);
      else {
        failures++;
        console.error(`✗ ${name}: ${redactor.redact(error)}`);
      }
    }
  } finally {
    await engine.shutdown();
  }
  if (config.recording) {
    const r = config.recording;
    const what = [...r.streams.map((s) => `stream ${s.stream}`), ...r.folders.map((f) => `folder ${f.path}`)].join(', ');
    console.log(`✓ record: ${what} in ${r.segmentMs / 1000} s segments -> ${r.targets.map((t) => t.name).join(', ') || 'local only'}`);
  }
  for (const warning of config.recordWarnings) console.log(`! ${warning}`);
  for (const key of config.unknownKeys) console.log(`! unknown key "${key}" ignored`);
  if (config.pipelines.length === 0) console.log('! no pipeline: nothing would run');
  console.log(failures === 0 ? `${path}: valid` : `${path}: ${failures} problem(s)`);
  return failures === 0 ? 0 : 1;
}

/** Twin file mode: the file is the desired document, reported properties go to a file beside it. */
function runFromFile(plane: ControlPlane, logger: Logger, twinPath: string, reportedPath: string): () => Promise<void> {
  logger.info(
    { event: 'started', mode: 'file', twin: twinPath, reported: reportedPath, pid: process.pid },
    `gst-iotedge running the twin in ${twinPath} (edit it to reconfigure live); reported properties in ${reportedPath}`,
  );
  const reported = new ReportedFile(reportedPath);
  const reporting = plane.status$
    .pipe(
      auditTime(100),
      concatMap((status) =>
        reported.write(status).catch((error: unknown) => {
          logger.warn(`cannot write reported properties to ${reportedPath}: ${String(error)}`);
        }),
      ),
    )
    .subscribe();
  const stopWatching = watchTwinFile(twinPath, (content) => {
    if (content.ok) plane.applyDesired(content.document);
    else plane.rejectInput(content.error);
  });
  return async () => {
    stopWatching();
    await plane.close();
    reporting.unsubscribe();
    await reported.write(plane.status$.value).catch(() => undefined);
  };
}

/** IoT Edge mode: the module twin is the desired document; status goes to reported properties and outputs. */
async function runFromHub(plane: ControlPlane, logger: Logger, stateDir: string): Promise<() => Promise<void>> {
  logger.info({ event: 'started', mode: 'iothub', stateDir, pid: process.pid }, 'gst-iotedge connecting to IoT Hub for its module twin');
  // Loaded only here: the Azure SDK is a good part of start-up time, and file mode does not need it.
  const { IotHubConnection } = await import('./actors/IotHubConnection.js');
  const hub = new IotHubConnection({ plane, logger, stateDir });
  await hub.start();
  return async () => {
    await plane.close();
    await hub.close();
  };
}

/** The engine supervision policy, with `ENGINE_HANG_TIMEOUT_MS` from the environment (a positive number of ms). */
function enginePolicy(env: NodeJS.ProcessEnv): EngineSupervisionPolicy {
  const hangTimeoutMs = positiveMs(env, 'ENGINE_HANG_TIMEOUT_MS');
  return hangTimeoutMs === null ? DEFAULT_ENGINE_POLICY : { ...DEFAULT_ENGINE_POLICY, hangTimeoutMs };
}

/** A number of milliseconds from 100 to 3600000 in the environment variable `name`; null when unset. */
function positiveMs(env: NodeJS.ProcessEnv, name: string): number | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms < 100 || ms > 3_600_000) {
    throw new StartupError(`${name} must be a number of milliseconds from 100 to 3600000, got "${raw}"`);
  }
  return ms;
}

/** A setting the module cannot start with: printed, exit code 2. */
class StartupError extends Error {
  override readonly name = 'StartupError';
}

/**
 * `TLS_CERT_FILE` / `TLS_KEY_FILE` from the environment hold for every document, so a certificate and key that
 * do not belong together (or cannot be read) stop the start with the reason, rather than refusing each document.
 */
async function checkTlsEnvironment(env: NodeJS.ProcessEnv): Promise<void> {
  if (!env.TLS_CERT_FILE) return;
  try {
    await loadCertificateFiles(env.TLS_CERT_FILE, env.TLS_KEY_FILE || env.TLS_CERT_FILE);
  } catch (error) {
    if (error instanceof CertificateError) throw new StartupError(`TLS_CERT_FILE / TLS_KEY_FILE: ${error.message}`);
    throw error;
  }
}

/**
 * The composition root: builds the engine, the control plane, metrics, the WebRTC gateway and the web servers,
 * each handed only what it uses.
 */
async function run(twinPath: string | null, reportedPath: string | null): Promise<void> {
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { module: 'gst-iotedge' } });
  const policy = enginePolicy(process.env);
  const engineLog = logger.child({ component: 'engine' });
  let redact: (text: string) => string = (text) => text;
  const engine = new EngineClient({ policy, onOutput: (line) => engineLog.info({ stream: 'gstreamer' }, redact(line)) });
  const useHub = iotHubConfigured(process.env);
  // IoT Hub mode keeps the last applied document in a private folder, which no media root may serve. Recording
  // keeps its journal there too, in file mode as well (prepared when `record` is first applied).
  const recordingStateDir = resolve(process.env.STATE_DIR ?? join(tmpdir(), 'gst-iotedge-state'));
  const stateDir = useHub ? recordingStateDir : undefined;
  if (stateDir) {
    try {
      await prepareStateDir(stateDir);
    } catch (error) {
      throw new StartupError(`STATE_DIR: ${(error as Error).message}`);
    }
  }
  await checkTlsEnvironment(process.env);
  const security = new Security({ logger, certificates: { filePollMs: positiveMs(process.env, 'TLS_FILE_POLL_MS') ?? 60_000 } });
  const plane = new ControlPlane({ logger, engine, stateDir, recordingStateDir, security });
  redact = (text) => plane.redactor.redact(text);
  const metrics = new Metrics();
  metrics.observe(plane);
  const auth = new WebAuth({ access: security.access, changes$: security.changes$, metrics, logger, wwwrootDir: WWWROOT });
  const origins = () => plane.applied$.value?.origins ?? SAME_ORIGIN_ONLY;
  const gateway = new WebRtcGateway({ webrtc: plane.webrtc, redact, logger, auth, origins, analysis$: plane.analysisResults$ });
  const web = new WebServers({
    applied$: plane.applied$,
    status$: plane.status$,
    metrics,
    webrtc: gateway,
    auth,
    certificate$: security.certificate$,
    logger,
    recordings: plane.recordings,
  });
  installCrashPolicy(logger, metrics, redact);

  // Signals are taken from the start: a SIGTERM while the hub connects (or a cached document starts) still stops
  // the pipelines in order. Until the mode is set up, the control plane itself (and the engine it forked) is what
  // there is to stop: exiting without it would leave the engine to notice the closed channel on its own.
  let shutdown: () => Promise<void> = () => plane.close();
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      // A second Ctrl-C means "now"; a repeated SIGTERM (sent to the process and its group) changes nothing.
      if (signal !== 'SIGINT') return;
      logger.warn('SIGINT again: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ event: 'stopping', signal }, `${signal}: stopping pipelines gracefully`);
    let code = 0;
    for (const [what, step] of [
      ['pipelines', () => shutdown()],
      ['web servers', () => web.close()],
    ] as const) {
      try {
        await step();
      } catch (error) {
        code = 1;
        logger.error({ event: 'stop-failed', step: what }, `stopping ${what} failed: ${redact((error as Error).message ?? String(error))}`);
      }
    }
    metrics.close();
    logger.info({ event: 'stopped', code }, 'stopped');
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  plane.start();
  web.start();
  if (useHub && twinPath) logger.warn(`IoT Hub settings found in the environment: the module twin is used, not ${twinPath}`);
  const twin = twinPath ?? DEFAULT_TWIN;
  const modeShutdown = useHub ? await runFromHub(plane, logger, stateDir!) : runFromFile(plane, logger, twin, reportedPath ?? reportedPathFor(twin));
  // A stop that began while the mode was set up has closed the plane already; the mode's own shutdown is then
  // the rest (the hub's last report, the twin file watcher).
  shutdown = modeShutdown;
  if (stopping) await modeShutdown();
}

/**
 * What slips through every other guard (a bug in a library's callback, a rejection nobody awaited) is logged,
 * counted, and survived: the module faces clients it does not control, and one of them must never be able to end
 * it for everyone. The engine process is separate and supervised; this is the control plane's own policy.
 */
function installCrashPolicy(logger: Logger, metrics: Metrics, redact: (text: string) => string): void {
  const report = (kind: 'exception' | 'rejection', error: unknown) => {
    metrics.observeUncaught(kind);
    const text = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error);
    logger.error({ event: 'uncaught', kind }, `uncaught ${kind}, module keeps running: ${redact(text)}`);
  };
  process.on('uncaughtException', (error) => report('exception', error));
  process.on('unhandledRejection', (reason) => report('rejection', reason));
}

/** True when the environment says to connect to IoT Hub / IoT Edge instead of reading a twin file. */
function iotHubConfigured(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.EdgeHubConnectionString || env.IotHubConnectionString || env.IOTEDGE_WORKLOADURI);
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        twin: { type: 'string' },
        reported: { type: 'string' },
        check: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (args.help) {
    console.log(USAGE);
    return;
  }
  if (args.check) {
    process.exit(await check(resolve(args.check)));
  }
  const twin = args.twin ?? process.env.TWIN_FILE;
  const reported = args.reported ?? process.env.REPORTED_FILE;
  try {
    await run(twin ? resolve(twin) : null, reported ? resolve(reported) : null);
  } catch (error) {
    if (!(error instanceof StartupError)) throw error;
    console.error(`gst-iotedge: ${error.message}`);
    process.exit(2);
  }
}

void main();
