import { EventEmitter } from 'node:events';
import type { AnalyzerObserverEvents, AnalyzerStatus, AnalyzerSupervisorEvents, AnalyzerSupervisorOptions } from '../../actors/AnalyzerSupervisor.js';

/**
 * An analyzer supervisor for unit tests of the control plane: no process. It records what it is told (start, frame
 * sockets, close) and lets a test play what a real one emits (`ready`, `failedToStart`, `died`, results).
 */
export class FakeAnalyzer extends EventEmitter<AnalyzerSupervisorEvents> {
  readonly observer = new EventEmitter<AnalyzerObserverEvents>();
  readonly options: AnalyzerSupervisorOptions;
  /** Every frame socket port it was given, in order. */
  readonly sources: Array<number | null> = [];
  started = false;
  closed = false;
  #status: Omit<AnalyzerStatus, 'analyzer' | 'port'> = { state: 'up', running: false, pid: null, runtime: null, restarts: 0, lastError: null, fps: 0 };

  constructor(options: AnalyzerSupervisorOptions) {
    super();
    this.options = options;
  }

  get name(): string {
    return this.options.spec.name;
  }

  start(): void {
    this.started = true;
  }

  setSource(port: number | null): void {
    this.sources.push(port);
  }

  status(): AnalyzerStatus {
    return { analyzer: this.name, port: this.sources.at(-1) ?? null, ...this.#status };
  }

  /** Plays the worker coming up. */
  ready(pid = 4242, runtime = 'onnxruntime'): void {
    this.#status = { ...this.#status, state: 'up', running: true, pid, runtime };
    this.emit('ready', { pid, runtime, loadMs: 10 });
  }

  /** Changes what {@link status} says (restarts, last error, state). */
  setStatus(changes: Partial<Omit<AnalyzerStatus, 'analyzer' | 'port'>>): void {
    this.#status = { ...this.#status, ...changes };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.#status = { ...this.#status, state: 'stopped', running: false, pid: null };
    this.emit('stopped');
  }
}
