import { Subject } from 'rxjs';
import type { EngineStatus, EngineStreamEvent, MediaEngine } from '../../actors/EngineClient.js';
import { EngineUnavailableError } from '../../actors/EngineClient.js';
import type { EngineCommand } from '../../ipc/protocol.js';
import type { EngineEmitted, EngineStateName } from '../../machines/engine.js';

/**
 * A media engine for unit tests of the control plane: no process, no GStreamer. It answers as the real one does
 * (a started pipeline reports `playing`, a stopped one `stopped`, launch lines containing `nosuch` do not parse),
 * records every command, and can go down and come back on request.
 */
export class FakeEngine implements MediaEngine {
  readonly events$ = new Subject<EngineStreamEvent>();
  readonly lifecycle$ = new Subject<EngineEmitted>();
  /** Every command sent while up. */
  readonly commands: EngineCommand[] = [];
  #state: EngineStateName = 'starting';
  #restarts = 0;
  #lastError: string | null = null;
  /** Recorders the last `record-configure` asked for (a new engine has none). */
  #recorders = new Set<string>();
  /** Validations waiting for an answer (see {@link holdValidations}). */
  #held: Array<() => void> | null = null;

  start(): void {
    this.up();
  }

  /** The engine is (back) up. */
  up(): void {
    this.#state = 'running';
    this.lifecycle$.next({ type: 'ready', pid: 1000 + this.#restarts });
  }

  /** The engine dies: everything waiting hears `down`, commands are dropped until {@link up}. */
  die(reason = 'killed by signal SIGSEGV'): void {
    this.#state = 'backoff';
    this.#recorders.clear();
    this.#restarts++;
    this.#lastError = `died: ${reason}`;
    this.events$.next({ type: 'down', reason });
    this.lifecycle$.next({ type: 'died', reason, cause: 'exited' });
  }

  /** Validations from now on wait until {@link releaseValidations}. */
  holdValidations(): void {
    this.#held = [];
  }

  releaseValidations(): void {
    const held = this.#held ?? [];
    this.#held = null;
    for (const release of held) release();
  }

  send(command: EngineCommand): boolean {
    if (this.#state !== 'running') return false;
    this.commands.push(command);
    // Answers come on a later tick, as they do over IPC.
    setImmediate(() => this.#answer(command));
    return true;
  }

  async validate(launch: string): Promise<string | null> {
    if (this.#state !== 'running') throw new EngineUnavailableError('media engine is not running');
    if (this.#held) {
      const held = this.#held;
      await new Promise<void>((resolve) => held.push(resolve));
    }
    if (this.#state !== 'running') throw new EngineUnavailableError('media engine went down: killed');
    return launch.includes('nosuch') ? `no element "nosuch"` : null;
  }

  status(): EngineStatus {
    return { state: this.#state, pid: this.#state === 'running' ? 1000 + this.#restarts : null, restarts: this.#restarts, lastError: this.#lastError };
  }

  async shutdown(): Promise<void> {
    this.#state = 'stopped';
    this.lifecycle$.next({ type: 'stopped' });
  }

  #answer(command: EngineCommand): void {
    if (this.#state !== 'running') return;
    if (command.type === 'start') {
      this.events$.next({ type: 'state', pipeline: command.pipeline, run: command.run, state: 'playing' });
    } else if (command.type === 'stop') {
      this.events$.next({ type: 'stopped', pipeline: command.pipeline, run: command.run, eos: command.graceful });
    } else if (command.type === 'record-configure') {
      // As RecorderSet: a removed recorder stops (its segment finished), a new one waits for its stream.
      const wanted = new Set(command.recorders.map((r) => r.name));
      for (const name of this.#recorders) {
        if (wanted.has(name)) continue;
        this.#recorders.delete(name);
        this.events$.next({ type: 'record-state', recorder: name, state: 'stopping', error: null });
        this.events$.next({ type: 'record-state', recorder: name, state: 'stopped', error: null });
      }
      for (const name of wanted) {
        if (this.#recorders.has(name)) continue;
        this.#recorders.add(name);
        this.events$.next({ type: 'record-state', recorder: name, state: 'waiting', error: null });
      }
    }
  }
}
