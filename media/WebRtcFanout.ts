import { EventEmitter } from 'node:events';
import type { Subscription } from 'rxjs';
import { errorMessage } from '../config/errors.js';
import { asAppSrc, asValve, GLib, Gst, GstApp, objectName, parseLaunch, type GstElement, type GstMessage, type GstPad, type GstPipeline, type Valve } from './gst.js';
import type { SampleHub } from './SampleHub.js';
import { FANOUT_PRODUCER_LAUNCH } from './webrtcLaunch.js';

/** What a fan-out tells its owner and its viewers. */
export type WebRtcFanoutEvents = {
  /** Its pipeline posted an ERROR: no branch gets data any more, and new viewers need a new fan-out. Once. */
  failed: [reason: string];
  /** A warning or error of its pipeline, for the engine's log. */
  log: [level: 'warn' | 'error', msg: string];
};

/** At most this much stream (ns) waits in the fan-out's appsrc; older frames are dropped beyond it. */
export const FANOUT_MAX_QUEUE_NS = 500_000_000n;

/** `iotedgegate` or `valve`: both have `drop`. */
type Gate = GstElement & Pick<Valve, 'drop'>;

/**
 * The switch in front of a viewer's webrtcbin, closed: the plugin's `iotedgegate` (plugins/inference/gstgate.c),
 * which passes rtph264pay's buffer lists whole, so a frame's packets go down webrtcbin's chain as one (libnice
 * still sends them one by one); or, without the plugin, `valve`, which splits them. Either drops buffers while
 * closed and lets the sticky events (the caps) through.
 */
function makeGate(): Gate {
  // IOTEDGE_FANOUT_GATE=valve: valve even with the plugin (bench/webrtc.ts's comparison).
  const own = process.env.IOTEDGE_FANOUT_GATE === 'valve' ? null : Gst.ElementFactory.make('iotedgegate', null);
  if (own) return own as Gate;
  const valve = asValve(Gst.ElementFactory.make('valve', null)!);
  valve.dropMode = 1; // forward-sticky-events: the caps reach webrtcbin, buffers do not
  valve.drop = true;
  return valve;
}

/** A viewer inside the fan-out's pipeline: its webrtcbin, the gate in front of it, its tee pad. */
interface Branch {
  readonly gate: Gate;
  /** The viewer's webrtcbin's messages (its errors are its own, not the fan-out's). */
  readonly onMessage: (message: GstMessage) => void;
  /** Null until linked, and once unlinked. */
  teePad: GstPad | null;
  unlinked: boolean;
}

/**
 * Shared-encode WebRTC with the per-viewer work left to GStreamer: one pipeline takes the hub's `video` stream
 * once, payloads it once and tees the RTP to each viewer's webrtcbin, which lives in this same pipeline. A viewer
 * then costs SRTP and sending, no JavaScript per frame and no thread of its own: the tee's thread runs every
 * viewer's send chain in turn.
 *
 * Why no thread hop: with a webrtcbin per viewer in its own pipeline (a `proxysink` branch read by the viewer's
 * `proxysrc`, whose queue is a thread), the queues' wake-ups and sleeps were a third of the engine at 100 viewers.
 * A send chain does not block (nicesink sends without waiting and drops what the socket refuses), so one slow or
 * gone viewer does not hold the tee up; until its DTLS is up, a gate in front of it drops buffers (and passes
 * the caps, so webrtcbin negotiates), because transportsendbin holds buffers back until then.
 */
export class WebRtcFanout extends EventEmitter<WebRtcFanoutEvents> {
  /** The payloader, the tee and every viewer's webrtcbin. */
  readonly #pipeline: GstPipeline;
  readonly #tee: GstElement;
  /** The hub's `video` stream into the pipeline's appsrc. */
  readonly #feed: Subscription;
  /** Each viewer's branch, by its webrtcbin. */
  readonly #branches = new Map<GstElement, Branch>();
  /** Why the pipeline failed, once it has. */
  #failure: string | null = null;
  #closed = false;

  constructor(hub: SampleHub) {
    super();
    const pipeline = parseLaunch(FANOUT_PRODUCER_LAUNCH);
    if (!(pipeline instanceof Gst.Pipeline)) throw new TypeError('the fan-out launch line is not a pipeline');
    this.#pipeline = pipeline;
    this.#tee = this.#pipeline.getByName('t')!;
    const appsrc = asAppSrc(this.#pipeline.getByName('videosrc')!);
    appsrc.format = Gst.Format.TIME;
    // Bounded: when the tee's thread falls behind (a loaded machine, a burst of joins), the oldest frames go, so
    // that every viewer's delay and the engine's memory stay bounded instead of growing with the backlog.
    appsrc.setLeakyType(GstApp.AppLeakyType.DOWNSTREAM);
    appsrc.setMaxTime(FANOUT_MAX_QUEUE_NS);
    appsrc.setMaxBytes(0);
    appsrc.setMaxBuffers(0);
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
   * Adds a viewer's webrtcbin (named uniquely, in NULL) to this pipeline behind a closed gate, and brings both to
   * the pipeline's state. Not fed yet: {@link link} does that. Messages from inside the webrtcbin go to `onMessage`.
   * @throws TypeError when the gate cannot be linked to webrtcbin (GStreamer changed).
   * @returns false when the webrtcbin could not start: the branch stays until {@link detach}, as for any viewer.
   */
  attach(webrtcbin: GstElement, onMessage: (message: GstMessage) => void): boolean {
    const gate = makeGate();
    this.#pipeline.add(gate);
    this.#pipeline.add(webrtcbin);
    const sinkPad = webrtcbin.requestPadSimple('sink_%u');
    if (!sinkPad || gate.getStaticPad('src')!.link(sinkPad) !== Gst.PadLinkReturn.OK) {
      this.#pipeline.remove(webrtcbin);
      this.#pipeline.remove(gate);
      throw new TypeError('cannot link the gate to webrtcbin');
    }
    this.#branches.set(webrtcbin, { gate, onMessage, teePad: null, unlinked: false });
    return gate.syncStateWithParent() && webrtcbin.syncStateWithParent();
  }

  /**
   * Feeds a branch from the tee, once its elements play: one still in NULL answers FLUSHING, which the tee returns
   * upstream: the shared appsrc's task stops, every viewer freezes. Buffers stop at the gate until {@link open}.
   */
  link(webrtcbin: GstElement): void {
    const branch = this.#branches.get(webrtcbin);
    if (!branch || branch.teePad || branch.unlinked) return;
    const teePad = this.#tee.requestPadSimple('src_%u')!;
    teePad.link(branch.gate.getStaticPad('sink')!);
    branch.teePad = teePad;
  }

  /** Lets buffers through to a viewer whose DTLS is up (its peer asks for a key frame then). */
  open(webrtcbin: GstElement): void {
    const branch = this.#branches.get(webrtcbin);
    if (branch && !branch.unlinked) branch.gate.drop = false;
  }

  /**
   * Takes a viewer's branch off the tee, before its webrtcbin goes to NULL. Order matters: an element going to NULL
   * refuses data with FLUSHING, and a tee that gets FLUSHING from a pad still linked returns it upstream, which stops
   * the shared appsrc's task: every other viewer froze (32 quick connect/close cycles did it every time). A pad
   * released while the tee pushes into it is one the tee ignores the result of.
   */
  unlink(webrtcbin: GstElement): void {
    const branch = this.#branches.get(webrtcbin);
    if (!branch || branch.unlinked) return;
    branch.unlinked = true;
    if (!branch.teePad) return;
    branch.teePad.unlink(branch.gate.getStaticPad('sink')!);
    this.#tee.releaseRequestPad(branch.teePad);
    branch.teePad = null;
  }

  /**
   * Removes a viewer's branch (unlinked first if it was not), once its webrtcbin is in NULL; the webrtcbin should be
   * locked in that state before (`setLockedState(true)`), so that nothing here brings it back up.
   */
  detach(webrtcbin: GstElement): void {
    this.unlink(webrtcbin);
    const branch = this.#branches.get(webrtcbin);
    if (!branch) return;
    this.#branches.delete(webrtcbin);
    branch.gate.setState(Gst.State.NULL);
    this.#pipeline.remove(branch.gate);
    if (webrtcbin.getParent() === this.#pipeline) this.#pipeline.remove(webrtcbin);
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
    if (type === Gst.MessageType.LATENCY) {
      this.#pipeline.recalculateLatency();
      return;
    }
    const viewer = this.#viewerOf(message);
    if (viewer) {
      viewer.onMessage(message);
      return;
    }
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

  /** The branch whose webrtcbin (or an element inside it) posted `message`; null for the fan-out's own. */
  #viewerOf(message: GstMessage): Branch | null {
    const src = message.src;
    if (!src || src === this.#pipeline) return null;
    for (const [webrtcbin, branch] of this.#branches) {
      if (src === webrtcbin || src === branch.gate || src.hasAsAncestor(webrtcbin)) return branch;
    }
    return null;
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
