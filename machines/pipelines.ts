import { enqueueActions, setup, stopChild, type ActorRefFrom, type SnapshotFrom } from 'xstate';
import { pipelineMachine, type PipelineActor, type PipelineCommand, type PipelineInput } from './pipeline.js';

/** What the owner asks of the set of running pipelines. */
export type PipelinesEvent =
  /** Spawns a pipeline actor named `input.name` and starts it. */
  | { type: 'ADD'; input: PipelineInput }
  /** Stops and forgets a pipeline actor (stop it gracefully first: this is the hard end). */
  | { type: 'REMOVE'; name: string }
  /** A command for one pipeline. */
  | { type: 'TO'; name: string; command: PipelineCommand }
  /** The media engine is (back) up: every pipeline hears it. */
  | { type: 'ENGINE_READY' };

/**
 * The pipelines that run now, one child actor each (spawned by name), so that the engine's comings and goings
 * reach all of them from one place. The `pipeline` logic is provided by the owner with its runner.
 */
export const pipelinesMachine = setup({
  types: {
    events: {} as PipelinesEvent,
  },
  actors: {
    pipeline: pipelineMachine,
  },
}).createMachine({
  id: 'pipelines',
  on: {
    ADD: {
      actions: enqueueActions(({ enqueue, event }) => {
        enqueue.spawnChild('pipeline', { id: event.input.name, input: event.input });
        enqueue.sendTo(event.input.name, { type: 'START' });
      }),
    },
    REMOVE: { actions: stopChild(({ event }) => event.name) },
    // A command for a pipeline that has just been removed is dropped (sending to a missing child would fail the set).
    TO: {
      actions: enqueueActions(({ enqueue, event, self }) => {
        const child = self.getSnapshot().children[event.name];
        if (child) enqueue.sendTo(child, event.command);
      }),
    },
    ENGINE_READY: {
      actions: enqueueActions(({ enqueue, self }) => {
        for (const child of Object.values(self.getSnapshot().children)) if (child) enqueue.sendTo(child, { type: 'ENGINE_READY' });
      }),
    },
  },
});

export type PipelinesActor = ActorRefFrom<typeof pipelinesMachine>;

/** The pipeline actors of a snapshot, by name, in the order they were added. */
export function pipelineChildren(snapshot: SnapshotFrom<typeof pipelinesMachine>): Map<string, PipelineActor> {
  const children = new Map<string, PipelineActor>();
  for (const [name, child] of Object.entries(snapshot.children)) if (child) children.set(name, child as PipelineActor);
  return children;
}
