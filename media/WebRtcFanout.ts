import { EventEmitter } from 'node:events';
import type { Subscription } from 'rxjs';
import { errorMessage } from '../config/errors.js';
import { allElements, asAppSrc, asQueue, GLib, Gst, objectName, parseLaunch, type GstElement, type GstMessage, type GstPad, type GstPipeline } from './gst.js';
import type { SampleHub } from './SampleHub.js';
import { FANOUT_PRODUCER_LAUNCH } from './webrtcLaunch.js';

/** What a fan-out tells its owner and its viewers. */
export type WebRtcFanoutEvents = {
  /** Its pipeline posted an ERROR: no branch gets data any more, and new viewers need a new fan-out. Once. */
  failed: [reason: string];
  /** A warning or error of its pipeline, for the engine's log. */
  log: [level: 'warn' | 'error', msg: string];
};

/**
 * Makes a viewer's `proxysrc` (a bin around a queue, whose thread runs the viewer's webrtcbin) drop its oldest
 * packets when full: a slow viewer loses packets, never holds up the tee and with it every other viewer.
 *
 * @throws TypeError when the proxysrc has no queue inside (GStreamer changed how proxysrc is built).
 */
export function leakyProxySrc(proxysrc: GstElement): void {
  for (const child of allElements(proxysrc)) {
    if (child.getFactory()?.getName() !== 'queue') continue;
    const queue = asQueue(child);
    queue.leaky = 2;
    queue.maxSizeBuffers = 500;
    return;
  }
  throw new TypeError('proxysrc has no queue to make leaky');
}

/**
 * Shared-encode WebRTC with the per-viewer work left to GStreamer: one pipeline takes the hub's `video` stream
 * once, payloads it once and tees the RTP to a `proxysink` per viewer, whose webrtcbin pipeline starts from a
 * `proxysrc`. A viewer then costs SRTP and sending, and no JavaScript per frame (pushing every sample into each
 * viewer's own appsrc cost most of the engine's main thread at 20 viewers).
 *
 * No queue in a branch: the proxysrc's own queue (made leaky by {@link leakyProxySrc}) is the one thread hop per
 * viewer. A `queue ! proxysink` branch made two, and at 100 viewers thread switches were a third of the engine.
 */
export class WebRtcFanout extends EventEmitter<WebRtcFanoutEvents> {
  /** The payloader and tee. */
  readonly #pipeline: GstPipeline;
  readonly #tee: GstElement;
  /** The hub's `video` stream into the pipeline's appsrc. */
  readonly #feed: Subscription;
  /** The tee pad of each proxysink: null until linked, and once unlinked. */
  readonly #branches = new Map<GstElement, { teePad: GstPad | null; unlinked: boolean }>();
  /** Why the pipeline failed, once it has. */
  #failure: string | null = null;
  #closed = false;

  constructor(hub: SampleHub) {
    super();
    const pipeline = parseLaunch(FANOUT_PRODUCER_LAUNCH);
    if (!(pipeline instanceof Gst.Pipeline)) throw new TypeError('the fan-out launch line is not a pipeline');
    this.#pipeline = pipeline;
    this.#tee = this.#pipeline.getByName('t')!;
    const appsrc = this.#pipeline.getByName('videosrc')!;
    asAppSrc(appsrc).format = Gst.Format.TIME;
    // Without a watch, an error here would go nowhere and every viewer would freeze without a word.
    this.#pipeline.getBus()!.addWatch(GLib.PRIORITY_DEFAULT, (_bus: unknown, message: GstMessage) => {
      try {
        this.#onMessage(message);
      } catch (error) {
        this.#safely(() => this.emit('log', 'error', `WebRTC fan-out: bus handler failed: ${errorMessage(error)}`));
      }
      return true;
    });
    this.#feed = hub.attachConsumer(appsrc, 'video');
    this.#pipeline.setState(Gst.State.PLAYING);
  }

  get pipeline(): GstPipeline {
    return this.#pipeline;
  }

  get branches(): number {
    return this.#branches.size;
  }

  /** Why its pipeline failed; null while it works. */
  get failure(): string | null {
    return this.#failure;
  }

  /**
   * A new branch for one viewer, not fed yet: returns the proxysink its `proxysrc` reads, and makes the viewer's
   * pipeline run on this pipeline's clock and base time, as proxysrc needs. {@link link} starts the feed once the
   * viewer's pipeline plays.
   */
  attach(viewer: GstPipeline): GstElement {
    const sink = Gst.ElementFactory.make('proxysink', null)!;
    this.#pipeline.add(sink);
    sink.syncStateWithParent();
    this.#branches.set(sink, { teePad: null, unlinked: false });
    const clock = this.#pipeline.getClock();
    if (clock) viewer.useClock(clock);
    viewer.setBaseTime(this.#pipeline.getBaseTime());
    viewer.setStartTime(Gst.CLOCK_TIME_NONE);
    return sink;
  }

  /**
   * Feeds a branch from the tee, once the viewer's pipeline is PLAYING and its proxysrc reads `sink`: the hub pushes
   * from the producer's thread at any time, and a proxysrc still in NULL answers FLUSHING, which the tee returns
   * upstream: the shared appsrc's task stops, every viewer freezes. No key frame asked for here: nothing reaches the
   * viewer before its DTLS is up, so its peer asks once connected.
   */
  link(sink: GstElement): void {
    const branch = this.#branches.get(sink);
    if (!branch || branch.teePad || branch.unlinked) return;
    const teePad = this.#tee.requestPadSimple('src_%u')!;
    teePad.link(sink.getStaticPad('sink')!);
    branch.teePad = teePad;
  }

  /**
   * Takes a viewer's branch off the tee, before the viewer's pipeline goes to NULL. Order matters: a viewer pipeline
   * going to NULL makes its proxysrc refuse data, the branch's proxysink then returns FLUSHING to whoever pushes
   * into it, and a tee that gets FLUSHING from a pad still linked returns it upstream, which stops the shared appsrc's
   * task: every other viewer froze (32 quick connect/close cycles did it every time). A pad released while the
   * tee pushes into it is one the tee ignores the result of.
   */
  unlink(sink: GstElement): void {
    const branch = this.#branches.get(sink);
    if (!branch || branch.unlinked) return;
    branch.unlinked = true;
    if (!branch.teePad) return;
    branch.teePad.unlink(sink.getStaticPad('sink')!);
    this.#tee.releaseRequestPad(branch.teePad);
  }

  /** Removes a viewer's branch (unlinked first if it was not), once the viewer's pipeline is in NULL. */
  detach(sink: GstElement): void {
    this.unlink(sink);
    const branch = this.#branches.get(sink);
    if (!branch) return;
    this.#branches.delete(sink);
    sink.setState(Gst.State.NULL);
    this.#pipeline.remove(sink);
  }

  /** Stops payloading: the feed ends, the pipeline goes to NULL. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#feed.unsubscribe();
    this.#pipeline.setState(Gst.State.NULL);
    this.#pipeline.getBus()?.removeWatch();
  }

  #onMessage(message: GstMessage): void {
    if (this.#closed) return;
    const type = message.type;
    if (type === Gst.MessageType.ERROR) {
      const [error] = message.parseError();
      const reason = `${objectName(message.src, 'pipeline')}: ${error.message}`;
      this.#safely(() => this.emit('log', 'error', `WebRTC fan-out failed: ${reason}`));
      if (this.#failure !== null) return;
      this.#failure = reason;
      // Its viewers tear their branches down in response: not from inside the bus callback.
      setImmediate(() => this.#safely(() => this.emit('failed', reason)));
    } else if (type === Gst.MessageType.WARNING) {
      const [warning] = message.parseWarning();
      this.#safely(() => this.emit('log', 'warn', `WebRTC fan-out: ${objectName(message.src, 'pipeline')}: ${warning.message}`));
    }
  }

  /** Tells the listeners; one that throws must not take the engine down (this runs in GStreamer callbacks). */
  #safely(emit: () => void): void {
    try {
      emit();
    } catch {
      // A listener's failure is its own.
    }
  }
}
