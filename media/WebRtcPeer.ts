import type { Subscription } from 'rxjs';
import { errorMessage } from '../config/errors.js';
import { maskUserinfo } from '../config/redact.js';
import { GLib, Gst, gi, type GstElement, type GstMessage, type GstPipeline } from './gst.js';
import { allElements, parseLaunch } from './PipelineRunner.js';
import { streamNameOf } from './RtspServer.js';
import type { SampleHub } from './SampleHub.js';
import type { WebRtcFanout } from './WebRtcFanout.js';
import type { SignalMessage, WebRtcMode, WebRtcPeerState } from '../ipc/protocol.js';
import { ensureH264Fmtp } from './sdp.js';

const GstWebRTC = gi.require('GstWebRTC', '1.0');
const GstSdp = gi.require('GstSdp', '1.0');
type GstStructure = InstanceType<typeof Gst.Structure>;
type GstPromise = InstanceType<typeof Gst.Promise>;


/** Totals over a peer's outgoing RTP streams, from webrtcbin's `get-stats` and the viewer's RTCP reports. */
export interface WebRtcPeerStats {
  readonly id: string;
  readonly packetsSent: number;
  readonly bytesSent: number;
  /** Packets the viewer reported lost (RTCP receiver reports). */
  readonly packetsLost: number;
  /** Retransmission requests, picture-loss and full-intra requests from the viewer. */
  readonly nackCount: number;
  readonly pliCount: number;
  readonly firCount: number;
  /** Round-trip time from RTCP, in ms; null until the viewer's first receiver report. */
  readonly roundTripTimeMs: number | null;
}

/** Options of {@link WebRtcPeer}. */
export interface WebRtcPeerOptions {
  /** The viewer's id (names the pipeline, shows up in stats). */
  readonly id: string;
  readonly mode: WebRtcMode;
  /** gst-launch description with an element named `webrtcbin`; required in `per-viewer` mode, unused in `shared`. */
  readonly launch?: string;
  /** Samples of the main pipeline: feeds `shared` mode, and any `appsrc name=<stream>src` in a per-viewer launch. */
  readonly hub: SampleHub;
  /** `stun://host:port`; replaces a `stun-server` set in the launch line. */
  readonly stunServer?: string;
  /** `turn://user:password@host:port` (or `turns://`), each added to webrtcbin. */
  readonly turnServers?: readonly string[];
  /** Sends a message to the viewer (the offer, local ICE candidates). */
  readonly onSignal: (msg: SignalMessage) => void;
  /** Every state change; `reason` says why for `failed`. `closed` comes once the pipeline is in NULL. */
  readonly onState: (state: WebRtcPeerState, reason?: string) => void;
  /** Called every `statsIntervalMs` while the peer is connected. */
  readonly onStats?: (stats: WebRtcPeerStats) => void;
  /** Default 1000 ms. */
  readonly statsIntervalMs?: number;
  /**
   * How long to wait for the first offer before `failed` (default 20 s). webrtcbin asks for negotiation only once
   * media caps reach it, so a source that produces nothing (a camera that is down) would otherwise leave the
   * viewer in `connecting` for ever.
   */
  readonly offerTimeoutMs?: number;
  /**
   * WHEP: the viewer's offer. The peer answers it (instead of offering, as the seed protocol does), with every
   * ICE candidate in the answer (no trickle), sent once through `onSignal` as `{sdp: {type: 'answer'}}`.
   */
  readonly offer?: string;
  /**
   * Shared mode's one payloader and tee: the peer reads RTP from a branch of it through a proxysrc (video only,
   * seed protocol) instead of taking every sample into its own appsrc.
   */
  readonly fanout?: WebRtcFanout;
}

/** How long a released peer waits before NULL, for webrtcbin callbacks already on their way to the JS thread. */
const RELEASE_DRAIN_MS = 50;

/** GC passes after the latest release, and their spacing: each pass frees one level of wrappers (the pipeline,
 * then the elements it held, ...), since a wrapped child outlives its parent until its own wrapper is collected. */
const COLLECT_PASSES = 4;
const COLLECT_EVERY_MS = 500;
let collectPassesLeft = 0;
let collectTimer: NodeJS.Timeout | null = null;

/**
 * A closed peer's pipeline keeps its UDP sockets, TCP listeners and threads until V8 collects the JS wrappers,
 * and V8 does not see native memory, so with a small JS heap that can take hours: about 3 file descriptors and a
 * thread per closed viewer, measured. When the process runs with `--expose-gc`, collect shortly after releases.
 */
function scheduleCollect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return;
  collectPassesLeft = COLLECT_PASSES;
  if (collectTimer) return;
  const pass = () => {
    gc();
    collectTimer = --collectPassesLeft > 0 ? setTimeout(pass, COLLECT_EVERY_MS).unref() : null;
  };
  collectTimer = setTimeout(pass, COLLECT_EVERY_MS).unref();
}

/**
 * The payload type the viewer's offer gives H.264 with packetization-mode=1 (constrained baseline preferred): an
 * answerer must send with the offerer's number, so the launch line's 96 is rewritten to it.
 */
export function offeredH264PayloadType(offer: string): number | null {
  const types = [...offer.matchAll(/a=rtpmap:(\d+) H264\/90000/g)].map((m) => Number(m[1]));
  const fmtp = (pt: number) => new RegExp(`a=fmtp:${pt} ([^\r\n]*)`).exec(offer)?.[1] ?? '';
  const mode1 = types.filter((pt) => /packetization-mode=1/.test(fmtp(pt)));
  return mode1.find((pt) => /profile-level-id=42e01f/i.test(fmtp(pt))) ?? mode1.find((pt) => /profile-level-id=42/i.test(fmtp(pt))) ?? mode1[0] ?? null;
}

function withOfferedPayloadType(launch: string, offer: string): string {
  const pt = offeredH264PayloadType(offer);
  if (pt === null) throw new WebRtcPeerError('the offer has no H.264 with packetization-mode=1 to answer with');
  return launch.replace(/\bpayload=96\b/g, `payload=${pt}`).replace(/\bpt=96\b/g, `pt=${pt}`).replace(/(rtph264pay)(?![^!]*\bpt=)/, `$1 pt=${pt}`);
}

/** Puts gathered candidates into each m-section of an SDP (WHEP answers carry them: there is no trickle). */
export function withCandidates(sdp: string, candidates: ReadonlyArray<{ mline: number; candidate: string }>): string {
  const [session, ...media] = sdp.replace(/\r?\n$/, '').split(/\r?\nm=/);
  const sections = media.map((section, index) => {
    const lines = candidates.filter((c) => c.mline === index).map((c) => `a=${c.candidate}`);
    return [`m=${section}`, ...lines, ...(lines.length > 0 || index === 0 ? ['a=end-of-candidates'] : [])].join('\r\n');
  });
  return `${[session, ...sections].join('\r\n')}\r\n`;
}

/** A peer that cannot be built or was used out of order (bad launch line, an answer nobody asked for, ...). */
export class WebRtcPeerError extends Error {
  override readonly name = 'WebRtcPeerError';
}

/** The payload caps of shared mode. No `profile-level-id` here: rtph264pay writes the one of the encoder's SPS
 * (e.g. 42c01f) and a different fixed value would fail negotiation; the SDP is patched to 42e01f instead. */
const SHARED_VIDEO =
  'appsrc name=videosrc format=time ! h264parse ! rtph264pay config-interval=-1 aggregate-mode=zero-latency ! ' +
  'application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,packetization-mode=(string)1 ! webrtcbin.';
/** Shared mode on the fan-out: RTP comes payloaded from a branch of the one shared payloader. */
const FANOUT_LAUNCH = 'webrtcbin name=webrtcbin bundle-policy=max-bundle proxysrc name=rtpsrc ! webrtcbin.';
const SHARED_AUDIO =
  'appsrc name=audiosrc format=time ! rtpopuspay pt=97 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=97,clock-rate=48000 ! webrtcbin.';

/**
 * The pipeline of one viewer in `shared` mode: the hub's `video` stream (H.264), plus its `audio` stream when that
 * is Opus, into one bundled webrtcbin.
 *
 * @example
 * sharedLaunch(true) // 'webrtcbin name=webrtcbin bundle-policy=max-bundle appsrc name=videosrc ! ... appsrc name=audiosrc ! ...'
 */
export function sharedLaunch(withAudio: boolean): string {
  return ['webrtcbin name=webrtcbin bundle-policy=max-bundle', SHARED_VIDEO, withAudio ? SHARED_AUDIO : ''].join(' ').trim();
}

/**
 * Whether the hub's `audio` stream carries Opus (so shared mode can send it without transcoding); false until the
 * producer has published its first audio sample.
 *
 * @example
 * hubHasOpusAudio(hub) // true when the main pipeline has `... ! opusenc ! appsink name=audio`
 */
export function hubHasOpusAudio(hub: SampleHub): boolean {
  return hub.stats().audio?.caps?.startsWith('audio/x-opus') ?? false;
}

/** The webrtcbin properties read here (generated types only know GstElement). */
interface WebRtcBin extends GstElement {
  stunServer: string;
  iceConnectionState: number;
  connectionState: number;
  iceGatheringState: number;
}

/** Numbers of a stats structure, whatever their GType (uint, uint64, int, double). */
function statNumber(structure: GstStructure, field: string): number | null {
  if (!structure.hasField(field)) return null;
  for (const read of [
    () => structure.getUint64(field),
    () => structure.getUint(field),
    () => structure.getInt64(field),
    () => structure.getInt(field),
    () => structure.getDouble(field),
  ]) {
    const [ok, value] = read();
    if (ok) return Number(value);
  }
  return null;
}

/**
 * One WebRTC viewer: its own pipeline with a `webrtcbin`, the server side of the original's signalling (the
 * module offers, the browser answers, both trickle ICE), and its connection state. Signalling text goes in through
 * {@link WebRtcPeer.handleSignal} (checked first with `parseSignal`) and out through `onSignal`.
 *
 * Threads: webrtcbin emits its signals and resolves its promises on its own threads, which node-gtk makes wait
 * for the JS thread. So every handler here only copies what it needs and defers the work with `setImmediate`,
 * and the pipeline goes to NULL only after the handlers are disconnected, on a later tick.
 *
 * @example
 * const peer = new WebRtcPeer({ id, mode: 'shared', hub, onSignal: (m) => ws.send(JSON.stringify(m)), onState });
 * peer.start();
 * ws.on('message', (text) => { const r = parseSignal(String(text)); if (r.ok) peer.handleSignal(r.msg); });
 * ws.on('close', () => peer.close());
 */
export class WebRtcPeer {
  readonly id: string;
  readonly mode: WebRtcMode;
  readonly #options: WebRtcPeerOptions;
  /** The viewer's pipeline; null once released. */
  #pipeline: GstPipeline | null;
  /** Its `webrtcbin`; null once released. */
  #webrtcbin: WebRtcBin | null;
  /** Signal handler ids on the webrtcbin, disconnected before NULL. */
  readonly #handlers: number[] = [];
  /** Hub feeds of the pipeline's appsrcs, ended before NULL. */
  readonly #feeds: Subscription[] = [];
  #statsTimer: NodeJS.Timeout | null = null;
  /** Fails the peer when no offer has gone out in time. */
  #offerTimer: NodeJS.Timeout | null = null;
  #state: WebRtcPeerState | null = null;
  #started = false;
  /** A bus watch is installed (removed after NULL). */
  #watching = false;
  /** Pipeline and handlers let go of (after `failed` or `close()`). */
  #released = false;
  #closed = false;
  /** An offer is out and its answer not yet applied. */
  #awaitingAnswer = false;
  /** webrtcbin asked for negotiation while an offer was out: offer again once the answer is in. */
  #renegotiate = false;
  /** Reads from the shared fan-out (see {@link WebRtcPeerOptions.fanout}), and the branch it was given. */
  readonly #useFanout: boolean;
  #fanoutSink: GstElement | null = null;
  /** WHEP: candidates gathered for the answer, and whether it has gone out. */
  readonly #gathered: Array<{ mline: number; candidate: string }> = [];
  #answerSent = false;
  #answerText: string | null = null;
  #gatherTimer: NodeJS.Timeout | null = null;
  /** webrtcbin promises whose change function (JS) has not run yet; interrupted on release. */
  readonly #promises = new Set<{ promise: GstPromise | null }>();
  /** Candidates that came before the answer (webrtcbin needs the remote description first). */
  readonly #pendingCandidates: Array<{ mline: number; candidate: string }> = [];
  /** The answer has been handed to webrtcbin: later candidates queue behind it in webrtcbin's own task queue. */
  #haveAnswer = false;
  /** ICE and peer-connection states as last read, to report `connected` once. */
  #connected = false;

  /**
   * Builds the viewer's pipeline (nothing runs before {@link start}).
   * @throws WebRtcPeerError when the launch line does not parse, has no `webrtcbin`, or a TURN URI is refused.
   */
  constructor(options: WebRtcPeerOptions) {
    this.id = options.id;
    this.mode = options.mode;
    this.#options = options;
    let launch: string;
    this.#useFanout = options.mode === 'shared' && options.fanout !== undefined && !options.offer && !hubHasOpusAudio(options.hub);
    if (this.#useFanout) launch = FANOUT_LAUNCH;
    else if (options.mode === 'shared') launch = sharedLaunch(!options.offer && hubHasOpusAudio(options.hub));
    else if (options.launch && options.launch.trim() !== '') launch = options.launch;
    else throw new WebRtcPeerError('per-viewer mode needs a webrtc_pipeline launch line');
    if (options.offer) launch = withOfferedPayloadType(launch, options.offer);
    let element: GstElement;
    try {
      element = parseLaunch(launch);
    } catch (error) {
      throw new WebRtcPeerError(`webrtc pipeline does not parse: ${errorMessage(error)}`);
    }
    let pipeline: GstPipeline;
    if (element instanceof Gst.Pipeline) pipeline = element;
    else {
      pipeline = new Gst.Pipeline({ name: `webrtc-${options.id}` });
      pipeline.add(element);
    }
    const webrtcbin = pipeline.getByName('webrtcbin');
    if (!webrtcbin || webrtcbin.getFactory()?.getName() !== 'webrtcbin') {
      throw new WebRtcPeerError('webrtc pipeline has no webrtcbin element named "webrtcbin"');
    }
    this.#pipeline = pipeline;
    this.#webrtcbin = webrtcbin as WebRtcBin;
    // Never read `webrtcbin.iceAgent` from JS (e.g. to turn off libnice's UPnP): webrtcbin keeps that GstObject's
    // floating reference, node-gtk's wrapper sinks it as its own, and when the wrapper is collected the ICE agent
    // is finalized under webrtcbin (CRITICALs, then a peer that never connects).
    if (options.stunServer) this.#webrtcbin.stunServer = options.stunServer;
    for (const uri of options.turnServers ?? []) {
      if (this.#webrtcbin.emit('add-turn-server', uri) !== true) throw new WebRtcPeerError(`TURN server refused: ${maskUserinfo(uri)}`);
    }
  }

  /** The last state reported (null before {@link start}). */
  get state(): WebRtcPeerState | null {
    return this.#state;
  }

  /**
   * Connects the handlers and sets the pipeline PLAYING; the offer follows by `onSignal` once webrtcbin knows the
   * caps of what it sends. A pipeline that cannot start ends in `failed`.
   */
  start(): void {
    if (this.#started || this.#released) return;
    this.#started = true;
    const pipeline = this.#pipeline!;
    const webrtcbin = this.#webrtcbin!;
    this.#handlers.push(
      webrtcbin.connect('on-negotiation-needed', () => this.#guard('on-negotiation-needed', () => setImmediate(() => this.#negotiate()))),
      webrtcbin.connect('on-ice-candidate', (mline: number, candidate: string) =>
        this.#guard('on-ice-candidate', () => {
          // Copied now, sent on a later tick: the webrtcbin thread that emitted this is waiting for us.
          const msg: SignalMessage = { ice: { candidate, sdpMLineIndex: mline } };
          setImmediate(() => {
            if (this.#released) return;
            if (this.#options.offer) this.#gathered.push({ mline, candidate });
            else this.#options.onSignal(msg);
          });
        }),
      ),
      // Read the states on a later tick, not inside notify: the getter takes webrtcbin's lock.
      webrtcbin.connect('notify::ice-connection-state', () => this.#guard('notify', () => setImmediate(() => this.#readConnectionState()))),
      webrtcbin.connect('notify::connection-state', () => this.#guard('notify', () => setImmediate(() => this.#readConnectionState()))),
      webrtcbin.connect('notify::ice-gathering-state', () => this.#guard('notify', () => setImmediate(() => this.#readGatheringState()))),
    );
    pipeline.getBus()!.addWatch(GLib.PRIORITY_DEFAULT, (_bus: unknown, message: GstMessage) => {
      this.#guard('bus', () => this.#onMessage(message));
      return true;
    });
    this.#watching = true;
    // appsrc name=videosrc (shared mode, or a per-viewer line that reads the main pipeline) feeds from the hub.
    for (const child of allElements(pipeline)) {
      const stream = streamNameOf(child.name);
      if (stream && child.getFactory()?.getName() === 'appsrc') {
        // The `format` property itself: appsrc re-applies it on start, undoing the GstBaseSrc.setFormat() that
        // attachConsumer calls, and a BYTES segment into a payloader floods GStreamer-CRITICALs.
        (child as unknown as { format: number }).format = Gst.Format.TIME;
        this.#feeds.push(this.#options.hub.attachConsumer(child, stream));
      }
    }
    if (this.#useFanout) {
      this.#fanoutSink = this.#options.fanout!.attach(pipeline);
      (pipeline.getByName('rtpsrc') as unknown as { proxysink: GstElement }).proxysink = this.#fanoutSink;
    }
    this.#setState('connecting');
    const offerTimeoutMs = this.#options.offerTimeoutMs ?? 20_000;
    this.#offerTimer = setTimeout(
      () => this.#fail(`no offer after ${offerTimeoutMs / 1000} s: the pipeline produced no media to negotiate (is its source down?)`),
      offerTimeoutMs,
    );
    if (pipeline.setState(Gst.State.PLAYING) === Gst.StateChangeReturn.FAILURE) {
      const error = pipeline.getBus()?.timedPopFiltered(0n, Gst.MessageType.ERROR);
      const reason = error ? `${(error.src as { name?: string } | null)?.name ?? 'pipeline'}: ${error.parseError()[0].message}` : 'failed to change state to PLAYING';
      this.#fail(reason);
      return;
    }
    if (this.#options.onStats) {
      this.#statsTimer = setInterval(() => this.#guard('stats', () => this.#requestStats()), this.#options.statsIntervalMs ?? 1_000);
      this.#statsTimer.unref();
    }
  }

  /**
   * Applies a message from the viewer (already checked by `parseSignal`): the answer to our offer, or an ICE
   * candidate (held until the answer is in; an empty candidate, end-of-candidates, is dropped).
   * @throws WebRtcPeerError for an offer (the module is the offerer), an answer nobody asked for, a description
   *   that does not parse, or a peer that is closed.
   */
  handleSignal(msg: SignalMessage): void {
    if (this.#released) throw new WebRtcPeerError(`peer ${this.id} is ${this.#state ?? 'closed'}`);
    if ('sdp' in msg) {
      if (msg.sdp.type !== 'answer') throw new WebRtcPeerError('the module makes the offer; expected an answer');
      if (!this.#awaitingAnswer || this.#haveAnswer) throw new WebRtcPeerError('no offer is waiting for an answer');
      const [result, sdp] = GstSdp.SDPMessage.newFromText(msg.sdp.sdp);
      if (result !== GstSdp.SDPResult.OK) throw new WebRtcPeerError('answer SDP does not parse');
      const answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp);
      this.#haveAnswer = true;
      const promise = this.#promise('set-remote-description', (reply) => {
        const error = this.#replyError(reply);
        setImmediate(() => this.#guard('set-remote-description', () => this.#answerApplied(error)));
      });
      this.#webrtcbin!.emit('set-remote-description', answer, promise);
      for (const { mline, candidate } of this.#pendingCandidates.splice(0)) this.#webrtcbin!.emit('add-ice-candidate', mline, candidate);
      return;
    }
    const { candidate, sdpMLineIndex } = msg.ice;
    if (candidate === '') return;
    if (this.#haveAnswer) this.#webrtcbin!.emit('add-ice-candidate', sdpMLineIndex, candidate);
    else if (this.#pendingCandidates.length >= 100) throw new WebRtcPeerError('too many ICE candidates before the answer');
    else this.#pendingCandidates.push({ mline: sdpMLineIndex, candidate });
  }

  /**
   * Ends the peer: hub feeds and signal handlers go first, NULL on a later tick (a webrtcbin or appsrc thread may
   * be waiting for this thread), then `onState('closed')`. Idempotent; safe in any state.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#release(() => this.#setState('closed'));
  }

  /** Runs a signal handler body; an exception thrown back into GStreamer would end the process (node-gtk). */
  #guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      // Failing the peer is the most a broken handler may cost; never the engine.
      try {
        this.#fail(`${what}: ${errorMessage(error)}`);
      } catch {
        // Nothing left to report to.
      }
    }
  }

  /**
   * A promise for a webrtcbin action whose reply `onReply` reads (on the JS thread, while webrtcbin's thread waits).
   * It stays in {@link #promises} until then, so that {@link #release} can interrupt it: a reply arriving while
   * the JS thread is inside `setState(NULL)` would wait for the JS thread, which waits for webrtcbin's thread.
   */
  #promise(what: string, onReply: (reply: GstStructure | null) => void): GstPromise {
    const entry: { promise: GstPromise | null } = { promise: null };
    const promise = Gst.Promise.newWithChangeFunc((p: GstPromise) =>
      this.#guard(what, () => {
        if (!this.#promises.delete(entry)) return;
        // Interrupted by #release (or replied after it): the reply is no one's business any more.
        if (this.#released) return;
        onReply(p.getReply());
      }),
    );
    entry.promise = promise;
    this.#promises.add(entry);
    return promise;
  }

  /** A `{ error }` in a promise reply (webrtcbin reports refused descriptions that way), as text. */
  #replyError(reply: GstStructure | null): string | null {
    if (!reply || !reply.hasField('error')) return null;
    const boxed = reply.getValue('error')?.getBoxed() as unknown as { message?: string } | null;
    return boxed?.message ?? 'unknown error';
  }

  #negotiate(): void {
    if (this.#released) return;
    if (this.#options.offer) {
      this.#answer(this.#options.offer);
      return;
    }
    if (this.#awaitingAnswer) {
      this.#renegotiate = true;
      return;
    }
    this.#awaitingAnswer = true;
    this.#haveAnswer = false;
    const promise = this.#promise('create-offer', (reply) => {
      // The reply belongs to webrtcbin's thread: take the SDP as text now, act on it on a later tick.
      const error = this.#replyError(reply);
      const offer = error ? null : (reply?.getValue('offer')?.getBoxed() as unknown as InstanceType<typeof GstWebRTC.WebRTCSessionDescription> | null);
      const text = offer?.sdp.asText() ?? null;
      setImmediate(() => this.#guard('create-offer', () => this.#offerCreated(text, error)));
    });
    this.#webrtcbin!.emit('create-offer', Gst.Structure.newEmpty('offer-options'), promise);
  }

  #offerCreated(text: string | null, error: string | null): void {
    if (this.#released) return;
    if (!text) {
      this.#fail(`create-offer failed: ${error ?? 'no offer in the reply'}`);
      return;
    }
    // The offer that is sent is the offer that is set: patched for browsers, then parsed back.
    const sdpText = ensureH264Fmtp(text);
    const [result, sdp] = GstSdp.SDPMessage.newFromText(sdpText);
    if (result !== GstSdp.SDPResult.OK) {
      this.#fail('patched offer SDP does not parse');
      return;
    }
    const offer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, sdp);
    this.#webrtcbin!.emit('set-local-description', offer, Gst.Promise.new());
    if (this.#offerTimer) clearTimeout(this.#offerTimer);
    this.#offerTimer = null;
    this.#setState('negotiating');
    this.#options.onSignal({ sdp: { type: 'offer', sdp: sdpText } });
  }

  /** WHEP: applies the viewer's offer once, answers it, and sends the answer when ICE gathering is done. */
  #answer(offerText: string): void {
    if (this.#awaitingAnswer) return;
    this.#awaitingAnswer = true;
    const [result, sdp] = GstSdp.SDPMessage.newFromText(offerText);
    if (result !== GstSdp.SDPResult.OK) {
      this.#fail('offer SDP does not parse');
      return;
    }
    const offer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, sdp);
    const applied = this.#promise('set-remote-description', (reply) => {
      const error = this.#replyError(reply);
      setImmediate(() =>
        this.#guard('set-remote-description', () => {
          if (error) this.#fail(`offer refused: ${error}`);
          else this.#createAnswer();
        }),
      );
    });
    this.#webrtcbin!.emit('set-remote-description', offer, applied);
  }

  #createAnswer(): void {
    if (this.#released) return;
    const promise = this.#promise('create-answer', (reply) => {
      const error = this.#replyError(reply);
      const answer = error ? null : (reply?.getValue('answer')?.getBoxed() as unknown as InstanceType<typeof GstWebRTC.WebRTCSessionDescription> | null);
      const text = answer?.sdp.asText() ?? null;
      setImmediate(() =>
        this.#guard('create-answer', () => {
          if (!answer || !text) {
            this.#fail(`create-answer failed: ${error ?? 'no answer in the reply'}`);
            return;
          }
          this.#webrtcbin!.emit('set-local-description', answer, Gst.Promise.new());
          if (this.#offerTimer) clearTimeout(this.#offerTimer);
          this.#offerTimer = null;
          this.#answerText = text;
          this.#haveAnswer = true;
          this.#setState('negotiating');
          // Gathering on loopback takes milliseconds; a stuck STUN server must not hold the viewer up for long.
          this.#gatherTimer = setTimeout(() => this.#guard('gathering', () => this.#sendAnswer()), 3_000);
          this.#readGatheringState();
        }),
      );
    });
    this.#webrtcbin!.emit('create-answer', Gst.Structure.newEmpty('answer-options'), promise);
  }

  #readGatheringState(): void {
    if (this.#released || !this.#options.offer || !this.#webrtcbin) return;
    if (this.#webrtcbin.iceGatheringState === GstWebRTC.WebRTCICEGatheringState.COMPLETE) this.#sendAnswer();
  }

  #sendAnswer(): void {
    if (this.#released || this.#answerSent || !this.#answerText) return;
    this.#answerSent = true;
    if (this.#gatherTimer) clearTimeout(this.#gatherTimer);
    this.#options.onSignal({ sdp: { type: 'answer', sdp: withCandidates(this.#answerText, this.#gathered) } });
  }

  #answerApplied(error: string | null): void {
    if (this.#released) return;
    if (error) {
      this.#fail(`answer refused: ${error}`);
      return;
    }
    this.#awaitingAnswer = false;
    if (this.#renegotiate) {
      this.#renegotiate = false;
      this.#negotiate();
    }
  }

  #readConnectionState(): void {
    if (this.#released || !this.#webrtcbin) return;
    const ice = this.#webrtcbin.iceConnectionState;
    const pc = this.#webrtcbin.connectionState;
    const { FAILED: ICE_FAILED, CONNECTED: ICE_CONNECTED, COMPLETED: ICE_COMPLETED } = GstWebRTC.WebRTCICEConnectionState;
    if (ice === ICE_FAILED || pc === GstWebRTC.WebRTCPeerConnectionState.FAILED) {
      this.#fail(ice === ICE_FAILED ? 'ICE failed (no candidate pair works: check advertised host, STUN/TURN)' : 'connection failed (DTLS)');
      return;
    }
    // `connection-state` counts DTLS too, so media can flow; ICE alone is not enough.
    const connected = pc === GstWebRTC.WebRTCPeerConnectionState.CONNECTED && (ice === ICE_CONNECTED || ice === ICE_COMPLETED);
    if (connected && !this.#connected) {
      this.#connected = true;
      this.#setState('connected');
    }
  }

  #onMessage(message: GstMessage): void {
    if (this.#released) return;
    const type = message.type;
    if (type === Gst.MessageType.ERROR) {
      const [error] = message.parseError();
      this.#fail(`${(message.src as { name?: string } | null)?.name ?? 'pipeline'}: ${error.message}`);
    } else if (type === Gst.MessageType.LATENCY) {
      this.#pipeline?.recalculateLatency();
    } else if (type === Gst.MessageType.EOS) {
      this.#fail('the stream ended (EOS)');
    }
  }

  /** Asks webrtcbin for the stats of each of its sink pads (get-stats refuses a null pad under node-gtk). */
  #requestStats(): void {
    if (this.#released || !this.#connected || !this.#webrtcbin) return;
    const pads: InstanceType<typeof Gst.Pad>[] = [];
    for (let i = 0; i < 16; i++) {
      const pad = this.#webrtcbin.getStaticPad(`sink_${i}`);
      if (pad) pads.push(pad);
    }
    const totals = { packetsSent: 0, bytesSent: 0, packetsLost: 0, nackCount: 0, pliCount: 0, firCount: 0, roundTripTimeMs: null as number | null };
    let remaining = pads.length;
    for (const pad of pads) {
      const promise = this.#promise('get-stats', (reply) => {
        if (reply) this.#addStats(reply, totals);
        if (--remaining === 0) {
          const stats: WebRtcPeerStats = { id: this.id, ...totals };
          setImmediate(() => {
            if (!this.#released) this.#options.onStats?.(stats);
          });
        }
      });
      this.#webrtcbin.emit('get-stats', pad, promise);
    }
  }

  /** Adds the outbound-rtp and remote-inbound-rtp entries of one get-stats reply to `totals`. */
  #addStats(reply: GstStructure, totals: { -readonly [K in keyof Omit<WebRtcPeerStats, 'id'>]: WebRtcPeerStats[K] }): void {
    for (let i = 0; i < reply.nFields(); i++) {
      const entry = reply.getValue(reply.nthFieldName(i))?.getBoxed() as unknown as GstStructure | null;
      if (!entry || typeof entry.getName !== 'function') continue;
      const kind = entry.getName();
      if (kind === 'outbound-rtp') {
        totals.packetsSent += statNumber(entry, 'packets-sent') ?? 0;
        totals.bytesSent += statNumber(entry, 'bytes-sent') ?? 0;
        totals.nackCount += statNumber(entry, 'nack-count') ?? 0;
        totals.pliCount += statNumber(entry, 'pli-count') ?? 0;
        totals.firCount += statNumber(entry, 'fir-count') ?? 0;
      } else if (kind === 'remote-inbound-rtp') {
        totals.packetsLost += statNumber(entry, 'packets-lost') ?? 0;
        const rtt = statNumber(entry, 'round-trip-time');
        if (rtt !== null) totals.roundTripTimeMs = Math.max(totals.roundTripTimeMs ?? 0, rtt * 1000);
      }
    }
  }

  #setState(state: WebRtcPeerState, reason?: string): void {
    if (this.#state === state) return;
    this.#state = state;
    try {
      this.#options.onState(state, reason);
    } catch {
      // The owner's callback failing must not leave the pipeline half torn down.
    }
  }

  #fail(reason: string): void {
    if (this.#released) return;
    this.#setState('failed', reason);
    this.#release(() => undefined);
  }

  /** Feeds and handlers off now, NULL on a later tick, then `done`. */
  #release(done: () => void): void {
    if (this.#released) {
      // Already released by a failure: `closed` still comes, after the NULL in flight.
      setTimeout(done, RELEASE_DRAIN_MS);
      return;
    }
    this.#released = true;
    if (this.#statsTimer) clearInterval(this.#statsTimer);
    if (this.#offerTimer) clearTimeout(this.#offerTimer);
    this.#statsTimer = null;
    this.#offerTimer = null;
    for (const feed of this.#feeds.splice(0)) feed.unsubscribe();
    const pipeline = this.#pipeline;
    const webrtcbin = this.#webrtcbin;
    const watching = this.#watching;
    for (const id of this.#handlers.splice(0)) webrtcbin?.disconnect(id);
    // Interrupting runs each change function now, on this thread (it sees #released and returns), and makes a
    // later reply from webrtcbin's thread call nothing.
    for (const entry of [...this.#promises]) entry.promise?.interrupt();
    this.#promises.clear();
    this.#pendingCandidates.length = 0;
    this.#pipeline = null;
    this.#webrtcbin = null;
    // NULL joins webrtcbin's threads. One already inside a JS callback (emitted just before the disconnect above)
    // waits for this thread: let the loop serve it first. A timer, not setImmediate, so that a poll phase runs.
    const fanoutSink = this.#fanoutSink;
    this.#fanoutSink = null;
    // Off the shared tee before this pipeline refuses data (see WebRtcFanout.unlink).
    if (fanoutSink) this.#options.fanout?.unlink(fanoutSink);
    setTimeout(() => {
      try {
        pipeline?.setState(Gst.State.NULL);
        if (watching) pipeline?.getBus()?.removeWatch();
        if (fanoutSink) this.#options.fanout?.detach(fanoutSink);
      } finally {
        scheduleCollect();
        done();
      }
    }, RELEASE_DRAIN_MS);
  }
}
