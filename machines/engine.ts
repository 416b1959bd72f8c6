import { assign, emit, fromCallback, sendTo, setup, type ActorRefFrom, type SnapshotFrom } from 'xstate';
import { backoffDelay, type BackoffPolicy } from './backoff.js';

/** How a media engine process ended. */
export interface EngineExit {
  readonly code: number | null;
  readonly signal: string | null;
}

/** Events the process actor sends back. */
export type EngineProcessEvent =
  | { type: 'READY'; pid: number }
  /** The engine sent something (any message, a pong included): its main thread is alive. */
  | { type: 'HEARD' }
  | ({ type: 'EXIT' } & EngineExit);

/** Events the process actor receives. */
export type EngineProcessCommand = { type: 'SHUTDOWN'; timeoutMs: number } | { type: 'PING' };

export type EngineEventIn = EngineProcessEvent | { type: 'SHUTDOWN' };

/** Why a running engine went down: it exited (a crash, a signal) or it stopped answering and was killed. */
export type EngineDeathCause = 'exited' | 'hung';

export type EngineEmitted =
  | { type: 'ready'; pid: number }
  /** The engine exited or never became ready before it was up: a start failure. */
  | { type: 'failedToStart'; reason: string }
  /** The engine was up and died (a crash, a signal, an exception), or hung and was killed. */
  | { type: 'died'; reason: string; cause: EngineDeathCause }
  /** A running engine has been silent for `ms`: it was pinged; `answered` or `died` (hung) follows. */
  | { type: 'silent'; ms: number }
  | { type: 'answered' }
  | { type: 'stopped' };

export interface EngineSupervisionPolicy extends BackoffPolicy {
  /** Fork to ready. */
  readonly startTimeoutMs: number;
  /** Graceful shutdown (pipelines get EOS) before the process is killed. */
  readonly shutdownTimeoutMs: number;
  /** Up this long resets the doubling delay. */
  readonly stableAfterMs: number;
  /**
   * Silence (the engine reports every second) after which it is asked once more; no answer within the same time
   * again and it counts as hung and is killed.
   */
  readonly hangTimeoutMs: number;
}

export const DEFAULT_ENGINE_POLICY: EngineSupervisionPolicy = {
  initialDelayMs: 200,
  maxDelayMs: 10_000,
  startTimeoutMs: 20_000,
  shutdownTimeoutMs: 8_000,
  stableAfterMs: 30_000,
  hangTimeoutMs: 10_000,
};

export interface EngineContext {
  readonly policy: EngineSupervisionPolicy;
  pid: number | null;
  /** Starts after the first. */
  restarts: number;
  /** Consecutive failures: the exponent of the backoff delay. */
  attempt: number;
  lastError: string | null;
}

export function describeExit(exit: EngineExit): string {
  return exit.signal ? `killed by signal ${exit.signal}` : `exited with code ${exit.code}`;
}

/**
 * Supervision of the media engine child process, after mediasoup's Worker: `failedToStart` (it exited or hung
 * before it was ready) and `died` (it was up) are different events. Both restart it after a doubling delay;
 * the owner replays the desired config on every `ready`. SHUTDOWN stops it gracefully and for good.
 *
 * A running engine that goes silent is `suspect`, not dead: this process may have been the one that stalled
 * (a stopped or starved control plane runs its timers before it reads the messages that queued meanwhile), so it
 * pings the engine and waits as long again, with its own loop running, before it calls the engine hung.
 */
export const engineMachine = setup({
  types: {
    context: {} as EngineContext,
    events: {} as EngineEventIn,
    input: {} as { policy?: EngineSupervisionPolicy },
    emitted: {} as EngineEmitted,
  },
  actors: {
    process: fromCallback<EngineProcessCommand>(() => undefined),
  },
  delays: {
    backoff: ({ context }) => backoffDelay(context.policy, context.attempt),
    startTimeout: ({ context }) => context.policy.startTimeoutMs,
    shutdownTimeout: ({ context }) => context.policy.shutdownTimeoutMs,
    stable: ({ context }) => context.policy.stableAfterMs,
    hangTimeout: ({ context }) => context.policy.hangTimeoutMs,
  },
  actions: {
    failed: assign({
      lastError: (_, params: { reason: string }) => params.reason,
      pid: null,
    }),
  },
}).createMachine({
  id: 'engine',
  context: ({ input }) => ({ policy: input.policy ?? DEFAULT_ENGINE_POLICY, pid: null, restarts: 0, attempt: 0, lastError: null }),
  initial: 'up',
  on: { SHUTDOWN: '.stopped' },
  states: {
    up: {
      invoke: { id: 'process', src: 'process' },
      initial: 'starting',
      on: { SHUTDOWN: '.stopping' },
      states: {
        starting: {
          on: {
            READY: { target: 'running', actions: assign({ pid: ({ event }) => event.pid }) },
            EXIT: {
              target: '#engine.backoff',
              actions: [
                { type: 'failed', params: ({ event }) => ({ reason: `failed to start: ${describeExit(event)}` }) },
                emit(({ event }) => ({ type: 'failedToStart' as const, reason: describeExit(event) })),
              ],
            },
          },
          after: {
            startTimeout: {
              target: '#engine.backoff',
              actions: [
                { type: 'failed', params: { reason: 'failed to start: not ready in time' } },
                emit({ type: 'failedToStart', reason: 'not ready in time' }),
              ],
            },
          },
        },
        running: {
          entry: emit(({ context }) => ({ type: 'ready' as const, pid: context.pid ?? 0 })),
          after: { stable: { actions: assign({ attempt: 0 }) } },
          on: {
            EXIT: {
              target: '#engine.backoff',
              actions: [
                { type: 'failed', params: ({ event }) => ({ reason: `died: ${describeExit(event)}` }) },
                emit(({ event }) => ({ type: 'died' as const, reason: describeExit(event), cause: 'exited' as const })),
              ],
            },
          },
          initial: 'answering',
          states: {
            answering: {
              on: { HEARD: { target: 'answering', reenter: true } },
              after: { hangTimeout: 'suspect' },
            },
            suspect: {
              entry: [sendTo('process', { type: 'PING' }), emit(({ context }) => ({ type: 'silent' as const, ms: context.policy.hangTimeoutMs }))],
              on: { HEARD: { target: 'answering', actions: emit({ type: 'answered' }) } },
              after: {
                // Leaving `up` stops the process actor, which kills what is left of the process.
                hangTimeout: {
                  target: '#engine.backoff',
                  actions: [
                    { type: 'failed', params: ({ context }) => ({ reason: `died: hung (no answer for ${2 * context.policy.hangTimeoutMs} ms)` }) },
                    emit(({ context }) => ({
                      type: 'died' as const,
                      reason: `hung (no answer for ${2 * context.policy.hangTimeoutMs} ms)`,
                      cause: 'hung' as const,
                    })),
                  ],
                },
              },
            },
          },
        },
        stopping: {
          entry: sendTo('process', ({ context }) => ({ type: 'SHUTDOWN', timeoutMs: context.policy.shutdownTimeoutMs })),
          on: { EXIT: '#engine.stopped', SHUTDOWN: {} },
          // Leaving `up` kills whatever is left of the process.
          after: { shutdownTimeout: '#engine.stopped' },
        },
      },
    },
    backoff: {
      after: {
        backoff: {
          target: 'up',
          actions: assign({ restarts: ({ context }) => context.restarts + 1, attempt: ({ context }) => context.attempt + 1 }),
        },
      },
    },
    stopped: {
      type: 'final',
      entry: [assign({ pid: null }), emit({ type: 'stopped' })],
    },
  },
});

export type EngineActor = ActorRefFrom<typeof engineMachine>;

/** The engine's state as reported: `starting`, `running`, `stopping`, `backoff` or `stopped`. */
export type EngineStateName = 'starting' | 'running' | 'stopping' | 'backoff' | 'stopped';

/** The reported name of a snapshot's state (a running engine under suspicion of a hang is still `running`). */
export function engineStateName(snapshot: SnapshotFrom<typeof engineMachine>): EngineStateName {
  const value = snapshot.value;
  return (typeof value === 'string' ? value : Object.keys(value.up ?? {})[0] ?? (typeof value.up === 'string' ? value.up : 'starting')) as EngineStateName;
}
