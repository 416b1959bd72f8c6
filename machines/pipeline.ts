import { assign, emit, fromCallback, sendTo, setup, type ActorRefFrom, type SnapshotFrom } from 'xstate';
import type { EosPolicy, RestartPolicy } from '../config/desired.js';

/** What the runner actor is given: one run of one pipeline. */
export interface PipelineRunInput {
  readonly name: string;
  readonly launch: string;
  readonly stopTimeoutMs: number;
}

/** Events the runner sends back to the machine (GStreamer bus messages, translated by the engine). */
export type PipelineRunnerEvent =
  | { type: 'PLAYING' }
  | { type: 'ERROR'; message: string }
  | { type: 'EOS' }
  | { type: 'STOPPED' };

/** Events the runner receives from the machine. */
export type PipelineRunnerCommand = { type: 'STOP'; graceful: boolean };

/** Events the pipeline machine accepts from its owner. */
export type PipelineCommand =
  | { type: 'START' }
  | { type: 'STOP'; graceful?: boolean }
  /** Restart now: skips a pending backoff delay, or stops and starts a running pipeline. */
  | { type: 'RESTART' }
  /** The media engine is (back) up: a pipeline waiting in backoff need not wait any longer. */
  | { type: 'ENGINE_READY' };

export type PipelineEvent = PipelineCommand | PipelineRunnerEvent;

export interface PipelineInput {
  readonly name: string;
  readonly launch: string;
  readonly onEos: EosPolicy;
  readonly policy: RestartPolicy;
}

export interface PipelineContext extends PipelineInput {
  /** Starts after the first, over the pipeline's life. */
  restarts: number;
  /** Consecutive failures since the last stable PLAYING: the exponent of the backoff delay. */
  attempt: number;
  lastError: { message: string; at: number } | null;
  /** When the current state was entered (ms since epoch). */
  since: number;
  /** Set when a stop was asked for while starting, so the runner is told once the pipeline exists. */
  gracefulStop: boolean;
}

/** Emitted for observers (metrics, reported properties, logs) on every state change. */
export type PipelineEmitted = { type: 'changed' };

/** The backoff delay before restart number `attempt + 1`: doubling from the initial delay up to the cap. */
export function backoffDelay(policy: RestartPolicy, attempt: number): number {
  return Math.min(policy.initialDelayMs * 2 ** Math.min(attempt, 30), policy.maxDelayMs);
}

/**
 * The lifecycle of one pipeline: idle -> active(starting -> playing) -> stopping -> stopped. An error, a start
 * that does not reach PLAYING in time, or an EOS (unless `onEos` is `stop`) goes to backoff and then starts
 * again. The runner actor (injected) owns one GStreamer pipeline for as long as `active` lasts.
 */
export const pipelineMachine = setup({
  types: {
    context: {} as PipelineContext,
    events: {} as PipelineEvent,
    input: {} as PipelineInput,
    emitted: {} as PipelineEmitted,
  },
  actors: {
    runner: fromCallback<PipelineRunnerCommand, PipelineRunInput>(() => undefined),
  },
  delays: {
    backoff: ({ context }) => backoffDelay(context.policy, context.attempt),
    startTimeout: ({ context }) => context.policy.startTimeoutMs,
    // The engine bounds the EOS wait itself; this is the control plane's own limit on top.
    stopTimeout: ({ context }) => context.policy.stopTimeoutMs + 2_000,
    stable: ({ context }) => context.policy.stableAfterMs,
  },
  guards: {
    restartOnEos: ({ context }) => context.onEos === 'restart',
  },
  actions: {
    markSince: assign({ since: () => Date.now() }),
    announce: emit({ type: 'changed' }),
    fail: assign((_, params: { message: string }) => ({ lastError: { message: params.message, at: Date.now() } })),
    countRestart: assign({ restarts: ({ context }) => context.restarts + 1, attempt: ({ context }) => context.attempt + 1 }),
    resetAttempt: assign({ attempt: 0 }),
  },
}).createMachine({
  id: 'pipeline',
  context: ({ input }) => ({ ...input, restarts: 0, attempt: 0, lastError: null, since: Date.now(), gracefulStop: true }),
  initial: 'idle',
  states: {
    idle: {
      on: { START: 'active', STOP: 'stopped' },
    },
    active: {
      invoke: {
        id: 'runner',
        src: 'runner',
        input: ({ context }) => ({ name: context.name, launch: context.launch, stopTimeoutMs: context.policy.stopTimeoutMs }),
      },
      initial: 'starting',
      on: {
        ERROR: { target: 'backoff', actions: { type: 'fail', params: ({ event }) => ({ message: event.message }) } },
        EOS: [
          { guard: 'restartOnEos', target: 'backoff', actions: { type: 'fail', params: { message: 'end of stream' } } },
          { target: 'ended' },
        ],
        STOP: { target: '.stopping', actions: assign({ gracefulStop: ({ event }) => event.graceful !== false }) },
        RESTART: { target: 'restarting' },
      },
      states: {
        starting: {
          entry: ['markSince', 'announce'],
          on: { PLAYING: 'playing' },
          after: {
            startTimeout: {
              target: '#pipeline.backoff',
              actions: {
                type: 'fail',
                params: ({ context }) => ({ message: `did not reach PLAYING within ${context.policy.startTimeoutMs} ms` }),
              },
            },
          },
        },
        playing: {
          entry: ['markSince', 'announce'],
          after: { stable: { actions: 'resetAttempt' } },
        },
        stopping: {
          entry: ['markSince', 'announce', sendTo('runner', ({ context }) => ({ type: 'STOP', graceful: context.gracefulStop }))],
          on: {
            STOPPED: '#pipeline.stopped',
            // Errors and EOS while stopping are the stop itself, not failures.
            ERROR: { target: '#pipeline.stopped' },
            EOS: {},
            PLAYING: {},
            STOP: {},
            RESTART: {},
          },
          after: { stopTimeout: '#pipeline.stopped' },
        },
      },
    },
    // Leaving `active` tears the runner down (hard stop); RESTART goes straight back.
    restarting: {
      always: { target: 'active', actions: 'countRestart' },
    },
    backoff: {
      entry: ['markSince', 'announce'],
      on: {
        STOP: 'stopped',
        ENGINE_READY: { target: 'active', actions: 'countRestart' },
        RESTART: { target: 'active', actions: 'countRestart' },
      },
      after: { backoff: { target: 'active', actions: 'countRestart' } },
    },
    ended: {
      entry: ['markSince', 'announce'],
      on: { START: 'active', RESTART: { target: 'active', actions: 'countRestart' }, STOP: 'stopped' },
    },
    stopped: {
      entry: ['markSince', 'announce'],
      on: { START: 'active' },
    },
  },
});

export type PipelineActor = ActorRefFrom<typeof pipelineMachine>;
export type PipelineSnapshot = SnapshotFrom<typeof pipelineMachine>;

/** The state's name as reported: `starting`, `playing`, `stopping`, `backoff`, `ended`, `stopped`, `idle`. */
export function pipelineStateName(snapshot: PipelineSnapshot): string {
  const value = snapshot.value;
  if (typeof value === 'string') return value;
  return Object.values(value)[0] as string;
}
