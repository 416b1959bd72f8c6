import { filter } from 'rxjs';
import { fromCallback } from 'xstate';
import type { PipelineRunInput, PipelineRunnerCommand, PipelineRunnerEvent } from '../machines/pipeline.js';
import type { MediaEngine } from './EngineClient.js';

/** Numbers runs across the whole control plane, so an event of an older run is never taken for a newer one. */
let lastRun = 0;

/** What the runner tells about a run besides the machine events (warnings, for logs). */
export interface RunnerHooks {
  onWarning(pipeline: string, message: string, source: string): void;
  onError(pipeline: string, message: string, source: string, debug: string | null): void;
}

/**
 * One run of one pipeline, as an actor for the pipeline machine: starts it in the engine, turns the engine's
 * events for this run into machine events, and stops it (hard) when the machine leaves `active`.
 */
export function pipelineRunLogic(engine: MediaEngine, hooks: RunnerHooks) {
  return fromCallback<PipelineRunnerCommand, PipelineRunInput>(({ input, sendBack, receive }) => {
    const run = ++lastRun;
    const { name } = input;
    let stopped = false;
    const subscription = engine.events$
      .pipe(filter((e) => e.type === 'down' || ('pipeline' in e && e.pipeline === name && 'run' in e && e.run === run)))
      .subscribe((event) => {
        switch (event.type) {
          case 'state':
            if (event.state === 'playing') sendBack({ type: 'PLAYING' } satisfies PipelineRunnerEvent);
            break;
          case 'error':
            hooks.onError(name, event.message, event.source, event.debug);
            sendBack({ type: 'ERROR', message: event.message, sourceUri: event.sourceUri ?? null } satisfies PipelineRunnerEvent);
            break;
          case 'warning':
            hooks.onWarning(name, event.message, event.source);
            break;
          case 'eos':
            sendBack({ type: 'EOS', sourceUri: event.sourceUri ?? null } satisfies PipelineRunnerEvent);
            break;
          case 'stopped':
            stopped = true;
            sendBack({ type: 'STOPPED' } satisfies PipelineRunnerEvent);
            break;
          case 'down':
            stopped = true;
            sendBack({ type: 'ERROR', message: `media engine ${event.reason}` } satisfies PipelineRunnerEvent);
            break;
        }
      });
    // Deferred: the machine must be listening before the first event comes back.
    const kickoff = setImmediate(() => {
      if (!engine.send({ type: 'start', pipeline: name, run, launch: input.launch })) {
        stopped = true;
        sendBack({ type: 'ERROR', message: 'media engine is not running' } satisfies PipelineRunnerEvent);
      }
    });
    receive((command) => {
      if (command.type === 'STOP') {
        if (stopped || !engine.send({ type: 'stop', pipeline: name, run, graceful: command.graceful, timeoutMs: input.stopTimeoutMs })) {
          sendBack({ type: 'STOPPED' } satisfies PipelineRunnerEvent);
        }
      }
    });
    return () => {
      clearImmediate(kickoff);
      subscription.unsubscribe();
      if (!stopped) engine.send({ type: 'stop', pipeline: name, run, graceful: false, timeoutMs: 0 });
    };
  });
}
