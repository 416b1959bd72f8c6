import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { Subject } from 'rxjs';
import type { DetectionEvent, FrameResult } from '../analysis/types.js';
import { tapSpecOf, workerSpecOf, type AnalysisSettings, type AnalyzerSettings } from '../config/analysis.js';
import { errorMessage } from '../config/errors.js';
import type { EngineCommand, EngineEvent } from '../ipc/protocol.js';
import { AnalyzerSupervisor, type AnalyzerObserverEvents, type AnalyzerSupervisorEvents, type AnalyzerSupervisorOptions } from './AnalyzerSupervisor.js';

/** What the control plane uses of an analyzer's supervisor ({@link AnalyzerSupervisor}; unit tests give a fake). */
export type AnalyzerHandle = Pick<AnalyzerSupervisor, 'name' | 'observer' | 'start' | 'setSource' | 'status' | 'close'> &
  Pick<EventEmitter<AnalyzerSupervisorEvents>, 'on'>;

/** One analyzer in the status document (reported properties, /api/status). */
export interface AnalysisStatus {
  /** `starting` (model loading), `running`, `backoff` (restarting after a failure), `stopping`, `stopped`. */
  readonly state: string;
  /** What it reads: `element people` (an `inference name=people`) or `stream video` (a named appsink). */
  readonly source: string;
  readonly pid: number | null;
  /** The runtime that loaded (`onnxruntime`, `tfjs-wasm`, `plugin /path.js`); null until it has. */
  readonly runtime: string | null;
  /** Frames analysed per second, over the last second it reported. */
  readonly fps: number;
  readonly restarts: number;
  /** Why the analyzer process last failed to start or died. */
  readonly lastError: string | null;
  /** The decoder the engine's tap plugged (e.g. `avdec_h264`, `nvh264dec`); null for raw video or not yet known. */
  readonly decoder: string | null;
  /** Why the engine's tap last failed (it retries by itself); null while it works. */
  readonly tapError: string | null;
}

/** What analyzers tell the outputs: detections for IoT Hub, and analyzers going down (apart: start vs run time). */
export type AnalysisEvent =
  | DetectionEvent
  | { type: 'analyzer-down'; analyzer: string; cause: 'failed-to-start' | 'died'; reason: string; at: string };

export interface AnalyzersOptions {
  readonly logger: Logger;
  /** Cleans log lines and status fields (the control plane's redactor). */
  readonly redact: (text: string) => string;
  /** Sends a command to the media engine; false when none is up (the command is replayed at its next `ready`). */
  readonly send: (command: EngineCommand) => boolean;
  /** Makes an analyzer's supervisor (default: a real {@link AnalyzerSupervisor}, one worker process each). */
  readonly create?: (options: AnalyzerSupervisorOptions) => AnalyzerHandle;
}

/** One analyzer the control plane runs. */
interface Entry {
  settings: AnalyzerSettings;
  readonly supervisor: AnalyzerHandle;
  /** The engine's frame socket for it (null: no tap now). */
  port: number | null;
  decoder: string | null;
  tapError: string | null;
  /** The fps the status document shows: republished only when it moves by a whole frame or a quarter. */
  shownFps: number;
  /** Its process is being stopped (removed, replaced, or the module stopping). */
  stopping: boolean;
}

/**
 * Errors in the status document are cut to this: 16 analyzers' errors must leave room for the pipelines in IoT Hub's
 * 32 KB of reported properties (actors/reportedPatch.ts); the whole text is in the log.
 */
const MAX_STATUS_ERROR = 240;

function clip(text: string | null): string | null {
  return text === null || text.length <= MAX_STATUS_ERROR ? text : `${text.slice(0, MAX_STATUS_ERROR - 1)}…`;
}

/** The observer's event names, forwarded from each supervisor to {@link Analyzers.observer}. */
const OBSERVED = ['analyzed', 'framesDropped', 'eventsDropped', 'fps', 'restart'] as const satisfies ReadonlyArray<keyof AnalyzerObserverEvents>;

/** Settings that the worker process runs with: a change of these replaces the process, others only the tap. */
function workerKey(settings: AnalyzerSettings): string {
  return JSON.stringify({ worker: workerSpecOf(settings), events: settings.events });
}

/**
 * The control plane's analyzers: one supervised worker process per `analyzers` entry of the applied config
 * (started, stopped and replaced as it changes), the engine's taps kept in line with them (the `analysis` command,
 * sent on apply and to every new engine), and each tap's frame socket handed to its analyzer. What they find goes
 * out one way: {@link events$} (detections, analyzers down), {@link results$} (every analysed frame, for viewers'
 * overlays), {@link observer} (metrics), {@link changed$} (the status document).
 *
 * @example
 * const analyzers = new Analyzers({ logger, redact, send: (command) => engine.send(command) });
 * analyzers.apply(config.analysis);          // on every applied config
 * analyzers.engineReady();                    // on every engine `ready`
 * analyzers.onEngineEvent(event);             // `analysis-tap`, `analysis-decoder`, `down`
 */
export class Analyzers {
  /** Detections (rate-limited per analyzer) and analyzers going down. */
  readonly events$ = new Subject<AnalysisEvent>();
  /** Every analysed frame's result, detections or not (boxes drawn over the video must be cleared too). */
  readonly results$ = new Subject<FrameResult>();
  /** Something in {@link status} changed. */
  readonly changed$ = new Subject<void>();
  /** Every supervisor's monitoring events, for metrics (actors/analysisMetrics.ts). */
  readonly observer = new EventEmitter<AnalyzerObserverEvents>();
  readonly #log: Logger;
  /** The control plane's redactor: workers' output and errors may quote expanded values. */
  readonly #redact: (text: string) => string;
  /** To the media engine (false while none is up). */
  readonly #send: (command: EngineCommand) => boolean;
  /** Makes a supervisor for an analyzer. */
  readonly #create: (options: AnalyzerSupervisorOptions) => AnalyzerHandle;
  /** The analyzers running, by name. */
  readonly #entries = new Map<string, Entry>();
  /** The `analysis` command the engine was given last (replayed to a new engine); null before any config. */
  #command: Extract<EngineCommand, { type: 'analysis' }> | null = null;
  /** Supervisors closing: {@link close} waits for them too. */
  readonly #closing = new Set<Promise<void>>();
  #closed = false;

  constructor(options: AnalyzersOptions) {
    this.#log = options.logger.child({ component: 'analysis' });
    this.#redact = options.redact;
    this.#send = options.send;
    this.#create = options.create ?? ((o) => new AnalyzerSupervisor(o));
  }

  /**
   * Runs the analyzers of an applied config: new ones start, removed ones stop, ones whose model settings changed
   * are replaced (a new process), ones where only the tap changed (fps, key frames) keep their process. The engine
   * gets the whole set of taps when it changed.
   */
  apply(settings: AnalysisSettings): void {
    if (this.#closed) return;
    const wanted = new Map(settings.analyzers.map((a) => [a.name, a]));
    for (const [name, entry] of [...this.#entries]) {
      const next = wanted.get(name);
      if (next && workerKey(next) === workerKey(entry.settings)) {
        entry.settings = next;
        continue;
      }
      this.#entries.delete(name);
      this.#stop(entry, next ? 'replaced' : 'removed');
      // The tap outlives the process when only the model changed: the new one reads the same socket.
      if (next && JSON.stringify(tapSpecOf(next)) === JSON.stringify(tapSpecOf(entry.settings))) this.#start(next, entry);
    }
    for (const analyzer of settings.analyzers) if (!this.#entries.has(analyzer.name)) this.#start(analyzer, null);
    const command: Extract<EngineCommand, { type: 'analysis' }> = { type: 'analysis', taps: settings.analyzers.map(tapSpecOf), decoder: settings.decoder };
    if (JSON.stringify(command) !== JSON.stringify(this.#command)) {
      this.#command = command;
      this.#send(command);
    }
    this.changed$.next();
  }

  /** A new engine is up: it has no taps yet. */
  engineReady(): void {
    if (this.#command && !this.#closed) this.#send(this.#command);
  }

  /** The engine's analysis events, and `down` (its taps are gone with it). */
  onEngineEvent(event: Extract<EngineEvent, { type: 'analysis-tap' | 'analysis-decoder' }> | { type: 'down' }): void {
    if (event.type === 'down') {
      for (const entry of this.#entries.values()) this.#setPort(entry, null);
      this.changed$.next();
    } else if (event.type === 'analysis-tap') {
      const entry = this.#entries.get(event.analyzer);
      if (!entry) return;
      const error = event.error === null ? null : this.#redact(event.error);
      if (error !== null && error !== entry.tapError) {
        this.#log.warn({ event: 'analysis-tap-failed', analyzer: event.analyzer }, `analysis tap of ${event.analyzer} failed, retrying: ${error}`);
      }
      if (event.decoder !== null && event.decoder !== entry.decoder) {
        this.#log.info({ event: 'analysis-decoder-picked', analyzer: event.analyzer, decoder: event.decoder }, `analyzer ${event.analyzer} decodes with ${event.decoder}`);
      }
      entry.tapError = error;
      entry.decoder = event.decoder;
      this.#setPort(entry, event.port);
      this.changed$.next();
    } else {
      const { choice, raised, lowered, missing } = event;
      if (missing.length > 0) {
        this.#log.warn({ event: 'analysis-decoder', choice, missing }, `decoder "${choice}": no such decoder in this GStreamer (no hardware or plugin); decodebin picks as for "auto"`);
      } else {
        this.#log.info({ event: 'analysis-decoder', choice, raised, lowered }, `decoder "${choice}": ${raised.length} ranked up, ${lowered.length} ranked out`);
      }
    }
  }

  status(): Record<string, AnalysisStatus> {
    const out: Record<string, AnalysisStatus> = {};
    for (const [name, entry] of this.#entries) {
      const s = entry.supervisor.status();
      const { source } = entry.settings;
      out[name] = {
        state: s.state === 'stopped' ? 'stopped' : entry.stopping ? 'stopping' : s.running ? 'running' : s.state === 'up' ? 'starting' : s.state,
        source: source.kind === 'element' ? `element ${source.element}` : `stream ${source.stream}`,
        pid: s.pid,
        runtime: s.runtime,
        fps: entry.shownFps,
        restarts: s.restarts,
        lastError: s.lastError === null ? null : clip(this.#redact(s.lastError)),
        decoder: entry.decoder,
        tapError: clip(entry.tapError),
      };
    }
    return out;
  }

  /**
   * Stops every analyzer's process (bounded by the supervisors' shutdown timeout). They stay in the status, so the
   * last reported document says how each one ended. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.#closed) for (const entry of this.#entries.values()) this.#stop(entry, 'stopping');
    this.#closed = true;
    await Promise.all([...this.#closing]);
    this.changed$.next();
  }

  #setPort(entry: Entry, port: number | null): void {
    if (entry.port === port) return;
    entry.port = port;
    entry.supervisor.setSource(port);
  }

  /** Starts an analyzer's process; `previous` is the entry it replaces when the engine's tap stays as it was. */
  #start(settings: AnalyzerSettings, previous: Entry | null): void {
    const name = settings.name;
    const log = this.#log.child({ analyzer: name });
    const supervisor = this.#create({
      spec: workerSpecOf(settings),
      events: settings.events,
      onOutput: (line, stream) => log.info({ stream }, this.#redact(line)),
    });
    const entry: Entry = { settings, supervisor, port: null, decoder: previous?.decoder ?? null, tapError: previous?.tapError ?? null, shownFps: 0, stopping: false };
    this.#entries.set(name, entry);
    const current = () => this.#entries.get(name) === entry;
    supervisor.on('ready', ({ pid, runtime, loadMs }) => {
      log.info({ event: 'analyzer-ready', pid, runtime, loadMs }, `analyzer ${name} ready (${runtime}, loaded in ${loadMs} ms)`);
      if (current()) this.changed$.next();
    });
    supervisor.on('failedToStart', (error) => this.#down(entry, 'failed-to-start', error.message));
    supervisor.on('died', (error) => this.#down(entry, 'died', error.message));
    supervisor.on('result', (result) => {
      if (current()) this.results$.next(result);
    });
    supervisor.on('detection', (detection) => {
      if (current()) this.events$.next(detection);
    });
    const forward = this.observer.emit.bind(this.observer) as (event: string, ...args: unknown[]) => boolean;
    for (const event of OBSERVED) supervisor.observer.on(event, (...args: unknown[]) => forward(event, ...args));
    supervisor.observer.on('fps', ({ fps }) => {
      // Reported properties go to IoT Hub: a steady 4.9-5.1 fps must not rewrite them every second.
      if (!current() || Math.abs(fps - entry.shownFps) < Math.max(1, entry.shownFps / 4)) return;
      entry.shownFps = fps;
      this.changed$.next();
    });
    if (previous) this.#setPort(entry, previous.port);
    supervisor.start();
    log.info({ event: 'analyzer-starting', source: settings.source }, `analyzer ${name} starting`);
  }

  #down(entry: Entry, cause: 'failed-to-start' | 'died', reason: string): void {
    const name = entry.settings.name;
    const text = this.#redact(reason);
    this.#log.error({ event: cause === 'died' ? 'analyzer-died' : 'analyzer-failed-to-start', analyzer: name }, `${text}; restarting it (pipelines are not affected)`);
    if (this.#entries.get(name) !== entry) return;
    this.events$.next({ type: 'analyzer-down', analyzer: name, cause, reason: text, at: new Date().toISOString() });
    this.changed$.next();
  }

  #stop(entry: Entry, why: string): void {
    const name = entry.settings.name;
    entry.stopping = true;
    this.#log.info({ event: 'analyzer-stopping', analyzer: name, why }, `analyzer ${name} stopping (${why})`);
    const closing = entry.supervisor.close().catch((error: unknown) => {
      this.#log.warn({ analyzer: name }, `analyzer ${name} did not stop cleanly: ${this.#redact(errorMessage(error))}`);
    });
    this.#closing.add(closing);
    void closing.finally(() => this.#closing.delete(closing));
  }
}
