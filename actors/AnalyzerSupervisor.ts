import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { createActor, fromCallback, type Actor } from 'xstate';
import { EventRateLimiter } from '../analysis/EventRateLimiter.js';
import type { DetectionEvent, FrameResult } from '../analysis/types.js';
import { FRAME_HOST, isAnalyzerReport, type AnalyzerCommand, type AnalyzerReport, type AnalyzerWorkerSpec, type AnalyzerWorkerStats } from '../ipc/analysis.js';
import { engineMachine, engineStateName, type EngineProcessCommand, type EngineProcessEvent, type EngineSupervisionPolicy } from '../machines/engine.js';

/** The compiled worker entry point (this file is dist/actors/AnalyzerSupervisor.js). */
export const ANALYZER_ENTRY = new URL('../analysis/worker.js', import.meta.url);


/** Model loading is the slow part of a start (tfjs-wasm on a 32-bit ARM board: seconds); a crash loop backs off to 30 s. */
/** Silence (the worker reports every second), or one `analyze` call running, this long means it is hung. */
export const DEFAULT_ANALYZER_HANG_MS = 10_000;

export const DEFAULT_ANALYZER_POLICY: EngineSupervisionPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  startTimeoutMs: 60_000,
  shutdownTimeoutMs: 2_000,
  stableAfterMs: 30_000,
  // The machine's silence watchdog: silent this long, then as long again after a ping, is hung.
  hangTimeoutMs: DEFAULT_ANALYZER_HANG_MS / 2,
};

/** HEARD goes to the machine at most this often. */
const HEARD_EVERY_MS = 250;

/** The analyzer process exited or hung before it was ready (model did not load, plugin threw). */
export class AnalyzerStartError extends Error {
  override readonly name = 'AnalyzerStartError';
}

/** The analyzer process was up and died (crash, kill) or was killed for hanging. */
export class AnalyzerDiedError extends Error {
  override readonly name = 'AnalyzerDiedError';
}

export interface AnalyzerSupervisorOptions {
  readonly spec: AnalyzerWorkerSpec;
  readonly policy?: EngineSupervisionPolicy;
  readonly hangTimeoutMs?: number;
  /** Detection events out: at most `max` per `windowMs` (default 20 per 10 s, as pipeline events). */
  readonly events?: { readonly max: number; readonly windowMs: number };
  /** The worker's stdout/stderr lines (stack traces of a crash), for the owner's log. */
  readonly onOutput?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Extra environment for the worker. */
  readonly env?: NodeJS.ProcessEnv;
}

/** Status for reported properties and the status page. */
export interface AnalyzerStatus {
  readonly analyzer: string;
  /** `up` (starting or running), `backoff`, `stopped`. */
  readonly state: string;
  readonly running: boolean;
  readonly pid: number | null;
  readonly runtime: string | null;
  readonly restarts: number;
  readonly lastError: string | null;
  /** Frames analysed per second over the last report. */
  readonly fps: number;
  readonly port: number | null;
}

/** Events for the owner (control plane): lifecycle and what the analyzer found. */
export type AnalyzerSupervisorEvents = {
  ready: [{ pid: number; runtime: string; loadMs: number }];
  /** A start failed (it is retried after a backoff). */
  failedToStart: [AnalyzerStartError];
  /** A running analyzer died or hung (it is restarted after a backoff). */
  died: [AnalyzerDiedError];
  /** Every analysed frame (for viewers' overlays and status). */
  result: [FrameResult];
  /** One detection for IoT Hub routing, rate-limited. */
  detection: [DetectionEvent];
  stopped: [];
};

/** Events for monitoring (metrics), so metrics code never reaches into the supervisor. */
export type AnalyzerObserverEvents = {
  /** One frame analysed: its latency and how many detections of each class. */
  analyzed: [{ analyzer: string; latencyMs: number; classes: Record<string, number> }];
  /** Frames replaced by newer ones while the model was busy (an increment). */
  framesDropped: [{ analyzer: string; frames: number }];
  /** Detection events the rate limit held back (an increment). */
  eventsDropped: [{ analyzer: string; events: number }];
  /** Analysed frames per second, each second. */
  fps: [{ analyzer: string; fps: number }];
  /** The process is going to be restarted. */
  restart: [{ analyzer: string; reason: 'failed-to-start' | 'died' | 'hung' }];
};

/**
 * Supervises one analyzer's worker process the way the media engine is supervised (the same statechart,
 * machines/engine.ts): a start failure and a death at run time are different events, both restart it after a
 * doubling delay, and a worker that goes silent or sits in one `analyze` call for `hangTimeoutMs` is killed and
 * counts as died. The frame socket's port survives restarts: a new worker is told it at once. Pipelines never
 * notice any of it: the engine's tap keeps serving whoever connects.
 *
 * @example
 * const supervisor = new AnalyzerSupervisor({ spec });
 * supervisor.on('detection', (event) => iotHub.sendOutputEvent('analysis', event));
 * supervisor.start();
 * supervisor.setSource(port); // from the engine's `analysis-tap` event
 */
export class AnalyzerSupervisor extends EventEmitter<AnalyzerSupervisorEvents> {
  /** Monitoring events (metrics). */
  readonly observer = new EventEmitter<AnalyzerObserverEvents>();
  readonly #spec: AnalyzerWorkerSpec;
  /** The supervising machine. */
  readonly #actor: Actor<typeof engineMachine>;
  readonly #limiter: EventRateLimiter;
  /** Sends to the worker while its process is there (from the fork on, model loading included). */
  #send: ((command: AnalyzerCommand) => void) | null = null;
  /** The frame socket's port (null: no tap now). */
  #port: number | null = null;
  #runtime: string | null = null;
  #lastStats: { at: number; analyzed: number; dropped: number } | null = null;
  #fps = 0;
  /** Set when the process was killed for hanging: the `died` that follows says so. */
  #hung: string | null = null;
  #started = false;
  #closed = false;

  constructor(options: AnalyzerSupervisorOptions) {
    super();
    this.#spec = options.spec;
    const events = options.events ?? { max: 20, windowMs: 10_000 };
    this.#limiter = new EventRateLimiter(events.max, events.windowMs);
    const logic = engineMachine.provide({ actors: { process: this.#processLogic(options) } });
    const policy = options.policy ?? DEFAULT_ANALYZER_POLICY;
    this.#actor = createActor(logic, {
      input: { policy: options.hangTimeoutMs === undefined ? policy : { ...policy, hangTimeoutMs: options.hangTimeoutMs / 2 } },
    });
    this.#actor.on('failedToStart', (event) => {
      this.observer.emit('restart', { analyzer: this.#spec.name, reason: 'failed-to-start' });
      this.emit('failedToStart', new AnalyzerStartError(`analyzer ${this.#spec.name} failed to start: ${event.reason}`));
    });
    this.#actor.on('died', (event) => {
      const hung = this.#hung ?? (event.cause === 'hung' ? event.reason : null);
      this.#hung = null;
      this.observer.emit('restart', { analyzer: this.#spec.name, reason: hung ? 'hung' : 'died' });
      this.emit('died', new AnalyzerDiedError(`analyzer ${this.#spec.name} ${hung ?? `died: ${event.reason}`}`));
    });
    this.#actor.on('stopped', () => this.emit('stopped'));
  }

  get name(): string {
    return this.#spec.name;
  }

  /** Forks the worker; it is restarted as needed until {@link close}. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#actor.start();
  }

  /** The engine's frame socket for this analyzer (null: none now). Kept for every restart of the worker. */
  setSource(port: number | null): void {
    this.#port = port;
    this.#send?.({ type: 'source', host: FRAME_HOST, port });
  }

  status(): AnalyzerStatus {
    const snapshot = this.#actor.getSnapshot();
    const name = engineStateName(snapshot);
    // `up` while starting or running, as before the engine machine told the two apart.
    const state = name === 'starting' || name === 'running' || name === 'stopping' ? 'up' : name;
    return {
      analyzer: this.#spec.name,
      state,
      running: snapshot.matches({ up: 'running' }),
      pid: snapshot.context.pid,
      runtime: this.#runtime,
      restarts: snapshot.context.restarts,
      lastError: snapshot.context.lastError,
      fps: this.#fps,
      port: this.#port,
    };
  }

  /** Stops the worker for good (asks it to exit, kills it after the policy's shutdown timeout). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const snapshot = this.#actor.getSnapshot();
    if (!this.#started || snapshot.status !== 'active') return;
    const done = new Promise<void>((resolve) => this.once('stopped', () => resolve()));
    this.#actor.send({ type: 'SHUTDOWN' });
    await done;
    this.#actor.stop();
  }

  #onReport(report: AnalyzerReport): void {
    if (report.type === 'ready') {
      this.#runtime = report.runtime;
      this.#lastStats = null;
      this.emit('ready', { pid: report.pid, runtime: report.runtime, loadMs: report.loadMs });
    } else if (report.type === 'result') {
      this.#onResult(report.result);
    } else if (report.type === 'stats') {
      this.#onStats(report.stats);
    }
  }

  #onResult(result: FrameResult): void {
    const classes: Record<string, number> = {};
    for (const d of result.detections) classes[d.class] = (classes[d.class] ?? 0) + 1;
    this.observer.emit('analyzed', { analyzer: result.analyzer, latencyMs: result.latencyMs, classes });
    this.emit('result', result);
    for (const d of result.detections) {
      const taken = this.#limiter.take();
      if (!taken.ok) {
        this.observer.emit('eventsDropped', { analyzer: result.analyzer, events: 1 });
        continue;
      }
      this.emit('detection', {
        type: 'detection',
        analyzer: result.analyzer,
        camera: result.camera,
        timestamp: result.timestamp,
        class: d.class,
        score: d.score,
        x: d.box.x,
        y: d.box.y,
        width: d.box.width,
        height: d.box.height,
        dropped: taken.dropped,
      });
    }
  }

  #onStats(stats: AnalyzerWorkerStats): void {
    const now = performance.now();
    const last = this.#lastStats;
    this.#lastStats = { at: now, analyzed: stats.analyzed, dropped: stats.dropped };
    if (!last) return;
    const seconds = (now - last.at) / 1000;
    this.#fps = seconds > 0 ? Math.round(((stats.analyzed - last.analyzed) / seconds) * 10) / 10 : 0;
    this.observer.emit('fps', { analyzer: this.#spec.name, fps: this.#fps });
    if (stats.dropped > last.dropped) this.observer.emit('framesDropped', { analyzer: this.#spec.name, frames: stats.dropped - last.dropped });
  }

  /** The worker process as the engine machine's `process` actor: READY / EXIT out, SHUTDOWN in. */
  #processLogic(options: AnalyzerSupervisorOptions) {
    const hangTimeoutMs = options.hangTimeoutMs ?? DEFAULT_ANALYZER_HANG_MS;
    const output = options.onOutput ?? (() => undefined);
    return fromCallback<EngineProcessCommand>(({ sendBack, receive }) => {
      let exited = false;
      const child: ChildProcess = fork(ANALYZER_ENTRY, [], {
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        env: { ...process.env, ...options.env },
        serialization: 'json',
      });
      const send = (command: AnalyzerCommand) => {
        if (child.connected) child.send(command);
      };
      for (const stream of ['stdout', 'stderr'] as const) {
        const source = child[stream];
        if (source) createInterface({ input: source }).on('line', (line) => output(line, stream));
      }
      // Silence is the machine's watchdog (HEARD); a worker that keeps reporting but sits in one frame is this one's.
      let lastHeard = 0;
      let busyMs = 0;
      let ready = false;
      const watchdog = setInterval(() => {
        if (!ready || exited || busyMs <= hangTimeoutMs) return;
        this.#hung = `hung: one frame took over ${busyMs} ms`;
        output(`analyzer ${this.#spec.name} ${this.#hung}: killing it`, 'stderr');
        child.kill('SIGKILL');
      }, Math.min(1_000, hangTimeoutMs / 2));
      child.on('message', (message: unknown) => {
        const now = Date.now();
        if (now - lastHeard >= HEARD_EVERY_MS) {
          lastHeard = now;
          sendBack({ type: 'HEARD' } satisfies EngineProcessEvent);
        }
        if (!isAnalyzerReport(message)) return;
        if (message.type === 'stats') busyMs = message.stats.busyMs;
        if (message.type === 'ready') {
          ready = true;
          this.#send = send;
          sendBack({ type: 'READY', pid: message.pid } satisfies EngineProcessEvent);
        }
        if (message.type === 'log') output(`analyzer ${this.#spec.name}: ${message.msg}`, 'stderr');
        this.#onReport(message);
      });
      child.on('error', (error) => output(`analyzer process error: ${error.message}`, 'stderr'));
      child.on('exit', (code, signal) => {
        exited = true;
        clearInterval(watchdog);
        if (this.#send === send) this.#send = null;
        sendBack({ type: 'EXIT', code, signal } satisfies EngineProcessEvent);
      });
      send({ type: 'init', spec: this.#spec });
      // Before ready too: the worker connects while its model loads, and a frame is waiting when it is up. A port
      // that comes while it loads goes to it at once too (setSource), not only to the next process.
      send({ type: 'source', host: FRAME_HOST, port: this.#port });
      this.#send = send;
      receive((command) => {
        if (command.type === 'SHUTDOWN') send({ type: 'shutdown' });
      });
      return () => {
        clearInterval(watchdog);
        if (this.#send === send) this.#send = null;
        if (!exited) child.kill('SIGKILL');
      };
    });
  }
}
