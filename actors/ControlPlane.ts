import type { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BehaviorSubject, filter, firstValueFrom, Subject, type Observable } from 'rxjs';
import { createActor, fromPromise, waitFor } from 'xstate';
import type { FrameResult } from '../analysis/types.js';
import { analyzersWithoutElement, checkAnalyzerModules } from '../config/analysis.js';
import { displayHost } from '../config/defaults.js';
import {
  parseDesired,
  type ResolvedConfig,
  type ResolvedPipeline,
  type ResolvedWebRtc,
  type RestartPolicy,
} from '../config/desired.js';
import { errorMessage, PipelineParseError } from '../config/errors.js';
import { resolveDesired } from '../config/resolve.js';
import { maskUserinfo, Redactor } from '../config/redact.js';
import type { EngineEvent, EngineStats, RecordEvent, RtspConfig, SignalMessage, WebRtcMode, WebRtcPeerSpec } from '../ipc/protocol.js';
import { configMachine, type ApplyInput, type ConfigActor, type ValidateInput } from '../machines/config.js';
import type { EngineDeathCause } from '../machines/engine.js';
import { pipelineMachine, pipelineStateName, STOP_MARGIN_MS, type PipelineActor } from '../machines/pipeline.js';
import { pipelineChildren, pipelinesMachine, type PipelinesActor } from '../machines/pipelines.js';
import { planSwap } from '../machines/swapPlan.js';
import type { RecordingsStatus } from '../recording/Recordings.js';
import type { SegmentQueue } from '../recording/SegmentQueue.js';
import type { SegmentUploadedEvent } from '../recording/events.js';
import type { AnalyzerObserverEvents } from './AnalyzerSupervisor.js';
import { Analyzers, type AnalysisEvent, type AnalysisStatus, type AnalyzersOptions } from './Analyzers.js';
import { EngineUnavailableError, type EngineStatus, type EngineStreamEvent, type MediaEngine } from './EngineClient.js';
import { ModuleRecordings, RECORD_EVENT_TYPES, type ModuleRecordingsOptions, type RecordingsPort } from './ModuleRecordings.js';
import { pipelineRunLogic } from './pipelineRunActor.js';
import { Security, type TlsStatus } from './Security.js';
import { sourceProbeLogic } from './sourceProbe.js';

/** Per pipeline, as reported. */
export interface PipelineStatus {
  state: string;
  since: string;
  restarts: number;
  lastError: string | null;
  lastErrorAt: string | null;
  /** The twin's text, variables unexpanded, URI userinfo masked. */
  pipeline: string;
  /** In `waiting-for-source`: the network source that does not answer (URI userinfo masked), and since when. */
  waitingFor?: { source: string; since: string };
}

/** The status document: reported properties, the status API and the status page all show this. */
export interface StatusDocument {
  config: {
    status: 'pending' | 'applied' | 'rejected';
    /** `$version` of the desired document that runs now. */
    appliedVersion: number | null;
    /** `$version` of the last document refused, with the reason. */
    rejectedVersion: number | null;
    error: string | null;
    warnings: string[];
    at: string;
  };
  pipelines: Record<string, PipelineStatus>;
  engine: EngineStatus;
  /** The RTSP server: bound port (null when it serves nothing), the RTSPS port (null: none) and viewers per mount. */
  rtsp: { port: number | null; tlsPort?: number | null; error: string | null; mounts: Record<string, { viewers: number; bytesSent: number }> };
  /** WebRTC: the mode in use (null: off) and the peers alive in the engine. */
  webrtc: { mode: WebRtcMode | null; peers: number };
  /** Video analysis: each analyzer of the applied config (twin key `analyzers`). */
  analysis: Record<string, AnalysisStatus>;
  /**
   * Recording (twin key `record`): segments written, queued, uploaded, failed and dropped, bytes pending, the oldest
   * pending segment's age, upload throughput, the disk alarm, each target and recorder; null while off. Counts
   * only, no list of segments (reported properties are capped at 32 KB; /api/recordings lists them).
   */
  recording: RecordingsStatus | null;
  /** `open`: no `auth` key, anyone may watch (as before auth existed); `protected`: users and rights apply. */
  auth: 'open' | 'protected';
  /** The server certificate of HTTPS, WSS and RTSPS (null: TLS off). */
  tls: TlsStatus | null;
}

/** What happened, for outputs that report events (IoT Hub output messages, metrics, the status page). */
export type ControlPlaneEvent =
  | { type: 'pipeline-state'; pipeline: string; state: string; restarts: number; lastError: string | null; at: string }
  | { type: 'config'; sequence: number; status: 'applied' | 'rejected' | 'superseded'; version: number | null; error: string | null }
  /** The media engine went down (it died, hung or failed to start); it is restarted with backoff. */
  | { type: 'engine-down'; cause: EngineDeathCause | 'failed-to-start'; reason: string }
  /** A detection (IoT Hub output `ANALYSIS_OUTPUT`), or an analyzer process down (restarted with backoff). */
  | AnalysisEvent
  /** A recorded segment verified on one upload target (IoT Hub output `RECORDINGS_OUTPUT`). */
  | SegmentUploadedEvent;

/** Engine events that concern WebRTC peers, and `down` when the engine is gone. */
export type WebRtcEngineEvent = Extract<EngineStreamEvent, { type: 'webrtc-signal' | 'webrtc-state' | 'down' }>;

/**
 * What the WebRTC gateway may do through the control plane: read the applied WebRTC settings, open, signal and
 * close peers in the engine, and hear back from them. The engine itself stays the control plane's.
 */
export interface WebRtcPort {
  /** The applied WebRTC settings; null until a config is applied. */
  settings(): ResolvedWebRtc | null;
  readonly events$: Observable<WebRtcEngineEvent>;
  /** False when no engine is up to take it. */
  open(spec: WebRtcPeerSpec): boolean;
  signal(peer: string, signal: SignalMessage): void;
  close(peer: string): void;
}

export interface ControlPlaneOptions {
  readonly logger: Logger;
  /** The supervised media engine ({@link EngineClient}); the control plane starts and stops it. */
  readonly engine: MediaEngine;
  /** Where `$VAR`s come from. */
  readonly env?: NodeJS.ProcessEnv;
  /** The private state folder (IoT Hub mode): a media root that would serve it is refused. */
  readonly stateDir?: string;
  /** Makes analyzers' supervisors (default: real worker processes); unit tests give fakes. */
  readonly createAnalyzer?: AnalyzersOptions['create'];
  /**
   * Recording's state folder (journal, and segments unless `record.local.dir`): STATE_DIR in IoT Hub mode, the file
   * mode's own otherwise (default `<tmp>/gst-iotedge-state`); made private (0700) when `record` is first applied.
   */
  readonly recordingStateDir?: string;
  /** Recording's upload targets (default: the real clients); tests give fakes. */
  readonly createRecordingTarget?: ModuleRecordingsOptions['createTarget'];
  /** Users, rights and the server certificate in force (default: one of its own). */
  readonly security?: Security;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Analyzers that read an `inference` element no pipeline of the config has: they wait for one (a warning). */
function analysisWarnings(config: ResolvedConfig): string[] {
  return analyzersWithoutElement(config.analysis, config.pipelines.map((p) => p.template)).map((name) => {
    const source = config.analysis.analyzers.find((a) => a.name === name)!.source;
    return `analyzer "${name}" reads inference name=${source.kind === 'element' ? source.element : ''}, which no pipeline has: it waits for one`;
  });
}

/** Recorded streams that no pipeline publishes (no `appsink name=<stream>`): their recorders wait for one (a warning). */
function recordingWarnings(config: ResolvedConfig): string[] {
  const streams = config.recording?.streams ?? [];
  const published = (stream: string) => config.pipelines.some((p) => new RegExp(`\\bname=["']?${stream.replace(/[.]/g, '\\.')}["']?(\\s|$)`).test(p.template));
  return streams.filter((s) => !published(s.stream)).map((s) => `record.streams: no pipeline has appsink name=${s.stream}: its recorder waits for the stream`);
}

/**
 * The control plane's root: desired documents in (twin file, IoT Hub, direct method), validated and swapped by
 * the config machine onto pipeline actors that run in the supervised media engine; the status document out.
 * Everything that leaves it (logs, status) has gone through the {@link Redactor}.
 */
export class ControlPlane {
  readonly redactor = new Redactor();
  /** WebRTC peers in the engine, for the gateway. */
  readonly webrtc: WebRtcPort;
  /** The status document, updated on every change. */
  readonly status$: BehaviorSubject<StatusDocument>;
  /** State changes and config outcomes, as they happen. */
  readonly events$ = new Subject<ControlPlaneEvent>();
  /** The config that runs now (null until the first one is applied). */
  readonly applied$ = new BehaviorSubject<ResolvedConfig | null>(null);
  /** The engine's latest counters (sample streams, RTSP viewers); null until the first report. */
  readonly stats$ = new BehaviorSubject<EngineStats | null>(null);
  /** Every analysed frame's result (WebRTC viewers draw the boxes). */
  readonly analysisResults$: Observable<FrameResult>;
  /** Analyzers' monitoring events (metrics: detections, latency, fps, drops, restarts). */
  readonly analysisObserver: EventEmitter<AnalyzerObserverEvents>;
  /** Recording's segment queue while `record` is on (metrics follow each new one). */
  readonly recordingQueue$: BehaviorSubject<SegmentQueue | null>;
  /** Recorded segments for the web server (`/api/recordings`). */
  readonly recordings: RecordingsPort;
  /** Users, rights and the server certificate: checked with each document, put in force when it is applied. */
  readonly security: Security;
  readonly #logger: Logger;
  readonly #env: NodeJS.ProcessEnv;
  /** The media engine: only the control plane talks to it. */
  readonly #engine: MediaEngine;
  /** The state folder a media root must not serve (IoT Hub mode). */
  readonly #stateDir: string | undefined;
  readonly #config: ConfigActor;
  /** The running pipelines, one child actor each. */
  readonly #pipelines: PipelinesActor;
  /** One supervised worker process per analyzer of the applied config, and the engine's taps for them. */
  readonly #analyzers: Analyzers;
  /** The applied `record` setting's queue, targets and watched folders, and the engine's recorders; survives engine crashes. */
  readonly #recording: ModuleRecordings;
  /** Where recording keeps its journal (and segments by default). */
  readonly #recordingStateDir: string;
  /** Last logged state per pipeline, so a log line is written per change, not per snapshot. */
  readonly #lastLogged = new Map<string, string>();
  #configStatus: StatusDocument['config'] = {
    status: 'pending',
    appliedVersion: null,
    rejectedVersion: null,
    error: null,
    warnings: [],
    at: iso(Date.now()),
  };
  #sequence = 0;
  #closing = false;
  /** The RTSP config the engine was given last (replayed when a new engine comes up). */
  #rtspConfig: RtspConfig | null = null;
  #rtspStatus: StatusDocument['rtsp'] = { port: null, error: null, mounts: {} };
  #webrtcPeers = 0;

  constructor(options: ControlPlaneOptions) {
    this.#logger = options.logger;
    this.#env = options.env ?? process.env;
    this.#engine = options.engine;
    this.#stateDir = options.stateDir;
    this.#analyzers = new Analyzers({
      logger: this.#logger,
      redact: (text) => this.redactor.redact(text),
      send: (command) => this.#engine.send(command),
      create: options.createAnalyzer,
    });
    this.analysisResults$ = this.#analyzers.results$.asObservable();
    this.analysisObserver = this.#analyzers.observer;
    this.#analyzers.events$.subscribe((event) => this.events$.next(event));
    this.#analyzers.changed$.subscribe(() => this.#publish());
    this.#recordingStateDir = options.recordingStateDir ?? options.stateDir ?? join(tmpdir(), 'gst-iotedge-state');
    this.#recording = new ModuleRecordings({
      logger: this.#logger,
      redact: (text) => this.redactor.redact(text),
      send: (command) => this.#engine.send(command),
      stateDir: this.#recordingStateDir,
      env: this.#env,
      createTarget: options.createRecordingTarget,
    });
    this.recordingQueue$ = this.#recording.queue$;
    this.recordings = this.#recording.port;
    this.#recording.uploaded$.subscribe((event) => this.events$.next(event));
    this.#recording.changed$.subscribe(() => this.#publish());
    this.security = options.security ?? new Security({ logger: this.#logger });
    this.status$ = new BehaviorSubject<StatusDocument>(this.#buildStatus());
    const engineLog = this.#logger.child({ component: 'engine' });
    const engine = this.#engine;
    engine.events$.subscribe((event) => {
      if (event.type === 'log') engineLog[event.level]({ pipeline: event.pipeline }, this.redactor.redact(event.msg));
      else if (event.type === 'rtsp') this.#onRtsp(event);
      else if (event.type === 'stats') this.#onStats(event.stats);
      else if (event.type === 'analysis-tap' || event.type === 'analysis-decoder' || event.type === 'down') this.#analyzers.onEngineEvent(event);
      if (RECORD_EVENT_TYPES.has(event.type)) this.#recording.engineEvent(event as RecordEvent);
      else if (event.type === 'down') this.#recording.engineStopped();
    });
    engine.lifecycle$.subscribe((event) => {
      if (event.type === 'ready') {
        engineLog.info({ pid: event.pid, event: 'engine-ready' }, 'media engine ready');
        if (this.#rtspConfig) engine.send({ type: 'rtsp', config: this.#rtspConfig });
        this.#analyzers.engineReady();
        this.#recording.engineReady();
        this.#pipelines.send({ type: 'ENGINE_READY' });
      } else if (event.type === 'failedToStart') {
        engineLog.error({ event: 'engine-failed-to-start', reason: event.reason }, `media engine failed to start: ${event.reason}`);
        this.events$.next({ type: 'engine-down', cause: 'failed-to-start', reason: event.reason });
      } else if (event.type === 'died') {
        engineLog.error({ event: 'engine-died', reason: event.reason, cause: event.cause }, `media engine died: ${event.reason}`);
        this.events$.next({ type: 'engine-down', cause: event.cause, reason: event.reason });
      } else if (event.type === 'silent') {
        engineLog.warn({ event: 'engine-silent', ms: event.ms }, `media engine silent for ${event.ms} ms: asking it once more before taking it as hung`);
        return;
      } else if (event.type === 'answered') {
        engineLog.info({ event: 'engine-answered' }, 'media engine answered: it was slow, not hung');
        return;
      }
      this.#publish();
    });
    this.webrtc = {
      settings: () => this.applied$.value?.webrtcResolved ?? null,
      events$: engine.events$.pipe(
        filter((e): e is WebRtcEngineEvent => e.type === 'webrtc-signal' || e.type === 'webrtc-state' || e.type === 'down'),
      ),
      open: (spec) => engine.send({ type: 'webrtc-open', spec }),
      signal: (peer, signal) => void engine.send({ type: 'webrtc-signal', peer, signal }),
      close: (peer) => void engine.send({ type: 'webrtc-close', peer }),
    };
    this.#pipelines = this.#createPipelines();
    // A renewed certificate goes to the engine's RTSPS server (its TLS connections stay up) and to the status.
    this.security.certificate$.subscribe(() => {
      const applied = this.applied$.value;
      if (applied) this.#sendRtsp(this.#rtspConfigOf(applied));
      if (this.#pipelines) this.#publish();
    });

    this.#config = createActor(
      configMachine.provide({
        actors: {
          validate: fromPromise<ResolvedConfig, ValidateInput>(({ input }) => this.#validate(input)),
          apply: fromPromise<void, ApplyInput>(({ input }) => this.#apply(input)),
        },
      }),
    );
    this.#config.on('applied', ({ config, sequence }) => {
      this.#configStatus = {
        ...this.#configStatus,
        status: 'applied',
        appliedVersion: config.version,
        error: null,
        warnings: [
          ...config.unknownKeys.map((k) => `unknown key "${k}" ignored`),
          ...analysisWarnings(config),
          ...config.recordWarnings,
          ...recordingWarnings(config),
          ...config.warnings,
        ],
        at: iso(Date.now()),
      };
      this.#logger.info({ event: 'config-applied', version: config.version, pipelines: config.pipelines.map((p) => p.name) }, 'desired config applied');
      for (const warning of config.warnings) this.#logger.warn({ event: 'config-warning' }, warning);
      this.applied$.next(config);
      this.events$.next({ type: 'config', sequence, status: 'applied', version: config.version, error: null });
      this.#publish();
    });
    this.#config.on('rejected', ({ error, version, sequence }) => this.#reject(error, version, sequence));
    this.#config.on('superseded', ({ sequence }) => {
      this.events$.next({ type: 'config', sequence, status: 'superseded', version: null, error: null });
    });
  }

  start(): void {
    this.#pipelines.start();
    this.#engine.start();
    this.#config.start();
  }

  /**
   * A new desired document (twin file content, the hub's merged desired properties, a direct method). Returns
   * its sequence number: the `config` event with that number tells how it ended.
   */
  applyDesired(document: unknown): number {
    const sequence = ++this.#sequence;
    if (!this.#closing) this.#config.send({ type: 'DESIRED', desired: { document, sequence } });
    return sequence;
  }

  /** A desired document that could not even be read (e.g. a twin file that is not JSON). */
  rejectInput(error: string): void {
    this.#reject(error, null, ++this.#sequence);
  }

  /** Restarts one pipeline now (gracefully: EOS first); false if there is no such pipeline. */
  restartPipeline(name: string): boolean {
    if (!this.#pipeline(name)) return false;
    this.#pipelines.send({ type: 'TO', name, command: { type: 'RESTART' } });
    return true;
  }

  /** Graceful stop: every pipeline gets EOS (bounded wait), then the engine exits. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#config.stop();
    // Stopped pipelines stay in the status, so the last reported document says how each one ended. Recorders get
    // EOS with them, while the engine is up to tell the segment it finalised.
    await Promise.all([
      ...[...pipelineChildren(this.#pipelines.getSnapshot()).keys()].map((name) => this.#stopPipeline(name, false)),
      this.#analyzers.close(),
      this.#recording.stopRecorders(),
    ]);
    await this.#recording.flushFolders();
    await this.#engine.shutdown();
    await this.#recording.close();
    this.security.close();
    this.#publish();
  }

  #reject(error: string, version: number | null, sequence: number): void {
    const message = this.redactor.redact(error);
    this.events$.next({ type: 'config', sequence, status: 'rejected', version, error: message });
    this.#configStatus = { ...this.#configStatus, status: 'rejected', rejectedVersion: version, error: message, at: iso(Date.now()) };
    this.#logger.error({ event: 'config-rejected', version }, `desired config rejected, keeping what runs: ${message}`);
    this.#publish();
  }

  /**
   * Shape, environment, then GStreamer's parser for every pipeline that would start. An engine that is down is no
   * verdict on the document: the check waits for the engine to be back and runs again.
   */
  async #validate({ desired, applied }: ValidateInput): Promise<ResolvedConfig> {
    const next = resolveDesired(parseDesired(desired.document), this.#env, { stateDir: this.#stateDir, recordingStateDir: this.#recordingStateDir });
    this.redactor.add(next.secrets);
    await this.#recording.check(next.recording);
    await this.security.prepare(next.tls);
    const { start } = planSwap(applied, next);
    const checks: Array<{ name: string; launch: string }> = [...start, ...next.extraLaunches];
    for (const { name, launch } of checks) {
      let error: string | null;
      for (;;) {
        try {
          error = await this.#engine.validate(launch);
          break;
        } catch (failure) {
          if (!(failure instanceof EngineUnavailableError) || this.#closing) throw failure;
          this.#logger.warn({ event: 'config-waiting-for-engine' }, `desired config waits for the media engine: ${errorMessage(failure)}`);
          await this.#engineReady();
        }
      }
      if (error !== null) throw new PipelineParseError(name, this.redactor.redact(error));
    }
    // Users' analyzer modules load in a throw-away process; one already running with the same path is not loaded again.
    const running = new Set(applied?.analysis.analyzers.map((a) => a.module) ?? []);
    await checkAnalyzerModules({ ...next.analysis, analyzers: next.analysis.analyzers.filter((a) => a.module !== null && !running.has(a.module)) });
    return next;
  }

  /** Resolves at the engine's next `ready` (or at once if it is up), or when the control plane closes. */
  async #engineReady(): Promise<void> {
    const { state } = this.#engine.status();
    if (state === 'starting' || state === 'running') return;
    await firstValueFrom(this.#engine.lifecycle$.pipe(filter((e) => e.type === 'ready' || e.type === 'stopped')));
  }

  async #apply({ next, applied }: ApplyInput): Promise<void> {
    const plan = planSwap(applied, next);
    // hlssink2, splitmuxsink and filesink do not make folders: the media folder exists before anything writes to it.
    await mkdir(next.http.mediaRoot, { recursive: true }).catch((error: unknown) => {
      this.#logger.warn({ event: 'media-root-failed' }, `cannot create the media folder: ${errorMessage(error)}`);
    });
    // Users and rights first: a viewer who lost access must not keep watching through a slow swap.
    this.security.apply(next);
    await Promise.all(plan.stop.map((name) => this.#stopPipeline(name, true)));
    this.#sendRtsp(this.#rtspConfigOf(next));
    // Taps before pipelines: a pipeline's `inference` branch opens its valve as soon as it is attached.
    this.#analyzers.apply(next.analysis);
    for (const pipeline of plan.start) this.#spawnPipeline(pipeline, next.restartPolicy);
    this.#publish();
    // After the pipelines: a queue that cannot open fails the apply (reported) without holding them up.
    await this.#recording.apply(next.recording).catch((error: unknown) => {
      throw new Error(`recording: ${errorMessage(error)}`);
    });
  }

  /** The engine's RTSP config: the document's, plus the RTSPS server with the certificate in force. */
  #rtspConfigOf(config: ResolvedConfig): RtspConfig {
    const cert = this.security.certificate$.value;
    const port = config.rtsp.tlsPort;
    const tls = cert && port !== null ? { port, address: config.rtsp.address, certificatePem: cert.certificatePem, privateKeyPem: cert.privateKeyPem } : null;
    return { ...config.rtspServer, tls };
  }

  /** Sends the RTSP config when it differs from what the engine has (replayed when a new engine comes up). */
  #sendRtsp(config: RtspConfig): void {
    if (JSON.stringify(config) === JSON.stringify(this.#rtspConfig)) return;
    this.#rtspConfig = config;
    this.#engine.send({ type: 'rtsp', config });
  }

  /** The set of pipeline actors, each with a runner that starts its pipeline in the engine. */
  #createPipelines(): PipelinesActor {
    const runner = pipelineRunLogic(this.#engine, {
      onWarning: (name, message, source) => this.#logger.warn({ pipeline: name, source }, this.redactor.redact(message)),
      onError: (name, message, source, debug) =>
        this.#logger.error({ pipeline: name, source, debug: debug === null ? null : this.redactor.redact(debug) }, this.redactor.redact(message)),
    });
    const probe = sourceProbeLogic();
    return createActor(pipelinesMachine.provide({ actors: { pipeline: pipelineMachine.provide({ actors: { runner, probe } }) } }));
  }

  #pipeline(name: string): PipelineActor | undefined {
    return pipelineChildren(this.#pipelines.getSnapshot()).get(name);
  }

  #spawnPipeline(pipeline: ResolvedPipeline, policy: RestartPolicy): void {
    const log = this.#logger.child({ pipeline: pipeline.name });
    const { name, launch, template, onEos } = pipeline;
    // Spawned and started in one step: the first state change comes before `on` below could see it, and the
    // status published at the end of the swap shows it.
    this.#pipelines.send({ type: 'ADD', input: { name, launch, template, onEos, policy } });
    const actor = this.#pipeline(name)!;
    const announce = () => {
      const snapshot = actor.getSnapshot();
      const state = pipelineStateName(snapshot);
      const { restarts } = snapshot.context;
      if (this.#lastLogged.get(name) !== state) {
        this.#lastLogged.set(name, state);
        const lastError = snapshot.context.lastError ? this.redactor.redact(snapshot.context.lastError.message) : null;
        const waitingFor = state === 'waiting-for-source' && snapshot.context.waitingFor ? this.redactor.redact(snapshot.context.waitingFor) : undefined;
        log.info(
          { event: 'pipeline-state', state, restarts, lastError, template: maskUserinfo(template), ...(waitingFor ? { waitingFor } : {}) },
          `pipeline ${name} ${state}${waitingFor ? ` (${waitingFor})` : ''}`,
        );
        this.events$.next({ type: 'pipeline-state', pipeline: name, state, restarts, lastError, at: iso(Date.now()) });
      }
      this.#publish();
    };
    actor.on('changed', announce);
    announce();
  }

  async #stopPipeline(name: string, forget: boolean): Promise<void> {
    const actor = this.#pipeline(name);
    if (!actor) return;
    this.#pipelines.send({ type: 'TO', name, command: { type: 'STOP', graceful: true } });
    // The machine's own stop bound plus time for the engine to say so.
    const limit = actor.getSnapshot().context.policy.stopTimeoutMs + 2 * STOP_MARGIN_MS;
    await waitFor(actor, (s) => s.matches('stopped'), { timeout: limit }).catch((error: unknown) => {
      this.#logger.warn({ pipeline: name }, `stop did not finish: ${errorMessage(error)}`);
    });
    if (!forget) return;
    this.#pipelines.send({ type: 'REMOVE', name });
    this.#lastLogged.delete(name);
  }

  #onRtsp(event: Extract<EngineEvent, { type: 'rtsp' }>): void {
    const log = this.#logger.child({ component: 'rtsp' });
    if (event.error) log.error({ event: 'rtsp-failed' }, `RTSP server: ${event.error}`);
    // An RTSPS failure leaves plain RTSP serving: both are said.
    if (event.port !== null) {
      const host = displayHost(this.#rtspConfig?.address ?? '0.0.0.0');
      const urls = event.mounts.map((m) => `rtsp://${host}:${event.port}${m}`).join(', ');
      const tlsPort = event.tlsPort ?? null;
      const secure = tlsPort === null ? '' : `; RTSPS: ${event.mounts.map((m) => `rtsps://${host}:${tlsPort}${m}`).join(', ')}`;
      log.info({ event: 'rtsp-listening', port: event.port, tlsPort, mounts: event.mounts }, `RTSP: ${urls} (e.g. ffplay -rtsp_transport tcp ${urls.split(', ')[0]})${secure}`);
    }
    const mounts = Object.fromEntries(event.mounts.map((m) => [m, this.#rtspStatus.mounts[m] ?? { viewers: 0, bytesSent: 0 }]));
    this.#rtspStatus = { port: event.port, ...(event.tlsPort != null ? { tlsPort: event.tlsPort } : {}), error: event.error, mounts };
    this.#publish();
  }

  #onStats(stats: EngineStats): void {
    this.stats$.next(stats);
    // Only a change of viewers republishes the status (reported properties): byte counts move every second.
    let changed = false;
    for (const [path, mount] of Object.entries(this.#rtspStatus.mounts)) {
      const now = stats.rtsp[path] ?? { viewers: 0, bytesSent: 0 };
      if (mount.viewers !== now.viewers) changed = true;
      this.#rtspStatus.mounts[path] = { ...now };
    }
    if (stats.webrtcPeers !== this.#webrtcPeers) {
      this.#webrtcPeers = stats.webrtcPeers;
      changed = true;
    }
    if (changed) this.#publish();
  }

  #buildStatus(): StatusDocument {
    const pipelines: Record<string, PipelineStatus> = {};
    // Before the constructor has made the pipeline set, there are none.
    const children = this.#pipelines ? pipelineChildren(this.#pipelines.getSnapshot()) : new Map<string, PipelineActor>();
    for (const [name, actor] of children) {
      const snapshot = actor.getSnapshot();
      const { restarts, lastError, since, template, waitingFor } = snapshot.context;
      const state = pipelineStateName(snapshot);
      pipelines[name] = {
        state,
        since: iso(since),
        restarts,
        lastError: lastError ? this.redactor.redact(lastError.message) : null,
        lastErrorAt: lastError ? iso(lastError.at) : null,
        pipeline: maskUserinfo(template),
        ...(state === 'waiting-for-source' && waitingFor ? { waitingFor: { source: this.redactor.redact(waitingFor), since: iso(since) } } : {}),
      };
    }
    const engine = this.#engine.status();
    return {
      config: this.#configStatus,
      pipelines,
      engine: { ...engine, lastError: engine.lastError ? this.redactor.redact(engine.lastError) : null },
      rtsp: structuredClone(this.#rtspStatus),
      webrtc: { mode: this.applied$.value?.webrtcResolved.mode ?? null, peers: this.#webrtcPeers },
      analysis: this.#analyzers.status(),
      recording: this.#recording?.status() ?? null,
      auth: this.security.access.mode,
      tls: this.security.tlsStatus,
    };
  }

  #publish(): void {
    this.status$.next(this.#buildStatus());
  }
}
