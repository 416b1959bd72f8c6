import type { Logger } from 'pino';
import { BehaviorSubject, Subject } from 'rxjs';
import { createActor, fromPromise, waitFor } from 'xstate';
import {
  displayHost,
  displayTemplate,
  parseDesired,
  planSwap,
  resolveDesired,
  type ResolvedConfig,
  type ResolvedPipeline,
  type RestartPolicy,
} from '../config/desired.js';
import { errorMessage, PipelineParseError } from '../config/errors.js';
import { Redactor } from '../config/redact.js';
import { configMachine, type ApplyInput, type ConfigActor, type ValidateInput } from '../machines/config.js';
import { pipelineMachine, pipelineStateName, type PipelineActor } from '../machines/pipeline.js';
import type { EngineSupervisionPolicy } from '../machines/engine.js';
import type { EngineEvent, EngineStats, RtspConfig } from '../ipc/protocol.js';
import { EngineClient } from './EngineClient.js';
import { pipelineRunnerLogic } from './pipelineRunner.js';

/** Per pipeline, as reported. */
export interface PipelineStatus {
  state: string;
  since: string;
  restarts: number;
  lastError: string | null;
  lastErrorAt: string | null;
  /** The twin's text, variables unexpanded, URI userinfo masked. */
  pipeline: string;
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
  engine: { state: string; pid: number | null; restarts: number; lastError: string | null };
  /** The RTSP server: bound port (null when it serves nothing) and viewers per mount. */
  rtsp: { port: number | null; error: string | null; mounts: Record<string, { viewers: number; bytesSent: number }> };
  /** WebRTC: the mode in use (null: off) and the peers alive in the engine. */
  webrtc: { mode: 'shared' | 'per-viewer' | null; peers: number };
}

/** What happened, for outputs that report events (IoT Hub output messages, the status page). */
export type ControlPlaneEvent =
  | { type: 'pipeline-state'; pipeline: string; state: string; restarts: number; lastError: string | null; at: string }
  | { type: 'config'; sequence: number; status: 'applied' | 'rejected' | 'superseded'; version: number | null; error: string | null };

export interface ControlPlaneOptions {
  readonly logger: Logger;
  /** Where `$VAR`s come from. */
  readonly env?: NodeJS.ProcessEnv;
  readonly enginePolicy?: EngineSupervisionPolicy;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * The control plane's root: desired documents in (twin file, IoT Hub, direct method), validated and swapped by
 * the config machine onto pipeline actors that run in the supervised media engine; the status document out.
 * Everything that leaves it (logs, status) has gone through the {@link Redactor}.
 */
export class ControlPlane {
  readonly redactor = new Redactor();
  readonly engine: EngineClient;
  /** The status document, updated on every change. */
  readonly status$: BehaviorSubject<StatusDocument>;
  /** State changes and config outcomes, as they happen. */
  readonly events$ = new Subject<ControlPlaneEvent>();
  /** The config that runs now (null until the first one is applied). */
  readonly applied$ = new BehaviorSubject<ResolvedConfig | null>(null);
  /** The engine's latest counters (sample streams, RTSP viewers); null until the first report. */
  readonly stats$ = new BehaviorSubject<EngineStats | null>(null);
  readonly #logger: Logger;
  readonly #env: NodeJS.ProcessEnv;
  readonly #config: ConfigActor;
  /** Running pipeline actors and the twin text they came from, by name. */
  readonly #pipelines = new Map<string, { readonly actor: PipelineActor; readonly template: string }>();
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
    this.status$ = new BehaviorSubject<StatusDocument>(this.#buildStatus());
    const engineLog = this.#logger.child({ component: 'engine' });
    this.engine = new EngineClient({
      policy: options.enginePolicy,
      hangTimeoutMs: this.#env.ENGINE_HANG_TIMEOUT_MS ? Number(this.#env.ENGINE_HANG_TIMEOUT_MS) : undefined,
      onOutput: (line) => engineLog.info({ stream: 'gstreamer' }, this.redactor.redact(line)),
    });
    this.engine.events$.subscribe((event) => {
      if (event.type === 'log') engineLog[event.level]({ pipeline: event.pipeline }, this.redactor.redact(event.msg));
      else if (event.type === 'rtsp') this.#onRtsp(event);
      else if (event.type === 'stats') this.#onStats(event.stats);
    });
    this.engine.lifecycle$.subscribe((event) => {
      if (event.type === 'ready') {
        engineLog.info({ pid: event.pid, event: 'engine-ready' }, 'media engine ready');
        if (this.#rtspConfig) this.engine.send({ type: 'rtsp', config: this.#rtspConfig });
        for (const { actor } of this.#pipelines.values()) actor.send({ type: 'ENGINE_READY' });
      } else if (event.type === 'failedToStart') {
        engineLog.error({ event: 'engine-failed-to-start', reason: event.reason }, `media engine failed to start: ${event.reason}`);
      } else if (event.type === 'died') {
        engineLog.error({ event: 'engine-died', reason: event.reason }, `media engine died: ${event.reason}`);
      }
      this.#publish();
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
        warnings: config.unknownKeys.map((k) => `unknown key "${k}" ignored`),
        at: iso(Date.now()),
      };
      this.#logger.info({ event: 'config-applied', version: config.version, pipelines: config.pipelines.map((p) => p.name) }, 'desired config applied');
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
    this.engine.start();
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

  /** Restarts one pipeline now; false if there is no such pipeline. */
  restartPipeline(name: string): boolean {
    const entry = this.#pipelines.get(name);
    if (!entry) return false;
    entry.actor.send({ type: 'RESTART' });
    return true;
  }

  /** Graceful stop: every pipeline gets EOS (bounded wait), then the engine exits. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#config.stop();
    // Stopped pipelines stay in the status, so the last reported document says how each one ended.
    await Promise.all([...this.#pipelines.keys()].map((name) => this.#stopPipeline(name, false)));
    await this.engine.shutdown();
    this.#publish();
  }

  #reject(error: string, version: number | null, sequence: number): void {
    const message = this.redactor.redact(error);
    this.events$.next({ type: 'config', sequence, status: 'rejected', version, error: message });
    this.#configStatus = { ...this.#configStatus, status: 'rejected', rejectedVersion: version, error: message, at: iso(Date.now()) };
    this.#logger.error({ event: 'config-rejected', version }, `desired config rejected, keeping what runs: ${message}`);
    this.#publish();
  }

  async #validate({ desired, applied }: ValidateInput): Promise<ResolvedConfig> {
    const next = resolveDesired(parseDesired(desired.document), this.#env);
    this.redactor.add(next.secrets);
    const { start } = planSwap(applied, next);
    const checks: Array<{ name: string; launch: string }> = [...start, ...next.extraLaunches];
    for (const { name, launch } of checks) {
      const error = await this.engine.validate(launch);
      if (error !== null) throw new PipelineParseError(name, this.redactor.redact(error));
    }
    return next;
  }

  async #apply({ next, applied }: ApplyInput): Promise<void> {
    const plan = planSwap(applied, next);
    await Promise.all(plan.stop.map((name) => this.#stopPipeline(name, true)));
    if (JSON.stringify(next.rtspServer) !== JSON.stringify(this.#rtspConfig)) {
      this.#rtspConfig = next.rtspServer;
      this.engine.send({ type: 'rtsp', config: next.rtspServer });
    }
    for (const pipeline of plan.start) this.#spawnPipeline(pipeline, next.restartPolicy);
    this.#publish();
  }

  #spawnPipeline(pipeline: ResolvedPipeline, policy: RestartPolicy): void {
    const log = this.#logger.child({ pipeline: pipeline.name });
    const logic = pipelineMachine.provide({
      actors: {
        runner: pipelineRunnerLogic(this.engine, {
          onWarning: (_name, message, source) => log.warn({ source }, this.redactor.redact(message)),
          onError: (_name, message, source, debug) =>
            log.error({ source, debug: debug === null ? null : this.redactor.redact(debug) }, this.redactor.redact(message)),
        }),
      },
    });
    const actor = createActor(logic, { input: { name: pipeline.name, launch: pipeline.launch, onEos: pipeline.onEos, policy } });
    this.#pipelines.set(pipeline.name, { actor, template: pipeline.template });
    actor.on('changed', () => {
      const snapshot = actor.getSnapshot();
      const state = pipelineStateName(snapshot);
      const { restarts } = snapshot.context;
      if (this.#lastLogged.get(pipeline.name) !== state) {
        this.#lastLogged.set(pipeline.name, state);
        const lastError = snapshot.context.lastError ? this.redactor.redact(snapshot.context.lastError.message) : null;
        log.info(
          {
            event: 'pipeline-state',
            state,
            restarts,
            lastError,
            template: displayTemplate(pipeline.template),
          },
          `pipeline ${pipeline.name} ${state}`,
        );
        this.events$.next({
          type: 'pipeline-state',
          pipeline: pipeline.name,
          state,
          restarts,
          lastError,
          at: iso(Date.now()),
        });
      }
      this.#publish();
    });
    actor.start();
    actor.send({ type: 'START' });
  }

  async #stopPipeline(name: string, forget: boolean): Promise<void> {
    const actor = this.#pipelines.get(name)?.actor;
    if (!actor) return;
    actor.send({ type: 'STOP', graceful: true });
    const limit = actor.getSnapshot().context.policy.stopTimeoutMs + 5_000;
    await waitFor(actor, (s) => s.matches('stopped'), { timeout: limit }).catch((error: unknown) => {
      this.#logger.warn({ pipeline: name }, `stop did not finish: ${errorMessage(error)}`);
    });
    actor.stop();
    if (!forget) return;
    this.#pipelines.delete(name);
    this.#lastLogged.delete(name);
  }

  #onRtsp(event: Extract<EngineEvent, { type: 'rtsp' }>): void {
    const log = this.#logger.child({ component: 'rtsp' });
    if (event.error) log.error({ event: 'rtsp-failed' }, `RTSP server: ${event.error}`);
    else if (event.port !== null) {
      const host = displayHost(this.#rtspConfig?.address ?? '0.0.0.0');
      const urls = event.mounts.map((m) => `rtsp://${host}:${event.port}${m}`).join(', ');
      log.info({ event: 'rtsp-listening', port: event.port, mounts: event.mounts }, `RTSP: ${urls} (e.g. ffplay -rtsp_transport tcp ${urls.split(', ')[0]})`);
    }
    const mounts = Object.fromEntries(event.mounts.map((m) => [m, this.#rtspStatus.mounts[m] ?? { viewers: 0, bytesSent: 0 }]));
    this.#rtspStatus = { port: event.port, error: event.error, mounts };
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
    for (const [name, { actor, template }] of this.#pipelines) {
      const snapshot = actor.getSnapshot();
      const { restarts, lastError, since } = snapshot.context;
      pipelines[name] = {
        state: pipelineStateName(snapshot),
        since: iso(since),
        restarts,
        lastError: lastError ? this.redactor.redact(lastError.message) : null,
        lastErrorAt: lastError ? iso(lastError.at) : null,
        pipeline: displayTemplate(template),
      };
    }
    const engine = this.engine?.status() ?? { state: 'starting', pid: null, restarts: 0, lastError: null };
    return {
      config: this.#configStatus,
      pipelines,
      engine: { ...engine, lastError: engine.lastError ? this.redactor.redact(engine.lastError) : null },
      rtsp: structuredClone(this.#rtspStatus),
      webrtc: { mode: this.applied$.value?.webrtcResolved.mode ?? null, peers: this.#webrtcPeers },
    };
  }

  #publish(): void {
    this.status$.next(this.#buildStatus());
  }
}
