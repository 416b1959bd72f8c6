import { fromCallback, type AnyEventObject, type EventObject } from 'xstate';

/** One started instance of a fake callback actor: what it was given, what it received, and a way to answer. */
export interface FakeInstance<TInput, TEvent extends EventObject> {
  readonly input: TInput;
  readonly received: TEvent[];
  sendBack(event: AnyEventObject): void;
  stopped: boolean;
}

/**
 * A callback actor for machine unit tests: records every start (input), every event it receives, and whether
 * it was stopped, and lets the test send events back as the real actor would.
 */
export function fakeCallback<TInput = unknown, TEvent extends EventObject = AnyEventObject>() {
  const instances: Array<FakeInstance<TInput, TEvent>> = [];
  const logic = fromCallback<TEvent, TInput>(({ input, sendBack, receive }) => {
    const instance: FakeInstance<TInput, TEvent> = { input, received: [], sendBack, stopped: false };
    instances.push(instance);
    receive((event) => instance.received.push(event));
    return () => {
      instance.stopped = true;
    };
  });
  return {
    logic,
    instances,
    get last(): FakeInstance<TInput, TEvent> {
      const last = instances.at(-1);
      if (!last) throw new Error('the fake actor was never started');
      return last;
    },
  };
}
