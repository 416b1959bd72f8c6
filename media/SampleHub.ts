import { Subject, type Observable, type Subscription } from 'rxjs';
import { Gst, gi, type GstElement } from './gst.js';

const GstApp = gi.require('GstApp', '1.0');
type AppSink = InstanceType<typeof GstApp.AppSink>;
type AppSrc = InstanceType<typeof GstApp.AppSrc>;
export type GstSample = InstanceType<typeof Gst.Sample>;

/** Counters per stream, for metrics and status. */
export interface StreamStats {
  buffers: number;
  bytes: number;
  /** Caps as text, as the producer last gave them. */
  caps: string | null;
}

/**
 * Named streams of `Gst.Sample`s between pipelines in the engine: a main pipeline's `appsink name=video` publishes
 * to stream `video`, and any number of consumers (RTSP media, WebRTC peers) subscribe. A stream outlives its
 * producer: when the main pipeline is swapped, the new `video` appsink publishes to the same stream, so
 * consumers (and their viewers) stay. Only buffer references move; bytes never cross into JS.
 */
export class SampleHub {
  /** Streams by name. */
  readonly #streams = new Map<string, Subject<GstSample>>();
  readonly #stats = new Map<string, StreamStats>();
  /** The appsink publishing each stream now, to ask its encoder for a key frame when a consumer joins. */
  readonly #producers = new Map<string, GstElement>();

  stream(name: string): Observable<GstSample> {
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

  #subject(name: string): Subject<GstSample> {
    let subject = this.#streams.get(name);
    if (!subject) {
      subject = new Subject<GstSample>();
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
    const sink = appsink as unknown as AppSink & { connect(signal: string, cb: () => number): number; disconnect(id: number): void };
    const name = appsink.name;
    const subject = this.#subject(name);
    const stats = this.#stats.get(name)!;
    let lastCaps: InstanceType<typeof Gst.Caps> | null = null;
    sink.emitSignals = true;
    const id = sink.connect('new-sample', () => {
      try {
        const sample = sink.pullSample();
        if (sample) {
          const buffer = sample.getBuffer();
          stats.buffers++;
          stats.bytes += buffer ? Number(buffer.getSize()) : 0;
          const caps = sample.getCaps();
          // Each getCaps() is a new JS wrapper: compare the caps, not the objects.
          if (caps && !(lastCaps && caps.isEqual(lastCaps))) {
            lastCaps = caps;
            stats.caps = caps.toString();
          }
          subject.next(sample);
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
    const src = appsrc as unknown as AppSrc;
    // GstBaseSrc setters: `src.isLive = ...` would shadow the isLive() method instead of setting the property.
    src.setLive(true);
    src.setDoTimestamp(true);
    // The property itself, not setFormat(): appsrc applies its `format` property again when it starts.
    (appsrc as unknown as { format: number }).format = Gst.Format.TIME;
    let currentCaps: InstanceType<typeof Gst.Caps> | null = null;
    let waitingForKeyFrame = true;
    // A new consumer waits for a key frame: ask the producer's encoder for one now rather than in a GOP's time.
    setImmediate(() => this.requestKeyFrame(stream));
    return this.#subject(stream).subscribe((sample) => {
      try {
        const buffer = sample.getBuffer();
        if (!buffer) return;
        const caps = sample.getCaps();
        if (caps && !(currentCaps && caps.isEqual(currentCaps))) {
          currentCaps = caps;
          src.caps = caps;
          waitingForKeyFrame = true;
        }
        const delta = (buffer.getFlags() & Gst.BufferFlags.DELTA_UNIT) !== 0;
        if (waitingForKeyFrame) {
          if (delta) return;
          waitingForKeyFrame = false;
        }
        const copy = buffer.copyRegion(Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.META | Gst.BufferCopyFlags.MEMORY, 0, buffer.getSize());
        if (copy) src.pushBuffer(copy);
      } catch {
        // As above: never throw back into GStreamer.
      }
    });
  }
}
