import { assign, emit, fromPromise, setup, type ActorRefFrom } from 'xstate';
import { versionOf, type ResolvedConfig } from '../config/desired.js';
import { errorMessage } from '../config/errors.js';

/** A desired document as it arrived (from the twin file, the module twin or a direct method), numbered. */
export interface DesiredInput {
  readonly document: unknown;
  /** Counts documents in arrival order, also when the twin carries no `$version`. */
  readonly sequence: number;
}

export interface ValidateInput {
  readonly desired: DesiredInput;
  readonly applied: ResolvedConfig | null;
}

export interface ApplyInput {
  readonly next: ResolvedConfig;
  readonly applied: ResolvedConfig | null;
}

export type ConfigEvent = { type: 'DESIRED'; desired: DesiredInput };

export type ConfigEmitted =
  | { type: 'applied'; config: ResolvedConfig; sequence: number }
  | { type: 'rejected'; error: string; sequence: number; version: number | null }
  | { type: 'superseded'; sequence: number };

export interface ConfigContext {
  /** The config the pipelines run now. */
  applied: ResolvedConfig | null;
  /** The document being validated or applied. */
  current: DesiredInput | null;
  /** The newest document that arrived meanwhile: only the last one of a burst is ever applied. */
  pending: DesiredInput | null;
  /** Validated, waiting to be applied. */
  candidate: ResolvedConfig | null;
}

/**
 * Hot swap: validate a desired document (shape, environment, and that GStreamer parses every pipeline), then
 * apply it. An invalid document is rejected and what runs keeps running. Documents that arrive while one is
 * in flight coalesce: the last one wins and one swap runs at a time, so there are never two main pipelines.
 * `validate` and `apply` are injected.
 */
export const configMachine = setup({
  types: {
    context: {} as ConfigContext,
    events: {} as ConfigEvent,
    emitted: {} as ConfigEmitted,
  },
  actors: {
    validate: fromPromise<ResolvedConfig, ValidateInput>(async () => {
      throw new Error('validate not provided');
    }),
    apply: fromPromise<void, ApplyInput>(async () => {
      throw new Error('apply not provided');
    }),
  },
  guards: {
    hasPending: ({ context }) => context.pending !== null,
  },
  actions: {
    keepPending: assign({ pending: ({ event }) => event.desired }),
    takePending: assign({ current: ({ context }) => context.pending, pending: null }),
  },
}).createMachine({
  id: 'config',
  context: { applied: null, current: null, pending: null, candidate: null },
  initial: 'idle',
  states: {
    idle: {
      on: { DESIRED: { target: 'validating', actions: assign({ current: ({ event }) => event.desired }) } },
    },
    validating: {
      on: { DESIRED: { actions: 'keepPending' } },
      invoke: {
        src: 'validate',
        input: ({ context }) => ({ desired: context.current!, applied: context.applied }),
        onDone: [
          {
            guard: 'hasPending',
            target: 'validating',
            reenter: true,
            actions: [emit(({ context }) => ({ type: 'superseded' as const, sequence: context.current!.sequence })), 'takePending'],
          },
          { target: 'applying', actions: assign({ candidate: ({ event }) => event.output }) },
        ],
        onError: {
          target: 'settled',
          actions: emit(({ context, event }) => ({
            type: 'rejected' as const,
            error: errorMessage(event.error),
            sequence: context.current!.sequence,
            version: versionOf(context.current!.document),
          })),
        },
      },
    },
    applying: {
      on: { DESIRED: { actions: 'keepPending' } },
      invoke: {
        src: 'apply',
        input: ({ context }) => ({ next: context.candidate!, applied: context.applied }),
        onDone: {
          target: 'settled',
          actions: [
            assign({ applied: ({ context }) => context.candidate, candidate: null }),
            emit(({ context }) => ({ type: 'applied' as const, config: context.applied!, sequence: context.current!.sequence })),
          ],
        },
        // A swap that broke half-way still changed what runs: take the new config as applied, so the next
        // document is compared with what was asked for, and say what went wrong.
        onError: {
          target: 'settled',
          actions: [
            assign({ applied: ({ context }) => context.candidate, candidate: null }),
            emit(({ context, event }) => ({
              type: 'rejected' as const,
              error: `applying failed: ${errorMessage(event.error)}`,
              sequence: context.current!.sequence,
              version: versionOf(context.current!.document),
            })),
          ],
        },
      },
    },
    settled: {
      always: [{ guard: 'hasPending', target: 'validating', actions: 'takePending' }, { target: 'idle' }],
    },
  },
});

export type ConfigActor = ActorRefFrom<typeof configMachine>;
