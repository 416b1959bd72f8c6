import { assign, emit, fromPromise, setup, type ActorRefFrom, type SnapshotFrom } from 'xstate';
import { backoffDelay } from '../machines/backoff.js';

/** What one upload step did: uploaded (or gave up on) one segment, or found nothing to upload. */
export interface UploadStepOutput {
  readonly empty: boolean;
}

export interface UploaderInput {
  /** The target's name (status, logs). */
  readonly target: string;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

export interface UploaderContext extends UploaderInput {
  /** Consecutive failures: the exponent of the backoff delay. */
  attempt: number;
  lastError: { message: string; at: number } | null;
  /** Work arrived while a step was running: run another even if that one found nothing. */
  more: boolean;
}

export type UploaderEvent =
  /** A segment was queued (or a paused target resumed): upload if idle. */
  | { type: 'WORK' }
  /** Skip the backoff wait (the network is known to be back). */
  | { type: 'RETRY_NOW' }
  | { type: 'PAUSE' }
  | { type: 'RESUME' };

/** Emitted on every state change, for status and metrics. */
export type UploaderEmitted = { type: 'changed' } | { type: 'retry'; attempt: number; delayMs: number; error: string };

/**
 * One target's upload loop: idle -> uploading (one segment per step, oldest first, so segments arrive in order)
 * -> idle when the queue is empty; a failed step waits in `backoff` (doubling, capped: the pipelines' formula)
 * and tries the same segment again. `paused` stops uploading (an in-flight step is aborted; its progress is kept
 * on disk and resumed). The step itself is injected: the machine knows nothing of files or SDKs.
 */
export const uploaderMachine = setup({
  types: {
    context: {} as UploaderContext,
    events: {} as UploaderEvent,
    input: {} as UploaderInput,
    emitted: {} as UploaderEmitted,
  },
  actors: {
    step: fromPromise<UploadStepOutput, { target: string }>(async () => ({ empty: true })),
  },
  delays: {
    backoff: ({ context }) => retryDelay(context, context.attempt - 1),
  },
  guards: {
    nothingLeft: ({ context, event }) => (event as unknown as { output: UploadStepOutput }).output.empty && !context.more,
  },
  actions: {
    announce: emit({ type: 'changed' }),
    fail: assign(({ context }, params: { message: string }) => ({ lastError: { message: params.message, at: Date.now() }, attempt: context.attempt + 1 })),
    announceRetry: emit(({ context }) => ({
      type: 'retry' as const,
      attempt: context.attempt,
      delayMs: retryDelay(context, context.attempt - 1),
      error: context.lastError?.message ?? '',
    })),
    succeed: assign({ attempt: 0, lastError: null }),
  },
}).createMachine({
  id: 'uploader',
  context: ({ input }) => ({ ...input, attempt: 0, lastError: null, more: false }),
  initial: 'idle',
  states: {
    idle: {
      entry: 'announce',
      on: { WORK: 'uploading', RETRY_NOW: 'uploading', PAUSE: 'paused' },
    },
    uploading: {
      entry: [assign({ more: false }), 'announce'],
      invoke: {
        src: 'step',
        input: ({ context }) => ({ target: context.target }),
        onDone: [
          { guard: 'nothingLeft', target: 'idle' },
          { target: 'uploading', reenter: true, actions: 'succeed' },
        ],
        onError: {
          target: 'backoff',
          actions: [{ type: 'fail', params: ({ event }) => ({ message: event.error instanceof Error ? event.error.message : String(event.error) }) }, 'announceRetry'],
        },
      },
      on: { WORK: { actions: assign({ more: true }) }, PAUSE: 'paused' },
    },
    backoff: {
      entry: 'announce',
      after: { backoff: 'uploading' },
      on: { RETRY_NOW: 'uploading', PAUSE: 'paused' },
    },
    paused: {
      entry: 'announce',
      on: { RESUME: 'uploading' },
    },
  },
});

/** The delay before retry number `attempt + 1`, from the target's initial and maximum delays. */
export function retryDelay(delays: { initialDelayMs: number; maxDelayMs: number }, attempt: number): number {
  return backoffDelay({ initialDelayMs: delays.initialDelayMs, maxDelayMs: delays.maxDelayMs }, Math.max(0, attempt));
}

export type UploaderActor = ActorRefFrom<typeof uploaderMachine>;
export type UploaderSnapshot = SnapshotFrom<typeof uploaderMachine>;
export type UploaderStateName = 'idle' | 'uploading' | 'backoff' | 'paused';
