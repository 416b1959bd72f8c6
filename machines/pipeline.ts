import { and, assign, emit, fromCallback, sendTo, setup, type ActorRefFrom, type EventObject, type SnapshotFrom } from 'xstate';
import type { EosPolicy, RestartPolicy } from '../config/desired.js';
import { backoffDelay } from './backoff.js';

/** What the runner actor is given: one run of one pipeline. */
export interface PipelineRunInput {
  readonly name: string;
  readonly launch: string;
  readonly stopTimeoutMs: number;
}

/**
 * Events the runner sends back to the machine (GStreamer bus messages, translated by the engine). An ERROR carries
 * `sourceUri` when the element that failed is a network source that could not reach its camera (connect, resolve,
 * read): then the pipeline is not at fault, and it waits for the source rather than doubling its delays.
 */
export type PipelineRunnerEvent =
  | { type: 'PLAYING' }
  | { type: 'ERROR'; message: string; sourceUri?: string | null }
  /** `sourceUri`: the pipeline reads a network source, whose end of stream is a camera that hung up. */
  | { type: 'EOS'; sourceUri?: string | null }
  | { type: 'STOPPED' };

/** What the source probe is given: the URI to check (`rtsp://host:port/...`). */
export interface SourceProbeInput {
  readonly uri: string;
}

/** What the source probe says: the source answers again, or it cannot be probed (not TCP), so plain backoff it is. */
export type SourceProbeEvent = { type: 'SOURCE_REACHABLE' } | { type: 'SOURCE_UNPROBEABLE' };

/** Events the runner receives from the machine. */
export type PipelineRunnerCommand = { type: 'STOP'; graceful: boolean };

/** Events the pipeline machine accepts from its owner. */
export type PipelineCommand =
  | { type: 'START' }
  | { type: 'STOP'; graceful?: boolean }
  /** Restart now: skips a pending backoff delay, or stops a running pipeline gracefully (EOS) and starts it again. */
  | { type: 'RESTART' }
  /** The media engine is (back) up: a pipeline waiting in backoff need not wait any longer. */
  | { type: 'ENGINE_READY' };

export type PipelineEvent = PipelineCommand | PipelineRunnerEvent | SourceProbeEvent;

export interface PipelineInput {
  readonly name: string;
  readonly launch: string;
  /** The twin's text, variables unexpanded: the only form that is shown. */
  readonly template: string;
  readonly onEos: EosPolicy;
  readonly policy: RestartPolicy;
  /** The wall clock for `since` and error times (tests give the simulated clock's); default `Date.now`. */
  readonly now?: () => number;
}

export interface PipelineContext extends PipelineInput {
  /** Starts after the first, over the pipeline's life. */
  restarts: number;
  /** Consecutive failures since the last stable PLAYING: the exponent of the backoff delay. */
  attempt: number;
  lastError: { message: string; at: number } | null;
  /** When the current state was entered (ms since epoch). */
  since: number;
  /** Whether the stop under way lets the pipeline finish with EOS (muxers finalise their files) or ends it now. */
  gracefulStop: boolean;
  /** The stop under way is a RESTART: start again once stopped. */
  restartAfterStop: boolean;
  /** The network source the last error came from, while the pipeline waits for it to answer again. */
  waitingFor: string | null;
}

/** Emitted for observers (metrics, reported properties, logs) on every state change. */
export type PipelineEmitted = { type: 'changed' };

/**
 * The stop margins, one place for all layers. The engine gives up on EOS after `stopTimeoutMs` and then needs
 * `ENGINE_TEARDOWN_MS` for NULL and its report (its own shutdown waits that much past the budget); the machine
 * waits `STOP_MARGIN_MS` past the budget for STOPPED (the teardown plus the IPC round trip on a loaded machine).
 */
export const ENGINE_TEARDOWN_MS = 500;
export const STOP_MARGIN_MS = 2_000;

function now(context: PipelineContext): number {
  return (context.now ?? Date.now)();
}

/**
 * The lifecycle of one pipeline: idle -> active(starting -> playing) -> stopping -> stopped. An error, a start
 * that does not reach PLAYING in time, or an EOS (unless `onEos` is `stop`) goes to backoff and then starts
 * again; a network source that cannot be reached a second time in a row goes to `waiting-for-source`, where a probe
 * starts the pipeline again as soon as the source answers. The runner actor (injected) owns one GStreamer pipeline
 * for as long as `active` lasts.
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
    /** Checks the source now and then; says SOURCE_REACHABLE once it answers (injected; by default it cannot). */
    probe: fromCallback<EventObject, SourceProbeInput>(({ sendBack }) => {
      sendBack({ type: 'SOURCE_UNPROBEABLE' });
    }),
  },
  delays: {
    backoff: ({ context }) => backoffDelay(context.policy, context.attempt),
    startTimeout: ({ context }) => context.policy.startTimeoutMs,
    stopTimeout: ({ context }) => context.policy.stopTimeoutMs + STOP_MARGIN_MS,
    stable: ({ context }) => context.policy.stableAfterMs,
  },
  guards: {
    restartOnEos: ({ context }) => context.onEos === 'restart',
    restartAfterStop: ({ context }) => context.restartAfterStop,
    // The first failure retries after the short initial delay (a camera hiccup); from the second on, the pipeline
    // waits for the source itself rather than for a delay that doubles to max_delay_ms.
    sourceIsDown: ({ context, event }) => (event.type === 'ERROR' || event.type === 'EOS') && typeof event.sourceUri === 'string' && context.attempt > 0,
  },
  actions: {
    markSince: assign({ since: ({ context }) => now(context) }),
    announce: emit({ type: 'changed' }),
    fail: assign(({ context }, params: { message: string; sourceUri?: string | null }) => ({
      lastError: { message: params.message, at: now(context) },
      waitingFor: params.sourceUri ?? null,
    })),
    countRestart: assign({ restarts: ({ context }) => context.restarts + 1, attempt: ({ context }) => context.attempt + 1 }),
    resetAttempt: assign({ attempt: 0 }),
  },
}).createMachine({
  id: 'pipeline',
  context: ({ input }) => ({ ...input, restarts: 0, attempt: 0, lastError: null, since: (input.now ?? Date.now)(), gracefulStop: true, restartAfterStop: false, waitingFor: null }),
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
        ERROR: [
          {
            guard: 'sourceIsDown',
            target: 'waiting-for-source',
            actions: { type: 'fail', params: ({ event }) => ({ message: event.message, sourceUri: event.sourceUri }) },
          },
          { target: 'backoff', actions: { type: 'fail', params: ({ event }) => ({ message: event.message, sourceUri: event.sourceUri }) } },
        ],
        EOS: [
          {
            guard: and(['restartOnEos', 'sourceIsDown']),
            target: 'waiting-for-source',
            actions: { type: 'fail', params: ({ event }) => ({ message: 'end of stream', sourceUri: event.sourceUri }) },
          },
          { guard: 'restartOnEos', target: 'backoff', actions: { type: 'fail', params: ({ event }) => ({ message: 'end of stream', sourceUri: event.sourceUri }) } },
          { target: 'ended' },
        ],
        STOP: { target: '.stopping', actions: assign({ gracefulStop: ({ event }) => event.graceful !== false, restartAfterStop: false }) },
        RESTART: { target: '.stopping', actions: assign({ gracefulStop: true, restartAfterStop: true }) },
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
            STOPPED: [{ guard: 'restartAfterStop', target: '#pipeline.restarting' }, { target: '#pipeline.stopped' }],
            // Errors and EOS while stopping are the stop itself, not failures.
            ERROR: [{ guard: 'restartAfterStop', target: '#pipeline.restarting' }, { target: '#pipeline.stopped' }],
            EOS: {},
            PLAYING: {},
            // A stop asked for during a restart's stop: stay stopped afterwards.
            STOP: { actions: assign({ restartAfterStop: false }) },
            RESTART: { actions: assign({ restartAfterStop: true }) },
          },
          after: { stopTimeout: [{ guard: 'restartAfterStop', target: '#pipeline.restarting' }, { target: '#pipeline.stopped' }] },
        },
      },
    },
    // The runner of the stopped run is gone once `active` is left; a new one starts on the way back in.
    restarting: {
      always: { target: 'active', actions: ['countRestart', assign({ restartAfterStop: false })] },
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
    // A network source that is down: probed (cheaply, e.g. a TCP connect) until it answers, then started at once;
    // the doubling delay still applies as an upper bound, for sources a probe cannot tell about.
    'waiting-for-source': {
      entry: ['markSince', 'announce'],
      invoke: { src: 'probe', input: ({ context }) => ({ uri: context.waitingFor ?? '' }) },
      on: {
        SOURCE_REACHABLE: { target: 'active', actions: 'countRestart' },
        SOURCE_UNPROBEABLE: 'backoff',
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

/** A pipeline's state as reported (logs, status, metrics): the machine's states, `active`'s children flattened. */
export type PipelineStateName = 'idle' | 'starting' | 'playing' | 'stopping' | 'backoff' | 'waiting-for-source' | 'ended' | 'stopped';

/**
 * Every state a pipeline can be reported in, read from the machine itself (transient states, which a snapshot
 * never rests in, left out), so metrics get one series per state without a list kept by hand.
 */
export const PIPELINE_STATES: readonly PipelineStateName[] = Object.entries(pipelineMachine.states).flatMap(([key, node]) => {
  if (node.always) return [];
  const children = Object.keys(node.states);
  return (children.length > 0 ? children : [key]) as PipelineStateName[];
});

/** The state's name as reported: `starting`, `playing`, `stopping`, `backoff`, `ended`, `stopped`, `idle`. */
export function pipelineStateName(snapshot: PipelineSnapshot): PipelineStateName {
  const value = snapshot.value;
  return (typeof value === 'string' ? value : Object.values(value)[0]) as PipelineStateName;
}
