import { assign, emit, fromPromise, setup, type ActorRefFrom } from 'xstate';
import { backoffDelay, type BackoffPolicy } from './backoff.js';

/** Reconnects wait 1 s, doubling up to a minute: a hub that refuses a key must not be hammered. */
export const IOT_HUB_BACKOFF: BackoffPolicy = { initialDelayMs: 1_000, maxDelayMs: 60_000 };

/** Events from the IoT Hub client (the SDK's own connection events). */
export type IotHubConnectionEvent =
  /** The SDK reconnected by itself: the twin must be fetched again, changes made while offline are otherwise missed. */
  | { type: 'RECONNECTED' }
  /** The SDK gave up on this connection (its retry policy ran out, or it was refused). */
  | { type: 'DISCONNECTED' }
  | { type: 'CLOSE' };

export type IotHubConnectionEmitted =
  /** A full desired document is in hand (after a connect or a re-fetch): apply it. */
  | { type: 'synced' }
  | { type: 'connectFailed'; error: unknown; retryInMs: number }
  | { type: 'fetchFailed'; error: unknown; retryInMs: number }
  | { type: 'disconnected' };

export interface IotHubConnectionContext {
  /** Consecutive failed connects (or fetches): the exponent of the backoff delay. */
  attempt: number;
  lastError: unknown;
}

/**
 * The connection to IoT Hub: connecting (client open + twin fetched) -> connected, where desired patches apply only
 * while `synced` (a full desired document was fetched since the last (re)connect). After the SDK reconnects by
 * itself the twin is fetched again before anything is applied: the SDK can hand out a patch merged into an empty
 * document meanwhile, and applying that would stop every pipeline. A failed connect or fetch is retried with
 * backoff; the pipelines keep running throughout. `connect` and `fetchTwin` are injected.
 */
export const iotHubConnectionMachine = setup({
  types: {
    context: {} as IotHubConnectionContext,
    events: {} as IotHubConnectionEvent,
    emitted: {} as IotHubConnectionEmitted,
  },
  actors: {
    /** Opens the client and fetches the twin. */
    connect: fromPromise<void>(async () => {
      throw new Error('connect not provided');
    }),
    /** Fetches the twin again on the open client. */
    fetchTwin: fromPromise<void>(async () => {
      throw new Error('fetchTwin not provided');
    }),
    /** Closes the client (after a disconnect, or for good). */
    disconnect: fromPromise<void>(async () => undefined),
  },
  delays: {
    backoff: ({ context }) => backoffDelay(IOT_HUB_BACKOFF, context.attempt - 1),
  },
  actions: {
    failed: assign({ attempt: ({ context }) => context.attempt + 1, lastError: (_, params: { error: unknown }) => params.error }),
  },
}).createMachine({
  id: 'iotHub',
  context: { attempt: 0, lastError: null },
  initial: 'connecting',
  on: { CLOSE: '.closing' },
  states: {
    connecting: {
      invoke: {
        src: 'connect',
        onDone: { target: 'connected', actions: assign({ attempt: 0, lastError: null }) },
        onError: {
          target: 'waiting',
          actions: [
            { type: 'failed', params: ({ event }) => ({ error: event.error }) },
            emit(({ context }) => ({ type: 'connectFailed' as const, error: context.lastError, retryInMs: backoffDelay(IOT_HUB_BACKOFF, context.attempt - 1) })),
          ],
        },
      },
    },
    waiting: {
      after: { backoff: 'connecting' },
    },
    connected: {
      initial: 'synced',
      on: {
        DISCONNECTED: {
          target: 'dropping',
          actions: [{ type: 'failed', params: { error: new Error('connection lost') } }, emit({ type: 'disconnected' })],
        },
      },
      states: {
        synced: {
          entry: emit({ type: 'synced' }),
          on: { RECONNECTED: 'fetching' },
        },
        fetching: {
          on: { RECONNECTED: { target: 'fetching', reenter: true } },
          invoke: {
            src: 'fetchTwin',
            onDone: { target: 'synced', actions: assign({ attempt: 0, lastError: null }) },
            onError: {
              target: 'refetchWaiting',
              actions: [
                { type: 'failed', params: ({ event }) => ({ error: event.error }) },
                emit(({ context }) => ({ type: 'fetchFailed' as const, error: context.lastError, retryInMs: backoffDelay(IOT_HUB_BACKOFF, context.attempt - 1) })),
              ],
            },
          },
        },
        refetchWaiting: {
          on: { RECONNECTED: 'fetching' },
          after: { backoff: 'fetching' },
        },
      },
    },
    // The old client goes before a new one connects.
    dropping: {
      invoke: { src: 'disconnect', onDone: 'waiting', onError: 'waiting' },
    },
    closing: {
      invoke: { src: 'disconnect', onDone: 'closed', onError: 'closed' },
    },
    closed: { type: 'final' },
  },
});

export type IotHubConnectionActor = ActorRefFrom<typeof iotHubConnectionMachine>;
