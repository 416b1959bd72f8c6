import type { IceConnectionStateName, PeerConnectionStateName } from '../machines/webrtcNegotiation.js';
import { errorMessage } from '../config/errors.js';
import { boxedField, errorField, gi, Gst, type GstPad, type GstPromise, type GstStructure, type WebRtcBinElement } from './gst.js';
import { addStatsReply, emptyTotals, type StatsTotals } from './webrtcStats.js';

const GstWebRTC = gi.require('GstWebRTC', '1.0');
const GstSdp = gi.require('GstSdp', '1.0');

/** Enum values by number, as lower-case names (`CONNECTED` -> `connected`). */
function names<T extends string>(values: Record<string, unknown>): Map<number, T> {
  const map = new Map<number, T>();
  for (const [key, value] of Object.entries(values)) if (typeof value === 'number') map.set(value, key.toLowerCase() as T);
  return map;
}
const ICE_CONNECTION_STATES = names<IceConnectionStateName>(GstWebRTC.WebRTCICEConnectionState);
const PEER_CONNECTION_STATES = names<PeerConnectionStateName>(GstWebRTC.WebRTCPeerConnectionState);

type SessionDescription = InstanceType<typeof GstWebRTC.WebRTCSessionDescription>;

/** A session description of `type` from SDP text, or null when the text does not parse. */
function description(type: 'offer' | 'answer', sdp: string): SessionDescription | null {
  const [result, message] = GstSdp.SDPMessage.newFromText(sdp);
  if (result !== GstSdp.SDPResult.OK) return null;
  return GstWebRTC.WebRTCSessionDescription.new(type === 'offer' ? GstWebRTC.WebRTCSDPType.OFFER : GstWebRTC.WebRTCSDPType.ANSWER, message);
}

/** Whether SDP text parses, as webrtcbin will parse it. */
export function sdpParses(sdp: string): boolean {
  const [result] = GstSdp.SDPMessage.newFromText(sdp);
  return result === GstSdp.SDPResult.OK;
}

/** The SDP text of a session description in a promise reply (`offer`, `answer`), or null. */
function replyDescription(reply: GstStructure | null, field: 'offer' | 'answer'): string | null {
  const value = reply ? boxedField(reply, field) : null;
  return value instanceof GstWebRTC.WebRTCSessionDescription ? value.sdp.asText() : null;
}

/**
 * One viewer's `webrtcbin`: its action signals as methods, its handlers and the promises it still owes a reply,
 * with node-gtk's threading rules kept in one place. webrtcbin emits signals and resolves promises on its own
 * threads, which node-gtk makes wait for the JS thread: a reply is read at once (it is webrtcbin's), and acted on
 * by the `done` callbacks on a later tick. {@link release} disconnects every handler and says when webrtcbin has
 * replied to every promise, so that the pipeline goes to NULL only when no webrtcbin thread can wait for JS.
 */
export class WebRtcBin {
  /**
   * The element; null once released. Let go of then: a closure webrtcbin still holds (a handler, a promise's change
   * function) reaches this object, and through the element back to webrtcbin, a cycle across the native boundary
   * that the GC cannot break, which kept every closed viewer's sockets and threads.
   */
  #element: WebRtcBinElement | null;
  /** Where an exception thrown in a callback goes (it must not reach GStreamer: node-gtk would end the process). */
  readonly #onError: (reason: string) => void;
  /** Signal handler ids, disconnected on release. */
  readonly #handlers: number[] = [];
  /** Promises webrtcbin has not replied to yet; kept (and so their wrappers) until it has. */
  readonly #promises = new Set<{ promise: GstPromise | null }>();
  /** Runs once released and every promise is replied to. */
  #settled: (() => void) | null = null;

  constructor(element: WebRtcBinElement, onError: (reason: string) => void) {
    this.#element = element;
    this.#onError = onError;
  }

  /** `stun://host:port`. */
  set stunServer(uri: string) {
    if (this.#element) this.#element.stunServer = uri;
  }

  /** Adds a `turn(s)://user:password@host:port` server; false when webrtcbin refuses the URI. */
  addTurnServer(uri: string): boolean {
    return this.#element?.emit('add-turn-server', uri) === true;
  }

  /** Connects a signal handler, disconnected on release. The handler must copy what it needs and defer the work. */
  on(signal: string, handler: (...args: never[]) => void): void {
    if (!this.#element) return;
    this.#handlers.push(this.#element.connect(signal, (...args: never[]) => this.#guard(signal, () => handler(...args))));
  }

  /** `create-offer`; `done` gets the offer's SDP text, or the reason there is none. */
  createOffer(done: (sdp: string | null, error: string | null) => void): void {
    this.#create('create-offer', 'offer', done);
  }

  /** `create-answer` (the remote offer is set); `done` gets the answer's SDP text, or the reason there is none. */
  createAnswer(done: (sdp: string | null, error: string | null) => void): void {
    this.#create('create-answer', 'answer', done);
  }

  /** `set-local-description`; false when the text does not parse. */
  setLocalDescription(type: 'offer' | 'answer', sdp: string): boolean {
    const local = description(type, sdp);
    if (!local || !this.#element) return local !== null;
    // A promise of the registry, not a bare Gst.Promise.new(): a peer released before webrtcbin replied keeps it
    // until the reply, or the collected wrapper frees it still pending (a GStreamer-WARNING, seen under load).
    this.#element.emit('set-local-description', local, this.#promise('set-local-description', () => null));
    return true;
  }

  /** `set-remote-description`; `done` gets null once webrtcbin took it, or its reason for refusing. False when the text does not parse. */
  setRemoteDescription(type: 'offer' | 'answer', sdp: string, done: (error: string | null) => void): boolean {
    const remote = description(type, sdp);
    if (!remote || !this.#element) return remote !== null;
    const promise = this.#promise('set-remote-description', (reply) => {
      const error = errorField(reply);
      return () => done(error);
    });
    this.#element.emit('set-remote-description', remote, promise);
    return true;
  }

  addIceCandidate(mline: number, candidate: string): void {
    this.#element?.emit('add-ice-candidate', mline, candidate);
  }

  /** ICE and peer-connection states now. Read on a tick of its own, never inside a notify: the getter takes webrtcbin's lock. */
  connectionStates(): { ice: IceConnectionStateName; connection: PeerConnectionStateName } {
    const element = this.#element;
    return {
      ice: (element && ICE_CONNECTION_STATES.get(element.iceConnectionState)) ?? 'closed',
      connection: (element && PEER_CONNECTION_STATES.get(element.connectionState)) ?? 'closed',
    };
  }

  gatheringComplete(): boolean {
    return this.#element?.iceGatheringState === GstWebRTC.WebRTCICEGatheringState.COMPLETE;
  }

  /** `get-stats` for each sink pad (get-stats refuses a null pad under node-gtk); `done` gets the totals over all. */
  requestStats(done: (totals: StatsTotals) => void): void {
    const element = this.#element;
    if (!element) return;
    const pads: GstPad[] = [];
    for (let i = 0; i < 16; i++) {
      const pad = element.getStaticPad(`sink_${i}`);
      if (pad) pads.push(pad);
    }
    const totals = emptyTotals();
    let remaining = pads.length;
    for (const pad of pads) {
      const promise = this.#promise('get-stats', (reply) => {
        if (reply) addStatsReply(reply, totals);
        return --remaining === 0 ? () => done({ ...totals }) : null;
      });
      element.emit('get-stats', pad, promise);
    }
  }

  /**
   * Handlers off; `settled` runs (on a later tick) once webrtcbin has replied to every promise it still owes, after
   * which no webrtcbin thread calls into JS. Promises are not interrupted: gst_promise_reply calls the change function
   * of an interrupted promise too, from webrtcbin's thread, which then waits for the JS thread; a NULL meanwhile (it
   * joins that thread) hung the engine under connect/close churn. Idempotent.
   */
  release(settled: () => void): void {
    const element = this.#element;
    if (!element) return;
    this.#element = null;
    for (const id of this.#handlers.splice(0)) element.disconnect(id);
    this.#settled = settled;
    this.#settleIfDone();
  }

  /**
   * Interrupts what webrtcbin never replied to (a settle that timed out), once the pipeline is in NULL: its
   * threads are joined, so the change functions run here, on this thread, and nothing else can call them.
   */
  interruptPending(): void {
    const pending = [...this.#promises];
    this.#promises.clear();
    for (const entry of pending) entry.promise?.interrupt();
  }

  /** How many replies webrtcbin still owes. */
  get pendingReplies(): number {
    return this.#promises.size;
  }

  #settleIfDone(): void {
    const settled = this.#settled;
    if (!settled || this.#element || this.#promises.size > 0) return;
    this.#settled = null;
    setImmediate(() => this.#guard('settled', settled));
  }

  #create(signal: 'create-offer' | 'create-answer', field: 'offer' | 'answer', done: (sdp: string | null, error: string | null) => void): void {
    if (!this.#element) return;
    const promise = this.#promise(signal, (reply) => {
      const error = errorField(reply);
      const sdp = error ? null : replyDescription(reply, field);
      return () => done(sdp, error);
    });
    this.#element.emit(signal, Gst.Structure.newEmpty(`${field}-options`), promise);
  }

  /**
   * A promise whose reply `read` takes in the change function (on the JS thread, while webrtcbin's thread
   * waits); what `read` returns runs on a later tick, unless the bin has been released by then.
   */
  #promise(what: string, read: (reply: GstStructure | null) => (() => void) | null): GstPromise {
    const entry: { promise: GstPromise | null } = { promise: null };
    const promise = Gst.Promise.newWithChangeFunc((p: GstPromise) =>
      this.#guard(what, () => {
        if (!this.#promises.delete(entry)) return;
        // Replied after release: the reply is no one's business any more, but it was the last one owed, perhaps.
        if (!this.#element) return this.#settleIfDone();
        const then = read(p.getReply());
        if (then) setImmediate(() => this.#guard(what, () => this.#element && then()));
      }),
    );
    entry.promise = promise;
    this.#promises.add(entry);
    return promise;
  }

  /** Runs a callback body: an exception thrown back into GStreamer would end the process (node-gtk). */
  #guard(what: string, fn: () => unknown): void {
    try {
      fn();
    } catch (error) {
      try {
        // Failing the peer is the most a broken handler may cost; never the engine.
        this.#onError(`${what}: ${errorMessage(error)}`);
      } catch {
        // Nothing left to report to.
      }
    }
  }
}
