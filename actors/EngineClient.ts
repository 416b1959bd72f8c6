import { Subject, filter, firstValueFrom, timeout, type Observable } from 'rxjs';
import { createActor } from 'xstate';
import type { EngineCommand, EngineEvent } from '../ipc/protocol.js';
import { engineMachine, engineStateName, type EngineActor, type EngineStateName, type EngineEmitted, type EngineSupervisionPolicy } from '../machines/engine.js';
import { engineChildLogic } from './engineChildActor.js';

/** Everything the engine says, plus `down` when the process is gone (so waiting parties stop waiting). */
export type EngineStreamEvent = EngineEvent | { type: 'down'; reason: string };

export interface EngineClientOptions {
  readonly policy?: EngineSupervisionPolicy;
  readonly env?: NodeJS.ProcessEnv;
  /** GStreamer's own output (stderr/stdout lines of the engine), for the owner to redact and log. */
  readonly onOutput?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export interface EngineStatus {
  readonly state: EngineStateName;
  readonly pid: number | null;
  readonly restarts: number;
  readonly lastError: string | null;
}

/** The media engine is not there to do what was asked (starting, restarting or shut down). */
export class EngineUnavailableError extends Error {
  override readonly name = 'EngineUnavailableError';
}

/** How long a `validate` waits for the engine (to be up, then to answer). */
export const VALIDATE_TIMEOUT_MS = 15_000;

/**
 * What the control plane needs of a media engine: {@link EngineClient} is the real one (a supervised child
 * process); unit tests give a fake.
 */
export interface MediaEngine {
  /** Everything the engine says, plus `down` when the process is gone. */
  readonly events$: Observable<EngineStreamEvent>;
  /** Supervision: ready / failedToStart / died / stopped. */
  readonly lifecycle$: Observable<EngineEmitted>;
  start(): void;
  /** Sends a command if an engine is up; returns whether it went out. */
  send(command: EngineCommand): boolean;
  /** Resolves null when GStreamer parses `launch`, or the parser's message; rejects with {@link EngineUnavailableError}. */
  validate(launch: string): Promise<string | null>;
  status(): EngineStatus;
  /** Graceful shutdown; idempotent. */
  shutdown(): Promise<void>;
}

/**
 * The control plane's handle on the media engine: supervision (engine machine), commands, and one stream of
 * engine events. Commands sent while the engine is down are dropped: the pipeline actors hear `down` and go
 * to backoff, and every `ready` brings them back.
 */
export class EngineClient implements MediaEngine {
  /** Engine events, multicast. */
  readonly events$ = new Subject<EngineStreamEvent>();
  /** Supervision lifecycle: ready / failedToStart / died / stopped, and the hang watchdog's silent / answered. */
  readonly lifecycle$ = new Subject<EngineEmitted>();
  /** The supervising machine. */
  readonly #actor: EngineActor;
  /** Sends on the IPC channel while an engine is up. */
  #send: ((command: EngineCommand) => void) | null = null;
  /** Ids for validate requests. */
  #nextId = 1;

  constructor(options: EngineClientOptions = {}) {
    const logic = engineMachine.provide({
      actors: {
        process: engineChildLogic({
          env: options.env,
          onEvent: (event) => this.events$.next(event),
          onOutput: options.onOutput ?? (() => undefined),
          onChannel: (send) => {
            this.#send = send;
          },
        }),
      },
    });
    this.#actor = createActor(logic, { input: { policy: options.policy } });
    for (const type of ['failedToStart', 'died', 'stopped'] as const) {
      this.#actor.on(type, (event) => {
        this.events$.next({ type: 'down', reason: 'reason' in event ? event.reason : 'stopped' });
        this.lifecycle$.next(event);
      });
    }
    for (const type of ['ready', 'silent', 'answered'] as const) this.#actor.on(type, (event) => this.lifecycle$.next(event));
  }

  start(): void {
    this.#actor.start();
  }

  get ready(): boolean {
    return this.#send !== null && this.#actor.getSnapshot().matches({ up: 'running' });
  }

  status(): EngineStatus {
    const snapshot = this.#actor.getSnapshot();
    return { state: engineStateName(snapshot), pid: snapshot.context.pid, restarts: snapshot.context.restarts, lastError: snapshot.context.lastError };
  }

  /** Sends a command if an engine is up; returns whether it went out. */
  send(command: EngineCommand): boolean {
    if (!this.#send || !this.ready) return false;
    this.#send(command);
    return true;
  }

  /** Resolves when the engine is up, or rejects after `timeoutMs`. */
  async whenReady(timeoutMs: number): Promise<void> {
    if (this.ready) return;
    await firstValueFrom(this.lifecycle$.pipe(filter((e) => e.type === 'ready'), timeout(timeoutMs))).catch(() => {
      throw new EngineUnavailableError(`media engine not ready after ${timeoutMs} ms (${this.status().lastError ?? 'starting'})`);
    });
  }

  /** Asks the engine whether GStreamer parses `launch`; resolves null when it does, or the parser's message. */
  async validate(launch: string, timeoutMs = VALIDATE_TIMEOUT_MS): Promise<string | null> {
    await this.whenReady(timeoutMs);
    const id = this.#nextId++;
    const reply = firstValueFrom(
      this.events$.pipe(
        filter((e): e is Extract<EngineStreamEvent, { type: 'reply' | 'down' }> => (e.type === 'reply' && e.id === id) || e.type === 'down'),
        timeout(timeoutMs),
      ),
    );
    if (!this.send({ type: 'validate', id, launch })) throw new EngineUnavailableError('media engine is not running');
    const answer = await reply.catch(() => {
      throw new EngineUnavailableError(`media engine did not answer in ${timeoutMs} ms`);
    });
    if (answer.type === 'down') throw new EngineUnavailableError(`media engine went down: ${answer.reason}`);
    return answer.ok ? null : answer.error;
  }

  /** Graceful shutdown: the engine stops every pipeline with EOS (bounded) and exits. Idempotent. */
  async shutdown(): Promise<void> {
    const snapshot = this.#actor.getSnapshot();
    if (snapshot.status !== 'active') return;
    const done = firstValueFrom(this.lifecycle$.pipe(filter((e) => e.type === 'stopped')));
    this.#actor.send({ type: 'SHUTDOWN' });
    await done;
    this.#actor.stop();
  }
}
