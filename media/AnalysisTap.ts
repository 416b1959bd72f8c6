/**
 * Video analysis in the media engine: taps that hand frames to analyzer processes without JS ever touching a byte.
 *
 *   main pipeline:  ... ! inference name=people ! tee ! (rest of the pipeline, unchanged)
 *                                                  tee. ! queue leaky ! valve ! appsink name="inference:people"
 *   sample hub:     stream "inference:people" (or a user's stream such as "video"): buffer references only
 *   tap pipeline:   appsrc ! queue leaky ! decodebin ! videorate (FPS) ! videoscale ! RGB ! gdppay
 *                     ! tcpserversink host=127.0.0.1  <- the analyzer's worker process connects here
 *
 * Why this shape: the tap pipeline is separate from the user's, so a decoder error or an analyzer that goes away
 * never stops the recording or the viewers; frames are decoded once, and scaled and converted only at the
 * analyzer's rate (videorate drops before videoscale); `tcpserversink` lets readers come and go without an error
 * (an analyzer restart is just a reconnect), and `gdppay` gives each client the caps first. The valve stays shut
 * until an analyzer uses the element, so a named `inference` costs nothing when no analyzer is configured.
 *
 * H.264 can only be decoded from a key frame on: every frame of a GOP is needed to decode the next, so a 5 fps
 * analyzer on a 30 fps camera decodes 30 and looks at 5. `key_frames_only` drops the other frames before the
 * decoder instead (cost ~1/GOP of full decoding; the rate is then at most the camera's key-frame rate).
 *
 * @module
 */
import { FRAME_HOST, type AnalysisEngineEvent, type AnalysisTapSpec, type DecoderChoice } from '../ipc/analysis.js';
import { nullLater, QUIESCE_MS } from './gc.js';
import { applyDecoderChoice, pickedDecoder } from './decoderRanks.js';
import { allElements, asAppSrc, asTcpServerSink, asValve, binOrNull, GLib, Gst, parseLaunch, type GstElement, type GstMessage, type GstPipeline } from './gst.js';
import type { SampleHub } from './SampleHub.js';

/** Named `inference` elements' branches publish to this hub stream. */
export function tapStreamName(element: string): string {
  return `inference:${element}`;
}
/** Unnamed elements (`inference0`) are pass-through only, as in gst-launch. */
const DEFAULT_NAME = /^inference\d+$/;
/** Restart delay of a failed tap pipeline: doubles up to the maximum, resets once frames flow. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;


/** A tap branch could not be put into a pipeline (the pipeline is then not started: the error says why). */
export class AnalysisTapError extends Error {
  override readonly name = 'AnalysisTapError';
}

/**
 * Puts the branch (tee, leaky queue, valve, appsink) after each named `inference` element of a parsed pipeline,
 * before it goes to PLAYING. Returns the branches' valves and appsinks by element name; the appsinks still have to
 * be attached to the sample hub (see {@link AnalysisTaps.attach}).
 */
export function insertInferenceBranches(pipeline: GstElement): Array<{ element: string; valve: GstElement; appsink: GstElement }> {
  const found: GstElement[] = [];
  for (const element of allElements(pipeline)) {
    if (element.getFactory()?.getName() === 'inference' && !DEFAULT_NAME.test(element.name)) found.push(element);
  }
  const branches: Array<{ element: string; valve: GstElement; appsink: GstElement }> = [];
  for (const inference of found) {
    const name = inference.name;
    const parent = binOrNull(inference.getParent());
    if (!parent) continue;
    // leaky queue: if the engine's main thread is slow to take samples, old ones go, the tee never waits.
    // valve: shut while no analyzer reads it, yet passing sticky events: a shut valve that ate EOS kept the
    // pipeline from ending gracefully (its EOS waited for this branch's sink until the stop timeout).
    // appsink: no clock sync and no preroll, it is a side branch; one sample held at most.
    const branch = Gst.parseBinFromDescription(
      `queue leaky=downstream max-size-buffers=60 max-size-bytes=0 max-size-time=0 ! valve name="${name}:valve" drop=true drop-mode=forward-sticky-events ` +
        `! appsink name="${tapStreamName(name)}" sync=false async=false max-buffers=1 drop=true enable-last-sample=false`,
      true,
    );
    branch.name = `${name}:branch`;
    const tee = Gst.ElementFactory.make('tee', `${name}:tee`)!;
    parent.add(tee);
    parent.add(branch);
    const src = inference.getStaticPad('src')!;
    const peer = src.getPeer();
    if (peer) src.unlink(peer);
    if (!inference.link(tee)) throw new AnalysisTapError(`could not link ${name} to its tap's tee`);
    if (peer) {
      const out = tee.requestPadSimple('src_%u')!;
      if (out.link(peer) !== Gst.PadLinkReturn.OK) throw new AnalysisTapError(`could not relink ${name} to what followed it`);
    }
    if (!tee.link(branch)) throw new AnalysisTapError(`could not link ${name}'s tap branch`);
    const valve = branch.getByName(`${name}:valve`)!;
    const appsink = branch.getByName(tapStreamName(name))!;
    branches.push({ element: name, valve, appsink });
  }
  return branches;
}

/** The tap pipeline's description for one analyzer. */
export function tapLaunch(spec: AnalysisTapSpec, port: number): string {
  const size = spec.inputSize;
  // Not drop-only / max-rate: both let every frame through when the stream's framerate is unknown (0/1, an RTSP
  // camera without VUI timing). A fixed output rate works for both; max-duplication-time of one output period
  // forbids duplicates, so a camera slower than `fps` is analysed at its own rate, never twice per frame.
  const [num, den] = fraction(spec.fps);
  const period = Math.round(1e9 / spec.fps);
  return [
    // Timestamps are the producer's, shifted onto one rising timeline (see feed()): not the push time, whose jitter
    // made videorate drop a third of the frames of a 10 fps stream analysed at 10 fps.
    'appsrc name=src format=time is-live=true do-timestamp=false',
    // Decoding runs on this queue's thread, not on the engine's main thread that pushes.
    'queue leaky=downstream max-size-buffers=300 max-size-bytes=0 max-size-time=0',
    ...(spec.keyFramesOnly ? ['identity drop-buffer-flags=delta-unit'] : []),
    'decodebin name=dec',
    // skip-to-first: no copies of the first frame for the time before it (timelines start at 1 s, see feed()).
    `videorate max-duplication-time=${period} skip-to-first=true ! video/x-raw,framerate=${num}/${den}`,
    // Scale first, in the decoder's format, then convert the small picture: fits SxS with the aspect kept.
    `videoscale ! video/x-raw,width=[1,${size}],height=[1,${size}],pixel-aspect-ratio=1/1`,
    'videoconvert ! video/x-raw,format=RGB',
    'gdppay',
    // units-soft-max + recover-policy=latest: a client that falls behind skips to the newest frame, never blocks.
    `tcpserversink name=sink host=${FRAME_HOST} port=${port} sync=false async=false units-soft-max=2 recover-policy=latest`,
  ].join(' ! ');
}

function fraction(fps: number): [number, number] {
  if (Number.isInteger(fps)) return [fps, 1];
  const den = 1000;
  return [Math.round(fps * den), den];
}

/** Flags, metadata and memory references; timestamps are set here. */
const COPY_SHALLOW = Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.META | Gst.BufferCopyFlags.MEMORY;
/** Where a new timeline (a swapped or restarted producer) starts after the old one's last buffer. */
const REBASE_GAP_NS = 1_000_000n;
/** A step back this big is a new timeline; smaller ones are B-frames in decode order (PTS only, e.g. from mkv). */
const NEW_TIMELINE_NS = 1_000_000_000n;

/**
 * Pushes a hub stream's buffers into the tap's appsrc (shallow copies: memory shared). Caps follow the producer;
 * after a caps change it waits for a key frame. Timestamps keep the producer's spacing (videorate needs regular
 * ones) but are shifted onto one rising timeline: a restarted or swapped producer starts again near 0, and a
 * timestamp going back would have videorate drop frames until it caught up. A new timeline is a caps change or a
 * step back of over a second (DTS when there is one; PTS steps back a little for B-frames); with no timestamps at
 * all, the arrival time stands in. Returns the unsubscribe.
 */
function feed(hub: SampleHub, stream: string, appsrc: GstElement): () => void {
  const src = asAppSrc(appsrc);
  const NONE = Gst.CLOCK_TIME_NONE;
  const started = process.hrtime.bigint();
  let capsVersion = -1;
  let waitingForKeyFrame = true;
  /** Added to this producer's timestamps; null until its first buffer. */
  let shift: bigint | null = null;
  // The first timeline starts at 1 s: room below it for B-frames whose PTS precede the first key frame's.
  let last = NEW_TIMELINE_NS - REBASE_GAP_NS;
  setImmediate(() => hub.requestKeyFrame(stream));
  const subscription = hub.stream(stream).subscribe((item) => {
    try {
      if (item.capsVersion !== capsVersion) {
        capsVersion = item.capsVersion;
        if (item.caps) src.caps = item.caps;
        waitingForKeyFrame = true;
        shift = null;
      }
      if (waitingForKeyFrame) {
        if (item.delta) return;
        waitingForKeyFrame = false;
      }
      const { pts, dts } = item.buffer;
      const t = dts !== NONE ? dts : pts !== NONE ? pts : process.hrtime.bigint() - started;
      if (shift === null || t + shift < last - NEW_TIMELINE_NS) shift = last + REBASE_GAP_NS - t;
      if (t + shift > last) last = t + shift;
      const own = item.buffer.copyRegion(COPY_SHALLOW, 0, item.size);
      if (!own) return;
      own.pts = pts !== NONE ? pts + shift : dts !== NONE ? NONE : t + shift;
      own.dts = dts !== NONE ? dts + shift : NONE;
      src.pushBuffer(own);
    } catch {
      // Never throw back into the hub's producer callback (a GStreamer signal: node-gtk would end the engine).
    }
  });
  return () => subscription.unsubscribe();
}

/**
 * One analyzer's tap pipeline, fed from a sample-hub stream. It outlives the producing pipeline (the hub stream
 * does), restarts itself with backoff when it fails, and keeps its port across restarts when it can, so the
 * analyzer process reconnects to the same place.
 */
export class AnalysisTap {
  readonly spec: AnalysisTapSpec;
  readonly #hub: SampleHub;
  /** Sends `analysis-tap` events to the control plane. */
  readonly #emit: (event: AnalysisEngineEvent) => void;
  /** The tap pipeline while it runs. */
  #pipeline: GstPipeline | null = null;
  /** Stops feeding the appsrc from the hub. */
  #unsubscribe: (() => void) | null = null;
  /** The bound port, asked for again on a restart (0: any). */
  #port = 0;
  /** The decoder decodebin plugged, once known. */
  #decoder: string | null = null;
  /** The next restart's delay. */
  #retryMs = RETRY_MIN_MS;
  /** A pending restart. */
  #timer: NodeJS.Timeout | null = null;
  /** Looks for the plugged decoder until found. */
  #poll: NodeJS.Timeout | null = null;
  #closed = false;

  /** @param port the port to bind (0: any); a rebuilt tap asks for its predecessor's so analyzers stay connected. */
  constructor(spec: AnalysisTapSpec, hub: SampleHub, emit: (event: AnalysisEngineEvent) => void, port = 0) {
    this.spec = spec;
    this.#hub = hub;
    this.#emit = emit;
    this.#port = port;
  }

  get stream(): string {
    return this.spec.source.kind === 'element' ? tapStreamName(this.spec.source.element) : this.spec.source.stream;
  }

  /** The frame socket's port (null while the tap is down). */
  get port(): number | null {
    return this.#pipeline ? this.#port : null;
  }

  get decoder(): string | null {
    return this.#decoder;
  }

  start(): void {
    if (this.#closed || this.#pipeline) return;
    let pipeline: GstPipeline;
    try {
      pipeline = parseLaunch(tapLaunch(this.spec, this.#port)) as GstPipeline;
    } catch (error) {
      this.#failed(`tap pipeline does not parse: ${(error as Error).message}`);
      return;
    }
    this.#pipeline = pipeline;
    pipeline.getBus()!.addWatch(GLib.PRIORITY_DEFAULT, (_bus: unknown, message: GstMessage) => {
      try {
        if (message.type === Gst.MessageType.ERROR && this.#pipeline === pipeline) {
          const [error] = message.parseError();
          this.#failed(`${error.message} (${(message.src as { name?: string } | null)?.name ?? 'tap'})`);
        }
      } catch {
        // Never throw into GLib: node-gtk would end the engine.
      }
      return true;
    });
    if (pipeline.setState(Gst.State.PLAYING) === Gst.StateChangeReturn.FAILURE) {
      // A port taken since the last run: bind a fresh one next time (the analyzer is told the new port).
      this.#port = 0;
      this.#failed('tap pipeline did not start');
      return;
    }
    const sink = asTcpServerSink(pipeline.getByName('sink')!);
    this.#port = sink.currentPort;
    const appsrc = pipeline.getByName('src')!;
    this.#unsubscribe = feed(this.#hub, this.stream, appsrc);
    this.#report(null);
    this.#pollDecoder(pipeline);
  }

  /** Stops the tap for good (its port is released). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#teardown();
  }

  #report(error: string | null): void {
    this.#emit({ type: 'analysis-tap', analyzer: this.spec.analyzer, port: this.port, decoder: this.#decoder, error });
  }

  /** Which decoder decodebin plugged: looked up on a timer (a signal would run JS on a streaming thread). */
  #pollDecoder(pipeline: GstPipeline): void {
    let tries = 0;
    this.#poll = setInterval(() => {
      if (this.#pipeline !== pipeline) return;
      const dec = pipeline.getByName('dec');
      const picked = dec ? pickedDecoder(dec, allElements) : null;
      if (picked) {
        this.#decoder = picked;
        this.#retryMs = RETRY_MIN_MS;
        this.#report(null);
      }
      // Raw input has no decoder to find: stop looking after a while.
      if (picked || ++tries >= 30) {
        clearInterval(this.#poll!);
        this.#poll = null;
      }
    }, 500);
  }

  #failed(reason: string): void {
    this.#teardown();
    this.#report(reason);
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.start();
    }, this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
  }

  #teardown(): void {
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = null;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    const pipeline = this.#pipeline;
    this.#pipeline = null;
    if (!pipeline) return;
    // NULL on a later tick: calls already queued from streaming threads run first.
    nullLater(pipeline);
  }
}

/**
 * All analysis of one engine: the taps the control plane asked for (`configure`) and the branches after named
 * `inference` elements in running pipelines (`attach`). Taps and branches meet through the sample hub, so either
 * may come first, and a pipeline restart or swap leaves the analyzer's tap and socket in place.
 *
 * @example
 * const analysis = new AnalysisTaps(hub, send);
 * // on { type: 'analysis', taps, decoder }:
 * analysis.configure(command.taps, command.decoder);
 * // after `new PipelineRunner(...)`, before `runner.play()`:
 * for (const detach of analysis.attach(runner.pipeline)) runner.beforeNull(detach);
 */
export class AnalysisTaps {
  readonly #hub: SampleHub;
  readonly #emit: (event: AnalysisEngineEvent) => void;
  /** Taps by analyzer name. */
  readonly #taps = new Map<string, AnalysisTap>();
  /** Valves of live branches, by `inference` element name (one element name per engine is expected). */
  readonly #valves = new Map<string, Set<GstElement>>();
  #decoder: DecoderChoice = 'auto';

  constructor(hub: SampleHub, emit: (event: AnalysisEngineEvent) => void) {
    this.#hub = hub;
    this.#emit = emit;
  }

  /**
   * Replaces the set of taps: new ones start, removed ones stop (reported with port null), changed ones are rebuilt
   * on the same port, unchanged ones are left alone. The decoder choice is applied first (it only affects decodebins
   * built after it, so every tap is rebuilt when it changes).
   */
  configure(taps: readonly AnalysisTapSpec[], decoder: DecoderChoice): void {
    /** Ports of taps rebuilt here, so their analyzers find them where they were. */
    const ports = new Map<string, number>();
    if (decoder !== this.#decoder) {
      const result = applyDecoderChoice(decoder);
      this.#decoder = decoder;
      this.#emit({ type: 'analysis-decoder', ...result });
      // Taps already decoding keep the decoder they plugged: rebuild them.
      for (const [name, tap] of this.#taps) {
        if (tap.port !== null) ports.set(name, tap.port);
        tap.close();
      }
      this.#taps.clear();
    }
    const wanted = new Map(taps.map((t) => [t.analyzer, t]));
    for (const [name, tap] of this.#taps) {
      const next = wanted.get(name);
      if (next && JSON.stringify(next) === JSON.stringify(tap.spec)) continue;
      if (next && tap.port !== null) ports.set(name, tap.port);
      tap.close();
      this.#taps.delete(name);
      if (!next) this.#emit({ type: 'analysis-tap', analyzer: name, port: null, decoder: null, error: null });
    }
    for (const [name, spec] of wanted) {
      if (this.#taps.has(name)) continue;
      const port = ports.get(name);
      const tap = new AnalysisTap(spec, this.#hub, this.#emit, port ?? 0);
      this.#taps.set(name, tap);
      // A rebuilt tap binds its predecessor's port once that one is in NULL (it closes on a later tick).
      if (port === undefined) tap.start();
      else setTimeout(() => tap.start(), QUIESCE_MS * 3);
    }
    this.#updateValves();
  }

  /**
   * Adds the analysis branch after each named `inference` element of a pipeline that is about to play, and
   * publishes it to the sample hub. Returns what must run before that pipeline goes to NULL.
   */
  attach(pipeline: GstElement): Array<() => void> {
    const detachers: Array<() => void> = [];
    for (const { element, valve, appsink } of insertInferenceBranches(pipeline)) {
      let valves = this.#valves.get(element);
      if (!valves) this.#valves.set(element, (valves = new Set()));
      valves.add(valve);
      const set = valves;
      const detach = this.#hub.attachProducer(appsink);
      detachers.push(() => {
        set.delete(valve);
        detach();
      });
    }
    this.#updateValves();
    return detachers;
  }

  /** Ports and decoders of the taps, for status. */
  status(): Array<{ analyzer: string; port: number | null; decoder: string | null }> {
    return [...this.#taps.values()].map((t) => ({ analyzer: t.spec.analyzer, port: t.port, decoder: t.decoder }));
  }

  close(): void {
    for (const tap of this.#taps.values()) tap.close();
    this.#taps.clear();
  }

  /** A branch's valve is open while some analyzer reads its element. */
  #updateValves(): void {
    const used = new Set<string>();
    for (const tap of this.#taps.values()) if (tap.spec.source.kind === 'element') used.add(tap.spec.source.element);
    for (const [element, valves] of this.#valves) {
      for (const valve of valves) asValve(valve).drop = !used.has(element);
    }
  }
}
