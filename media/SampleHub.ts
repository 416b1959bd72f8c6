import { Observable, Subject, Subscription } from 'rxjs';
import { asAppSink, asAppSrc, Gst, gi, type GstElement } from './gst.js';

export type GstSample = InstanceType<typeof Gst.Sample>;

/** Counters per stream, for metrics and status. */
export interface StreamStats {
  buffers: number;
  bytes: number;
  /** Caps as text, as the producer last gave them. */
  caps: string | null;
}

/**
 * One sample as consumers get it, prepared once however many consumers there are (each node-gtk call costs;
 * at 20 viewers, per-consumer calls were most of the engine's main-thread time).
 */
export interface HubSample {
  readonly sample: GstSample;
  /** The producer's buffer: each consumer pushes a shallow copy of its own, with timestamps of its own timeline. */
  readonly buffer: InstanceType<typeof Gst.Buffer>;
  /** When the producer captured it, as clock time (running time of its PTS + the producer's base time); null: no PTS. */
  readonly capture: bigint | null;
  /** The same for its DTS (null when it has none: most streams, where DTS is PTS). */
  readonly captureDts: bigint | null;
  /** The producer run it came from: video and audio of one run share its offset, so their sync is the camera's. */
  readonly producer: Producer;
  readonly size: number;
  readonly caps: InstanceType<typeof Gst.Caps> | null;
  /** Changes when the caps change, so consumers compare a number, not caps. */
  readonly capsVersion: number;
  /** Not a key frame. */
  readonly delta: boolean;
}

/** Flags, metadata, memory references and timestamps (duration, offsets); PTS and DTS are then set per consumer. */
const COPY_SHALLOW = Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.META | Gst.BufferCopyFlags.MEMORY | Gst.BufferCopyFlags.TIMESTAMPS;

/** How long a key frame request stays unanswered before a new one is sent (an encoder answers within a frame or two). */
export const KEY_FRAME_WAIT_MS = 300;

/** GST_CLOCK_TIME_NONE as node-gtk gives it. */
const NONE = 18446744073709551615n;

/**
 * One run of a producing pipeline (all its named appsinks). `delay` is fixed at its first sample: how long after
 * capture samples reach the hub, so that every consumer maps capture times onto its own running time with one
 * offset per producer: intervals stay the producer's, and video and audio keep the sync they had.
 */
export interface Producer {
  delay: bigint | null;
  /** Its number for the native hub, which keeps the same offset per producer run. */
  readonly id: number;
}

/** The native hub's property. */
interface NativeHubProperties {
  /** One line per stream: name, buffers, bytes, caps (tab-separated). */
  readonly stats: string;
}
type NativeHub = GstElement & NativeHubProperties;

/**
 * The module's `iotedgehub` element (plugins/inference/gsthub.c), which does the per-buffer work below in C; null
 * when the plugin is not on GST_PLUGIN_PATH (a build that skipped it) or `IOTEDGE_HUB=js` asks for the JS hub (the
 * baseline of bench/cameras.ts).
 */
function makeNativeHub(): NativeHub | null {
  if (process.env.IOTEDGE_HUB === 'js') return null;
  return (Gst.ElementFactory.make('iotedgehub', 'sample-hub') as NativeHub | null) ?? null;
}

/** The system clock every pipeline of the engine runs on (live sources, RTSP media, webrtcbin). */
let systemClock: InstanceType<typeof Gst.Clock> | null = null;
function clockNow(): bigint {
  systemClock ??= Gst.SystemClock.obtain();
  return systemClock.getTime();
}

/**
 * Named streams of `Gst.Sample`s between pipelines in the engine: a main pipeline's `appsink name=video` publishes
 * to stream `video`, and any number of consumers (RTSP media, WebRTC peers) subscribe. A stream outlives its
 * producer: when the main pipeline is swapped, the new `video` appsink publishes to the same stream, so
 * consumers (and their viewers) stay. Only buffer references move; bytes never cross into JS.
 */
export class SampleHub {
  /**
   * The native hub: producers' appsinks hand buffers to consumers' appsrcs in C on the streaming thread; samples
   * reach JS (analysis, the recorder's watch) only for streams that have JS subscribers. Null: all of it in JS.
   */
  readonly #native: NativeHub | null = makeNativeHub();
  /** Producer runs by id, with how many appsinks of each are attached (native mode). */
  readonly #groups = new Map<number, { producer: Producer; sinks: number }>();
  /** JS subscribers per stream (native mode: the hub forwards a stream's samples to JS only while there are some). */
  readonly #observers = new Map<string, number>();
  #nextProducer = 1;
  /** Streams by name. */
  readonly #streams = new Map<string, Subject<HubSample>>();
  readonly #stats = new Map<string, StreamStats>();
  /** The appsink publishing each stream now, to ask its encoder for a key frame when a consumer joins. */
  readonly #producers = new Map<string, GstElement>();
  /** When a key frame was last asked for, per stream, until the stream publishes one. */
  readonly #keyFrameAsked = new Map<string, number>();

  /** The caps each stream's producers gave last, and how many times they changed. */
  readonly #streamCaps = new Map<string, { caps: InstanceType<typeof Gst.Caps> | null; version: number }>();

  #caps(name: string): { caps: InstanceType<typeof Gst.Caps> | null; version: number } {
    let entry = this.#streamCaps.get(name);
    if (!entry) {
      entry = { caps: null, version: 0 };
      this.#streamCaps.set(name, entry);
    }
    return entry;
  }

  constructor() {
    this.#native?.connect('sample', ((name: string, sample: GstSample, id: number, capture: bigint | number, captureDts: bigint | number, capsVersion: number, delta: boolean, size: number) => {
      this.#onNativeSample(name, sample, id, BigInt(capture), BigInt(captureDts), capsVersion, delta, size);
    }) as never);
  }

  /** Whether buffers move in C (the `iotedgehub` element) rather than through JS. */
  get native(): boolean {
    return this.#native !== null;
  }

  stream(name: string): Observable<HubSample> {
    const subject = this.#subject(name);
    const native = this.#native;
    if (!native) return subject;
    return new Observable<HubSample>((subscriber) => {
      const subscription = subject.subscribe(subscriber);
      this.#observe(native, name, 1);
      return () => {
        subscription.unsubscribe();
        this.#observe(native, name, -1);
      };
    });
  }

  /** Counts a stream's JS subscribers; the native hub emits its samples to JS only while there are some. */
  #observe(native: NativeHub, name: string, change: 1 | -1): void {
    const before = this.#observers.get(name) ?? 0;
    const after = before + change;
    this.#observers.set(name, after);
    if (before > 0 !== after > 0) native.emit('set-forward', name, after > 0);
  }

  /** A sample the native hub forwards (on the producer's streaming thread, which waits for this). */
  #onNativeSample(name: string, sample: GstSample, id: number, capture: bigint, captureDts: bigint, capsVersion: number, delta: boolean, size: number): void {
    try {
      const subject = this.#streams.get(name);
      const producer = this.#groups.get(id)?.producer;
      if (!subject?.observed || !producer) return;
      const buffer = sample.getBuffer();
      if (!buffer) return;
      const streamCaps = this.#caps(name);
      if (capsVersion !== streamCaps.version) {
        streamCaps.caps = sample.getCaps();
        streamCaps.version = capsVersion;
      }
      const at = capture === NONE ? null : capture;
      if (producer.delay === null) producer.delay = at === null ? 0n : bigMax(0n, clockNow() - at);
      subject.next({ sample, buffer, size, caps: streamCaps.caps, capsVersion, delta, capture: at, captureDts: captureDts === NONE ? null : captureDts, producer });
    } catch {
      // An exception here would end the process (node-gtk).
    }
  }

  /**
   * Sends a force-key-unit event upstream from the stream's appsink: an encoder in the producer makes a key
   * frame; a pipeline that only relays a camera's H.264 ignores it. A request while an earlier one is still
   * unanswered (no key frame published since, for up to {@link KEY_FRAME_WAIT_MS}) adds nothing: the key frame
   * coming answers both, and a hundred viewers joining ask for one key frame, not a hundred.
   */
  requestKeyFrame(stream: string): void {
    // The native hub keeps the same rule, and sees the key frames that answer.
    if (this.#native) {
      this.#native.emit('request-key-frame', stream);
      return;
    }
    const sink = this.#producers.get(stream);
    if (!sink) return;
    const now = Date.now();
    const asked = this.#keyFrameAsked.get(stream);
    if (asked !== undefined && now - asked < KEY_FRAME_WAIT_MS) return;
    this.#keyFrameAsked.set(stream, now);
    // GstVideo is loaded here, after Gst.init: loading it earlier logs GLib criticals.
    const GstVideo = gi.require('GstVideo', '1.0');
    sink.sendEvent(GstVideo.videoEventNewUpstreamForceKeyUnit(Gst.CLOCK_TIME_NONE, true, 0));
  }

  stats(): Record<string, StreamStats> {
    if (this.#native) {
      const streams: Record<string, StreamStats> = {};
      for (const line of this.#native.stats.split('\n')) {
        const [name, buffers, bytes, caps] = line.split('\t');
        if (name) streams[name] = { buffers: Number(buffers), bytes: Number(bytes), caps: caps || null };
      }
      return streams;
    }
    return Object.fromEntries([...this.#stats].map(([k, v]) => [k, { ...v }]));
  }

  #subject(name: string): Subject<HubSample> {
    let subject = this.#streams.get(name);
    if (!subject) {
      subject = new Subject<HubSample>();
      this.#streams.set(name, subject);
      this.#stats.set(name, { buffers: 0, bytes: 0, caps: null });
    }
    return subject;
  }

  /** A new producer run, to give each of its appsinks ({@link attachProducer}). */
  producer(): Producer {
    const id = this.#nextProducer;
    this.#nextProducer = (this.#nextProducer % 0xffff_fffe) + 1;
    return { delay: null, id };
  }

  /**
   * Publishes an appsink's samples to the stream named like the sink. Returns the function that detaches it;
   * it must run before the pipeline goes to NULL (a streaming thread blocked in `new-sample` would deadlock).
   * Each sample carries its capture time (its PTS as clock time), read once here for every consumer.
   */
  attachProducer(appsink: GstElement, producer: Producer = this.producer()): () => void {
    const name = appsink.name;
    const native = this.#native;
    if (native) {
      const group = this.#groups.get(producer.id) ?? { producer, sinks: 0 };
      group.sinks++;
      this.#groups.set(producer.id, group);
      native.emit('attach-producer', appsink, name, producer.id);
      let attached = true;
      return () => {
        if (!attached) return;
        attached = false;
        native.emit('detach-producer', appsink);
        if (--group.sinks === 0) this.#groups.delete(producer.id);
      };
    }
    const sink = asAppSink(appsink);
    const subject = this.#subject(name);
    const stats = this.#stats.get(name)!;
    // Caps and their version belong to the stream, not to this producer: a swapped-in producer with other caps
    // must bump the version its consumers compare (a per-producer count restarting at 0 could repeat one).
    const streamCaps = this.#caps(name);
    sink.emitSignals = true;
    const id = sink.connect('new-sample', () => {
      try {
        const sample = sink.pullSample();
        const buffer = sample?.getBuffer();
        if (sample && buffer) {
          const size = buffer.getSize();
          stats.buffers++;
          stats.bytes += Number(size);
          const caps = sample.getCaps();
          // Each getCaps() is a new JS wrapper: compare the caps, not the objects.
          if (caps && !(streamCaps.caps && caps.isEqual(streamCaps.caps))) {
            streamCaps.caps = caps;
            streamCaps.version++;
            stats.caps = caps.toString();
          }
          if (subject.observed) {
            const delta = (buffer.getFlags() & Gst.BufferFlags.DELTA_UNIT) !== 0;
            if (!delta) this.#keyFrameAsked.delete(name);
            const { capture, captureDts } = captureTimes(sample, buffer, sink.getBaseTime());
            if (producer.delay === null) producer.delay = capture === null ? 0n : bigMax(0n, clockNow() - capture);
            subject.next({ sample, buffer, size: Number(size), caps: streamCaps.caps, capsVersion: streamCaps.version, delta, capture, captureDts, producer });
          }
        }
      } catch {
        // An exception here would end the process (node-gtk); a lost sample is the lesser harm.
      }
      return Gst.FlowReturn.OK;
    });
    this.#producers.set(name, appsink);
    // A new producer has not been asked for anything yet.
    this.#keyFrameAsked.delete(name);
    return () => {
      sink.emitSignals = false;
      sink.disconnect(id);
      if (this.#producers.get(name) === appsink) this.#producers.delete(name);
    };
  }

  /**
   * Feeds an appsrc from a stream: caps follow the producer, buffers are shallow copies (memory shared) whose PTS
   * and DTS are the producer's capture times moved onto this consumer's running time by one offset per producer
   * (its delay to the hub, fixed at its first sample): intervals are exactly the producer's, video and audio of one
   * producer keep their sync, and a swapped producer (a new timeline) continues where the last one left off, never
   * behind it, so the consumer does not stall. Video waits for a key frame first.
   */
  attachConsumer(appsrc: GstElement, stream: string): Subscription {
    const src = asAppSrc(appsrc);
    // GstBaseSrc setters: `src.isLive = ...` would shadow the isLive() method instead of setting the property.
    src.setLive(true);
    src.setDoTimestamp(false);
    // The property itself, not setFormat(): appsrc applies its `format` property again when it starts.
    src.format = Gst.Format.TIME;
    const native = this.#native;
    if (native) {
      native.emit('attach-consumer', appsrc, stream);
      setImmediate(() => this.requestKeyFrame(stream));
      return new Subscription(() => native.emit('detach-consumer', appsrc));
    }
    let capsVersion = -1;
    let waitingForKeyFrame = true;
    /** The producer the last buffer came from, the shift that keeps its timeline after the one before, and that DTS. */
    let current: Producer | null = null;
    let shift = 0n;
    let lastDts = -1n;
    // A new consumer waits for a key frame: ask the producer's encoder for one now rather than in a GOP's time.
    setImmediate(() => this.requestKeyFrame(stream));
    return this.#subject(stream).subscribe((item) => {
      try {
        if (item.capsVersion !== capsVersion) {
          capsVersion = item.capsVersion;
          if (item.caps) src.caps = item.caps;
          waitingForKeyFrame = true;
        }
        if (waitingForKeyFrame) {
          if (item.delta) return;
          waitingForKeyFrame = false;
        }
        const base = src.getBaseTime();
        // Capture time on this consumer's timeline; a producer without timestamps is stamped on arrival.
        const delay = item.producer.delay ?? 0n;
        let pts = (item.capture ?? clockNow() - delay) + delay - base;
        let dts = item.captureDts === null ? pts : item.captureDts + delay - base;
        if (item.producer !== current) {
          // A new producer: never behind what this consumer already sent.
          current = item.producer;
          shift = lastDts >= 0n && dts <= lastDts ? lastDts + 1n - dts : 0n;
        }
        pts += shift;
        dts += shift;
        // Captured before this consumer started (queued in the producer's appsink): too late to show.
        if (dts < 0n || pts < 0n) return;
        lastDts = dts;
        // A shallow copy of its own (memory shared): pushing one buffer object into several appsrcs costs node-gtk
        // far more (about three times the main-thread time at 20 viewers) than one copyRegion per consumer.
        const own = item.buffer.copyRegion(COPY_SHALLOW, 0, item.size);
        if (!own) return;
        own.pts = pts;
        own.dts = item.captureDts === null ? NONE : dts;
        src.pushBuffer(own);
      } catch {
        // As above: never throw back into GStreamer.
      }
    });
  }
}

function bigMax(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/** A buffer's PTS and DTS as clock times of the producer (running time + base time); null where it has none. */
function captureTimes(sample: GstSample, buffer: InstanceType<typeof Gst.Buffer>, baseTime: bigint): { capture: bigint | null; captureDts: bigint | null } {
  const segment = sample.getSegment();
  const toClock = (time: bigint): bigint | null => {
    if (time === NONE) return null;
    const running = segment ? segment.toRunningTime(Gst.Format.TIME, time) : time;
    return running === NONE ? null : running + baseTime;
  };
  const capture = toClock(buffer.pts);
  const dts = buffer.dts;
  return { capture, captureDts: dts === NONE || dts === buffer.pts ? null : toClock(dts) };
}
