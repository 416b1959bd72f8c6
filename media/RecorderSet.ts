import { mkdirSync } from 'node:fs';
import type { RecordEvent, RecorderSpec } from '../ipc/protocol.js';
import { DEFAULT_RESTART_POLICY } from '../config/defaults.js';
import { backoffDelay } from '../machines/backoff.js';
import { Recorder } from './Recorder.js';
import type { SampleHub } from './SampleHub.js';

/** Restart delays of a failed recorder: the pipelines' doubling formula and defaults. */
const POLICY = DEFAULT_RESTART_POLICY;

const same = (a: RecorderSpec, b: RecorderSpec) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The engine's recorders, as the control plane's `record-configure` command lists them: new specs start, changed
 * or removed ones stop gracefully (their open segment is finished and reported), and a recorder that fails is
 * started again after a doubling delay. Every callback becomes a {@link RecordEvent} through `send`.
 *
 * @example
 * const recorders = new RecorderSet(hub, send);
 * // in handle(): case 'record-configure': recorders.configure(command.recorders); return;
 * // in shutdown(): await recorders.stop(timeoutMs) before process.exit
 */
export class RecorderSet {
  readonly #hub: SampleHub;
  readonly #send: (event: RecordEvent) => void;
  /** The recorders' own warnings (audio that MP4 cannot hold, no EOS in time). */
  readonly #log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
  /** Running recorders by name, with the spec they run and their consecutive failures. */
  readonly #recorders = new Map<string, { spec: RecorderSpec; recorder: Recorder; failures: number; retry: NodeJS.Timeout | null }>();
  /** Graceful stops under way (a removed spec, a restart). */
  readonly #stopping = new Set<Promise<void>>();
  #closed = false;

  constructor(hub: SampleHub, send: (event: RecordEvent) => void, log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void = () => undefined) {
    this.#hub = hub;
    this.#send = send;
    this.#log = log;
  }

  get size(): number {
    return this.#recorders.size;
  }

  configure(specs: readonly RecorderSpec[]): void {
    if (this.#closed) return;
    const wanted = new Map(specs.map((s) => [s.name, s]));
    for (const [name, entry] of this.#recorders) {
      const spec = wanted.get(name);
      if (spec && same(spec, entry.spec)) continue;
      this.#remove(name);
    }
    for (const spec of specs) if (!this.#recorders.has(spec.name)) this.#start(spec, 0);
  }

  /** Stops every recorder gracefully (bounded by `timeoutMs`): their open segments are reported before this resolves. */
  async stop(timeoutMs: number): Promise<void> {
    this.#closed = true;
    for (const name of [...this.#recorders.keys()]) this.#remove(name, timeoutMs);
    await Promise.allSettled([...this.#stopping]);
  }

  #remove(name: string, timeoutMs = 5_000): void {
    const entry = this.#recorders.get(name);
    if (!entry) return;
    this.#recorders.delete(name);
    if (entry.retry) clearTimeout(entry.retry);
    const stopping = entry.recorder.stop(timeoutMs);
    this.#stopping.add(stopping);
    void stopping.finally(() => this.#stopping.delete(stopping));
  }

  #start(spec: RecorderSpec, failures: number): void {
    try {
      mkdirSync(spec.dir, { recursive: true });
    } catch (error) {
      this.#send({ type: 'record-state', recorder: spec.name, state: 'failed', error: `${spec.dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` });
    }
    const entry: { spec: RecorderSpec; recorder: Recorder; failures: number; retry: NodeJS.Timeout | null } = {
      spec,
      failures,
      retry: null,
      recorder: new Recorder({
        ...spec,
        hub: this.#hub,
        onLog: (level, msg) => this.#log(level, msg),
        onOpened: (path, startMs) => this.#send({ type: 'record-segment-opened', recorder: spec.name, stream: spec.stream, path, startMs }),
        onSegment: (segment) => {
          entry.failures = 0;
          this.#send({ type: 'record-segment', segment });
        },
        onState: (state, error) => {
          this.#send({ type: 'record-state', recorder: spec.name, state, error });
          if (state === 'failed' && this.#recorders.get(spec.name) === entry && !entry.retry) {
            const delay = backoffDelay(POLICY, entry.failures);
            entry.retry = setTimeout(() => {
              if (this.#recorders.get(spec.name) !== entry || this.#closed) return;
              this.#recorders.delete(spec.name);
              void entry.recorder.stop(1_000).finally(() => {
                if (!this.#closed && !this.#recorders.has(spec.name)) this.#start(spec, entry.failures + 1);
              });
            }, delay);
          }
        },
      }),
    };
    this.#recorders.set(spec.name, entry);
    entry.recorder.start();
  }
}
