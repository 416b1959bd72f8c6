import { Gst, type GstElement } from './gst.js';

/**
 * Sets an element (a viewer's pipeline) to NULL on a GStreamer thread-pool thread, through the module's
 * `iotedgeasyncstate` element (plugins/inference/gstasyncstate.c), so the JS thread never blocks in the change.
 *
 * Why: node-gtk runs signal handlers on the JS thread and makes the emitting GStreamer thread wait for it. A
 * webrtcbin going to NULL joins its `webrtcbin:pc` thread; with the JS thread inside that NULL, any webrtcbin
 * thread emitting towards JS (another viewer's, or one this pipeline's NULL waits for) waits for ever, and so does
 * the NULL: the engine hung under WebRTC connect/close churn (gdb: the JS thread in webrtcbin's change_state, six
 * `webrtcbin:pc` threads in node-gtk's Closure::Marshal). Off the JS thread, those emissions are served meanwhile.
 *
 * Without the plugin (a build that skipped it), the NULL is synchronous, as before.
 */
export class AsyncNull {
  static #shared: AsyncNull | null | undefined;

  /** The engine's one helper; null when the plugin is not on GST_PLUGIN_PATH. */
  static shared(): AsyncNull | null {
    if (AsyncNull.#shared === undefined) {
      const helper = Gst.ElementFactory.make('iotedgeasyncstate', 'async-null');
      AsyncNull.#shared = helper ? new AsyncNull(helper) : null;
    }
    return AsyncNull.#shared;
  }

  readonly #helper: GstElement;
  /** Requests in flight: the element (kept alive here) and what runs when it is in NULL. */
  readonly #pending = new Map<number, { element: GstElement; done: () => void }>();
  #nextToken = 1;

  private constructor(helper: GstElement) {
    this.#helper = helper;
    // Emitted on the pool thread, which waits for us: take note and act on a later tick.
    this.#helper.connect('null-done', ((token: number) => {
      const request = this.#pending.get(token);
      if (!request) return;
      this.#pending.delete(token);
      setImmediate(request.done);
    }) as never);
  }

  /** Starts the NULL and returns at once; `done` runs on the JS thread once the element is in NULL. */
  setNull(element: GstElement, done: () => void): void {
    const token = this.#nextToken;
    this.#nextToken = (this.#nextToken % 0xffff_fffe) + 1;
    this.#pending.set(token, { element, done });
    this.#helper.emit('set-null-async', element, token);
  }
}
