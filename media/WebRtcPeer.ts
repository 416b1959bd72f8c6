import type { Subscription } from 'rxjs';
import { createActor, fromCallback } from 'xstate';
import { errorMessage } from '../config/errors.js';
import { maskUserinfo } from '../config/redact.js';
import type { SignalMessage, WebRtcMode, WebRtcPeerState } from '../ipc/protocol.js';
import {
  isReleased,
  RELEASE_DRAIN_MS,
  SETTLE_TIMEOUT_MS,
  webrtcNegotiationMachine,
  type Candidate,
  type WebRtcNegotiationActor,
  type WebRtcNegotiationEvent,
} from '../machines/webrtcNegotiation.js';
import { AsyncNull } from './asyncNull.js';
import { WebRtcPeerError } from './errors.js';
import { collectSoon } from './gc.js';
import { allElements, asAppSrc, asWebRtcBin, gi, GLib, Gst, objectName, parseLaunch, type GstElement, type GstMessage, type GstPipeline } from './gst.js';
import { streamNameOf } from './RtspServer.js';
import type { SampleHub } from './SampleHub.js';
import { ensureH264Fmtp, withCandidates } from './sdp.js';
import { sdpParses, WebRtcBin } from './WebRtcBin.js';
import type { WebRtcFanout } from './WebRtcFanout.js';
import type { WebRtcFanouts } from './WebRtcFanouts.js';
import { hubHasOpusAudio, peerLaunch } from './webrtcLaunch.js';
import type { WebRtcPeerStats } from './webrtcStats.js';

export { WebRtcPeerError } from './errors.js';
export type { WebRtcPeerStats } from './webrtcStats.js';

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
  /** Sends a message to the viewer (the offer, local ICE candidates; WHEP: the answer). */
  readonly onSignal: (msg: SignalMessage) => void;
  /** Every state change, each once; `reason` says why for `failed`. `closed` comes last, once the pipeline is in NULL. */
  readonly onState: (state: WebRtcPeerState, reason?: string) => void;
  /** Called every `statsIntervalMs` while the peer is connected. */
  readonly onStats?: (stats: WebRtcPeerStats) => void;
  /** Default 1000 ms. */
  readonly statsIntervalMs?: number;
  /**
   * WHEP: the viewer's offer. The peer answers it (instead of offering, as the seed protocol does), with every
   * ICE candidate in the answer (no trickle), sent once through `onSignal` as `{sdp: {type: 'answer'}}`.
   */
  readonly offer?: string;
  /**
   * Shared mode's fan-outs: a shared viewer (seed protocol, no Opus audio in the hub) gets its webrtcbin inside the
   * current fan-out's pipeline, on a branch of its RTP (media/WebRtcFanout.ts), instead of taking every sample into
   * its own appsrc.
   */
  readonly fanouts?: WebRtcFanouts;
}

/** This peer's branch of a shared fan-out. */
interface FanoutBranch {
  readonly fanouts: WebRtcFanouts;
  readonly fanout: WebRtcFanout;
  /** The viewer's webrtcbin, inside the fan-out's pipeline. */
  readonly webrtcbin: GstElement;
  /** Fails the peer when the fan-out fails. */
  readonly onFailed: (reason: string) => void;
}

/**
 * One WebRTC viewer: its own pipeline with a `webrtcbin`, the server side of the original's signalling (the
 * module offers, the browser answers, both trickle ICE) or of WHEP (the viewer offers, the answer carries every
 * candidate), and its connection state. What happens next is decided by the negotiation machine
 * (`machines/webrtcNegotiation.ts`); this class does the GStreamer side of its actions.
 *
 * Threads: webrtcbin emits its signals and resolves its promises on its own threads, which node-gtk makes wait
 * for the JS thread. So every handler here only copies what it needs and sends the machine an event on a later
 * tick ({@link WebRtcBin} does the same for promise replies), and the pipeline goes to NULL only after the
 * handlers are disconnected and the promises interrupted, on a later tick.
 *
 * @example
 * // In the engine, for the control plane's `webrtc-open` (the control plane owns the viewer's socket):
 * const peer = new WebRtcPeer({
 *   id, mode: 'shared', hub, fanouts,
 *   onSignal: (signal) => send({ type: 'webrtc-signal', peer: id, signal }),
 *   onState: (state, reason) => send({ type: 'webrtc-state', peer: id, state, reason: reason ?? null }),
 * });
 * peer.start();
 * peer.handleSignal(command.signal); // `webrtc-signal` (checked with parseSignal by the control plane)
 * peer.close(); // `webrtc-close`
 */
export class WebRtcPeer {
  readonly id: string;
  readonly mode: WebRtcMode;
  readonly #options: WebRtcPeerOptions;
  /** The viewer's pipeline; null once in NULL (see WebRtcBin's element for why it is let go of), and for a viewer
   * of a fan-out, whose webrtcbin lives in the fan-out's pipeline. */
  #pipeline: GstPipeline | null;
  /** A fan-out viewer's webrtcbin (added to the fan-out's pipeline on start); null otherwise and once in NULL. */
  #inline: GstElement | null = null;
  /** Its webrtcbin: action signals, handlers and the promises it owes. */
  readonly #bin: WebRtcBin;
  /** Reads from a shared fan-out (decided by the launch line). */
  readonly #usesFanout: boolean;
  /** The fan-out branch, once joined. */
  #branch: FanoutBranch | null = null;
  /** Hub feeds of the pipeline's appsrcs, ended on release. */
  readonly #feeds: Subscription[] = [];
  /** A bus watch is installed (removed after NULL). */
  #busWatch = false;
  /** Where the peer is: idle, live (negotiation and connection), released, closed. */
  readonly #actor: WebRtcNegotiationActor;
  /** The last state reported through `onState` (null before {@link start}). */
  #state: WebRtcPeerState | null = null;

  /**
   * Builds the viewer's pipeline (nothing runs before {@link start}).
   * @throws WebRtcPeerError when the launch line does not parse or has no `webrtcbin`, a WHEP offer does not
   *   parse or has no usable H.264, or a TURN URI is refused.
   */
  constructor(options: WebRtcPeerOptions) {
    this.id = options.id;
    this.mode = options.mode;
    this.#options = options;
    const chosen = peerLaunch({
      mode: options.mode,
      launch: options.launch,
      offer: options.offer,
      fanout: options.fanouts !== undefined,
      opusAudio: hubHasOpusAudio(options.hub),
    });
    if (options.offer && !sdpParses(options.offer)) throw new WebRtcPeerError('offer SDP does not parse');
    this.#usesFanout = chosen.fanout;
    let element: GstElement;
    try {
      element = parseLaunch(chosen.launch);
    } catch (error) {
      throw new WebRtcPeerError(`webrtc pipeline does not parse: ${errorMessage(error)}`);
    }
    let webrtcbin: GstElement | null;
    if (chosen.fanout) {
      // Alone, and named for this viewer: it joins the fan-out's pipeline, beside the other viewers' (see WebRtcFanout).
      webrtcbin = element;
      webrtcbin.name = `webrtcbin-${options.id}`;
      this.#pipeline = null;
      this.#inline = webrtcbin;
    } else {
      let pipeline: GstPipeline;
      if (element instanceof Gst.Pipeline) pipeline = element;
      else {
        pipeline = new Gst.Pipeline({ name: `webrtc-${options.id}` });
        pipeline.add(element);
      }
      webrtcbin = pipeline.getByName('webrtcbin');
      this.#pipeline = pipeline;
    }
    if (!webrtcbin || webrtcbin.getFactory()?.getName() !== 'webrtcbin') {
      throw new WebRtcPeerError('webrtc pipeline has no webrtcbin element named "webrtcbin"');
    }
    this.#bin = new WebRtcBin(asWebRtcBin(webrtcbin), (reason) => this.fail(reason));
    // Never read `webrtcbin.iceAgent` from JS (e.g. to turn off libnice's UPnP): webrtcbin keeps that GstObject's
    // floating reference, node-gtk's wrapper sinks it as its own, and when the wrapper is collected the ICE agent
    // is finalized under webrtcbin (CRITICALs, then a peer that never connects).
    if (options.stunServer) this.#bin.stunServer = options.stunServer;
    for (const uri of options.turnServers ?? []) {
      if (!this.#bin.addTurnServer(uri)) throw new WebRtcPeerError(`TURN server refused: ${maskUserinfo(uri)}`);
    }
    this.#actor = createActor(this.#machine(), { input: { offer: options.offer || null } });
    // Only a bug in the machine gets here (actions are guarded): end the peer without it.
    this.#actor.subscribe({ error: (error) => this.#abandon(`negotiation failed: ${errorMessage(error)}`) });
    this.#actor.start();
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
    this.#send({ type: 'START' });
  }

  /**
   * Applies a message from the viewer (already checked by `parseSignal`): the answer to our offer, or an ICE
   * candidate (held until the answer is in; an empty candidate, end-of-candidates, is dropped).
   * @throws WebRtcPeerError for an offer (the module is the offerer), an answer nobody asked for, a description
   *   that does not parse, too many early candidates, or a peer that is released.
   */
  handleSignal(msg: SignalMessage): void {
    const snapshot = this.#actor.getSnapshot();
    if (isReleased(snapshot)) throw new WebRtcPeerError(`peer ${this.id} is ${this.#state ?? 'closed'}`);
    if ('sdp' in msg) {
      if (msg.sdp.type !== 'answer') throw new WebRtcPeerError('the module makes the offer; expected an answer');
      const answer: WebRtcNegotiationEvent = { type: 'ANSWER', sdp: msg.sdp.sdp };
      if (!snapshot.can(answer)) throw new WebRtcPeerError('no offer is waiting for an answer');
      if (!sdpParses(msg.sdp.sdp)) throw new WebRtcPeerError('answer SDP does not parse');
      this.#send(answer);
      return;
    }
    const { candidate, sdpMLineIndex } = msg.ice;
    if (candidate === '') return;
    const event: WebRtcNegotiationEvent = { type: 'REMOTE_CANDIDATE', mline: sdpMLineIndex, candidate };
    if (!snapshot.can(event)) throw new WebRtcPeerError('too many ICE candidates before the answer');
    this.#send(event);
  }

  /** Fails the peer (`failed` with the reason, then released); nothing once it is released. */
  fail(reason: string): void {
    this.#send({ type: 'FAIL', reason });
  }

  /**
   * Ends the peer: hub feeds and signal handlers go first, NULL on a later tick (a webrtcbin or appsrc thread may
   * be waiting for this thread), then `onState('closed')`. Idempotent; safe in any state.
   */
  close(): void {
    this.#send({ type: 'CLOSE' });
  }

  #send(event: WebRtcNegotiationEvent): void {
    if (this.#actor.getSnapshot().status === 'active') this.#actor.send(event);
  }

  /** Runs `fn` on a later tick (the GStreamer thread that called us is waiting); a throw fails the peer. */
  #later(what: string, fn: () => void): void {
    setImmediate(() => {
      try {
        fn();
      } catch (error) {
        this.fail(`${what}: ${errorMessage(error)}`);
      }
    });
  }

  /** The negotiation machine with this peer's GStreamer side as its actions. */
  #machine() {
    const { onSignal, onStats } = this.#options;
    const bin = this.#bin;
    const statsIntervalMs = this.#options.statsIntervalMs ?? 1_000;
    // An action that throws fails the peer (the machine goes on; XState would otherwise stop it with an error).
    const guarded =
      <P>(what: string, fn: (params: P) => void) =>
      (_: unknown, params: P) => {
        try {
          fn(params);
        } catch (error) {
          this.fail(`${what}: ${errorMessage(error)}`);
        }
      };
    return webrtcNegotiationMachine.provide({
      actions: {
        play: guarded('start', () => this.#play()),
        report: guarded('report', ({ state, reason }: { state: WebRtcPeerState; reason?: string }) => this.#report(state, reason)),
        // Seed protocol: the module offers.
        createOffer: guarded('create-offer', () =>
          bin.createOffer((text, error) => {
            if (!text) return this.fail(`create-offer failed: ${error ?? 'no offer in the reply'}`);
            const sdp = ensureH264Fmtp(text);
            if (!sdpParses(sdp)) return this.fail('patched offer SDP does not parse');
            this.#send({ type: 'OFFER_CREATED', sdp });
          }),
        ),
        setLocalDescription: guarded('set-local-description', ({ type, sdp }: { type: 'offer' | 'answer'; sdp: string }) => {
          if (!bin.setLocalDescription(type, sdp)) this.fail(`local ${type} SDP does not parse`);
        }),
        sendOffer: guarded('sending the offer', ({ sdp }: { sdp: string }) => onSignal({ sdp: { type: 'offer', sdp } })),
        sendCandidate: guarded('sending a candidate', ({ mline, candidate }: Candidate) => onSignal({ ice: { candidate, sdpMLineIndex: mline } })),
        applyAnswer: guarded('set-remote-description', ({ sdp }: { sdp: string }) => {
          const parsed = bin.setRemoteDescription('answer', sdp, (error) => (error ? this.fail(`answer refused: ${error}`) : this.#send({ type: 'ANSWER_APPLIED' })));
          if (!parsed) this.fail('answer SDP does not parse');
        }),
        addCandidates: guarded('add-ice-candidate', ({ candidates }: { candidates: readonly Candidate[] }) => {
          for (const { mline, candidate } of candidates) bin.addIceCandidate(mline, candidate);
        }),
        // WHEP: the viewer offers, the answer goes out once gathering is done.
        applyOffer: guarded('set-remote-description', ({ sdp }: { sdp: string }) => {
          const parsed = bin.setRemoteDescription('offer', sdp, (error) => (error ? this.fail(`offer refused: ${error}`) : this.#send({ type: 'OFFER_APPLIED' })));
          if (!parsed) this.fail('offer SDP does not parse');
        }),
        createAnswer: guarded('create-answer', () =>
          bin.createAnswer((text, error) => (text ? this.#send({ type: 'ANSWER_CREATED', sdp: text }) : this.fail(`create-answer failed: ${error ?? 'no answer in the reply'}`))),
        ),
        checkGathering: guarded('gathering', () => this.#readGathering()),
        sendAnswer: guarded('sending the answer', ({ sdp, candidates }: { sdp: string; candidates: readonly Candidate[] }) =>
          onSignal({ sdp: { type: 'answer', sdp: withCandidates(sdp, candidates) } }),
        ),
        release: guarded('release', () => this.#release()),
        setNull: guarded('NULL', () => this.#setNull()),
      },
      actors: {
        stats: fromCallback(() => {
          if (!onStats) return undefined;
          // Counters are not worth failing a viewer for.
          const quietly = (fn: () => void) => {
            try {
              fn();
            } catch {
              // Lost counters.
            }
          };
          const timer = setInterval(() => quietly(() => bin.requestStats((totals) => quietly(() => onStats({ id: this.id, ...totals })))), statsIntervalMs);
          timer.unref();
          return () => clearInterval(timer);
        }),
      },
    });
  }

  /** Handlers, bus watch, hub feeds and fan-out branch on, then PLAYING. */
  #play(): void {
    const bin = this.#bin;
    bin.on('on-negotiation-needed', () => this.#later('on-negotiation-needed', () => this.#send({ type: 'NEGOTIATION_NEEDED' })));
    // Copied now, acted on later: the webrtcbin thread that emitted this is waiting for us.
    bin.on('on-ice-candidate', (mline: number, candidate: string) => {
      const event: WebRtcNegotiationEvent = { type: 'LOCAL_CANDIDATE', mline, candidate };
      this.#later('on-ice-candidate', () => this.#send(event));
    });
    // Read the states on a later tick, not inside notify: the getter takes webrtcbin's lock.
    const readStates = () => this.#later('notify', () => this.#readConnectionState());
    bin.on('notify::ice-connection-state', readStates);
    bin.on('notify::connection-state', readStates);
    bin.on('notify::ice-gathering-state', () => this.#later('notify', () => this.#readGathering()));
    if (this.#inline) return this.#joinFanout(this.#inline);
    const pipeline = this.#pipeline!;
    pipeline.getBus()!.addWatch(GLib.PRIORITY_DEFAULT, (_bus: unknown, message: GstMessage) => {
      try {
        this.#onMessage(message);
      } catch (error) {
        this.fail(`bus: ${errorMessage(error)}`);
      }
      return true;
    });
    this.#busWatch = true;
    // appsrc name=videosrc (shared mode, or a per-viewer line that reads the main pipeline) feeds from the hub.
    for (const child of allElements(pipeline)) {
      const stream = streamNameOf(child.name);
      if (stream && child.getFactory()?.getName() === 'appsrc') {
        // The `format` property itself: appsrc re-applies it on start, undoing the GstBaseSrc.setFormat() that
        // attachConsumer calls, and a BYTES segment into a payloader floods GStreamer-CRITICALs.
        asAppSrc(child).format = Gst.Format.TIME;
        this.#feeds.push(this.#options.hub.attachConsumer(child, stream));
      }
    }
    if (pipeline.setState(Gst.State.PLAYING) === Gst.StateChangeReturn.FAILURE) {
      const error = pipeline.getBus()?.timedPopFiltered(0n, Gst.MessageType.ERROR);
      this.fail(error ? `${objectName(error.src, 'pipeline')}: ${error.parseError()[0].message}` : 'failed to change state to PLAYING');
    }
  }

  /** A fan-out viewer: its webrtcbin into the current fan-out's pipeline, brought up, then fed (buffers wait for DTLS). */
  #joinFanout(webrtcbin: GstElement): void {
    const fanouts = this.#options.fanouts!;
    const fanout = fanouts.join();
    const branch: FanoutBranch = { fanouts, fanout, webrtcbin, onFailed: (reason) => this.fail(`the shared fan-out failed: ${reason}`) };
    this.#branch = branch;
    fanout.on('failed', branch.onFailed);
    // Its messages come from the fan-out's bus, on the JS thread (a bus watch).
    const started = fanout.attach(webrtcbin, (message) => {
      try {
        this.#onMessage(message);
      } catch (error) {
        this.fail(`bus: ${errorMessage(error)}`);
      }
    });
    if (!started) return this.fail('failed to change state to PLAYING');
    fanout.link(webrtcbin);
  }

  #onMessage(message: GstMessage): void {
    if (isReleased(this.#actor.getSnapshot())) return;
    const type = message.type;
    if (type === Gst.MessageType.ERROR) {
      const [error] = message.parseError();
      this.fail(`${objectName(message.src, 'pipeline')}: ${error.message}`);
    } else if (type === Gst.MessageType.LATENCY) {
      this.#pipeline?.recalculateLatency();
    } else if (type === Gst.MessageType.EOS) {
      this.fail('the stream ended (EOS)');
    }
  }

  #readConnectionState(): void {
    if (isReleased(this.#actor.getSnapshot())) return;
    this.#send({ type: 'CONNECTION_STATE', ...this.#bin.connectionStates() });
  }

  #readGathering(): void {
    if (isReleased(this.#actor.getSnapshot())) return;
    if (this.#bin.gatheringComplete()) this.#send({ type: 'GATHERING_COMPLETE' });
  }

  #report(state: WebRtcPeerState, reason?: string): void {
    if (this.#state === state) return;
    this.#state = state;
    if (state === 'connected') {
      if (this.#branch) this.#branch.fanout.open(this.#branch.webrtcbin);
      this.#requestKeyFrame();
    }
    try {
      this.#options.onState(state, reason);
    } catch {
      // The owner's callback failing must not leave the pipeline half torn down.
    }
  }

  /**
   * Asks for a key frame now that media flows (ICE and DTLS up): what was sent before, the key frame asked for when
   * the viewer joined included, went nowhere, and the viewer's first picture would otherwise wait for the
   * producer's next one (up to a GOP: a second with the seed's encoder settings). Hub-fed viewers ask the hub's
   * producer; a per-viewer pipeline gets a force-key-unit event upstream from webrtcbin's sink pads to its encoder.
   */
  #requestKeyFrame(): void {
    try {
      if (this.#usesFanout || this.#feeds.length > 0) {
        this.#options.hub.requestKeyFrame('video');
        return;
      }
      const webrtcbin = this.#pipeline?.getByName('webrtcbin');
      if (!webrtcbin) return;
      const GstVideo = gi.require('GstVideo', '1.0');
      for (let i = 0; i < 16; i++) webrtcbin.getStaticPad(`sink_${i}`)?.pushEvent(GstVideo.videoEventNewUpstreamForceKeyUnit(Gst.CLOCK_TIME_NONE, true, 0));
    } catch {
      // A viewer without an early key frame still gets the next one.
    }
  }

  /** Everything but NULL: feeds, handlers and promises off, and the fan-out branch off the tee. */
  #release(): void {
    for (const feed of this.#feeds.splice(0)) feed.unsubscribe();
    this.#bin.release(() => this.#send({ type: 'SETTLED' }));
    const branch = this.#branch;
    if (branch) {
      branch.fanout.off('failed', branch.onFailed);
      // Off the shared tee before this webrtcbin refuses data (see WebRtcFanout.unlink).
      branch.fanout.unlink(branch.webrtcbin);
    }
  }

  /**
   * The bus watch off, NULL (webrtcbin's threads joined) off the JS thread where the plugin is there
   * ({@link AsyncNull}), then the fan-out branch removed.
   */
  #setNull(): void {
    const branch = this.#branch;
    // A fan-out viewer's NULL is its webrtcbin's, locked there so that the fan-out's pipeline does not raise it again.
    const pipeline: GstElement | null = this.#pipeline ?? this.#inline;
    this.#inline?.setLockedState(true);
    this.#branch = null;
    this.#pipeline = null;
    this.#inline = null;
    if (this.#busWatch) (pipeline as GstPipeline | null)?.getBus()?.removeWatch();
    this.#busWatch = false;
    const inNull = () => {
      try {
        // A reply webrtcbin never sent (the settle bound passed) can no longer come: its thread is joined.
        this.#bin.interruptPending();
        if (branch) branch.fanout.detach(branch.webrtcbin);
      } finally {
        if (branch) branch.fanouts.left(branch.fanout);
        collectSoon();
      }
    };
    const async = pipeline ? AsyncNull.shared() : null;
    if (pipeline && async) {
      return async.setNull(pipeline, () => {
        try {
          inNull();
        } catch {
          // On a later tick nobody is left to tell: the branch stays on the fan-out until the fan-out closes.
        }
      });
    }
    try {
      pipeline?.setState(Gst.State.NULL);
    } finally {
      inNull();
    }
  }

  /** The machine itself broke: release, NULL after the drain, and report the end without it. */
  #abandon(reason: string): void {
    try {
      this.#release();
    } catch {
      // NULL below matters more.
    }
    this.#report('failed', reason);
    // As the machine would: NULL after the drain and webrtcbin's last replies (bounded), never while it owes one.
    const deadline = Date.now() + RELEASE_DRAIN_MS + SETTLE_TIMEOUT_MS;
    const toNull = () => {
      if (this.#bin.pendingReplies > 0 && Date.now() < deadline) return void setTimeout(toNull, RELEASE_DRAIN_MS);
      try {
        this.#setNull();
      } catch {
        // Nothing more to let go of.
      }
      this.#report('closed');
    };
    setTimeout(toNull, RELEASE_DRAIN_MS);
  }
}
