import { Subject, type Observable, type Subscription } from 'rxjs';
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
  /** The producer's buffer: each consumer pushes a shallow copy of its own, without these timestamps. */
  readonly buffer: InstanceType<typeof Gst.Buffer>;
  readonly size: number;
  readonly caps: InstanceType<typeof Gst.Caps> | null;
  /** Changes when the caps change, so consumers compare a number, not caps. */
  readonly capsVersion: number;
  /** Not a key frame. */
  readonly delta: boolean;
}

/** Flags, metadata and memory references, no timestamps: the consumer's appsrc stamps its own. */
const COPY_SHALLOW = Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.META | Gst.BufferCopyFlags.MEMORY;

/**
 * Named streams of `Gst.Sample`s between pipelines in the engine: a main pipeline's `appsink name=video` publishes
 * to stream `video`, and any number of consumers (RTSP media, WebRTC peers) subscribe. A stream outlives its
 * producer: when the main pipeline is swapped, the new `video` appsink publishes to the same stream, so
 * consumers (and their viewers) stay. Only buffer references move; bytes never cross into JS.
 */
export class SampleHub {
  /** Streams by name. */
  readonly #streams = new Map<string, Subject<HubSample>>();
  readonly #stats = new Map<string, StreamStats>();
  /** The appsink publishing each stream now, to ask its encoder for a key frame when a consumer joins. */
  readonly #producers = new Map<string, GstElement>();

  stream(name: string): Observable<HubSample> {
    return this.#subject(name);
  }

  /**
   * Sends a force-key-unit event upstream from the stream's appsink: an encoder in the producer makes a key
   * frame; a pipeline that only relays a camera's H.264 ignores it.
   */
  requestKeyFrame(stream: string): void {
    const sink = this.#producers.get(stream);
    if (!sink) return;
    // GstVideo is loaded here, after Gst.init: loading it earlier logs GLib criticals.
    const GstVideo = gi.require('GstVideo', '1.0');
    sink.sendEvent(GstVideo.videoEventNewUpstreamForceKeyUnit(Gst.CLOCK_TIME_NONE, true, 0));
  }

  stats(): Record<string, StreamStats> {
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

  /**
   * Publishes an appsink's samples to the stream named like the sink. Returns the function that detaches it;
   * it must run before the pipeline goes to NULL (a streaming thread blocked in `new-sample` would deadlock).
   */
  attachProducer(appsink: GstElement): () => void {
    const sink = asAppSink(appsink);
    const name = appsink.name;
    const subject = this.#subject(name);
    const stats = this.#stats.get(name)!;
    let lastCaps: InstanceType<typeof Gst.Caps> | null = null;
    let capsVersion = 0;
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
          if (caps && !(lastCaps && caps.isEqual(lastCaps))) {
            lastCaps = caps;
            capsVersion++;
            stats.caps = caps.toString();
          }
          if (subject.observed) {
            const delta = (buffer.getFlags() & Gst.BufferFlags.DELTA_UNIT) !== 0;
            subject.next({ sample, buffer, size: Number(size), caps: lastCaps, capsVersion, delta });
          }
        }
      } catch {
        // An exception here would end the process (node-gtk); a lost sample is the lesser harm.
      }
      return Gst.FlowReturn.OK;
    });
    this.#producers.set(name, appsink);
    return () => {
      sink.emitSignals = false;
      sink.disconnect(id);
      if (this.#producers.get(name) === appsink) this.#producers.delete(name);
    };
  }

  /**
   * Feeds an appsrc from a stream: caps follow the producer, buffers are shallow copies (memory shared) without
   * the producer's timestamps, stamped by the appsrc with the consumer's running time (`do-timestamp`), so a
   * swapped producer with a new timeline never stalls the consumer. Video waits for a key frame first.
   */
  attachConsumer(appsrc: GstElement, stream: string): Subscription {
    const src = asAppSrc(appsrc);
    // GstBaseSrc setters: `src.isLive = ...` would shadow the isLive() method instead of setting the property.
    src.setLive(true);
    src.setDoTimestamp(true);
    // The property itself, not setFormat(): appsrc applies its `format` property again when it starts.
    src.format = Gst.Format.TIME;
    let capsVersion = -1;
    let waitingForKeyFrame = true;
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
        // A shallow copy of its own (memory shared): pushing one buffer object into several appsrcs costs node-gtk
        // far more (about three times the main-thread time at 20 viewers) than one copyRegion per consumer.
        const own = item.buffer.copyRegion(COPY_SHALLOW, 0, item.size);
        if (own) src.pushBuffer(own);
      } catch {
        // As above: never throw back into GStreamer.
      }
    });
  }
}
