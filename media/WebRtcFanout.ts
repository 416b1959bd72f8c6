import type { Subscription } from 'rxjs';
import { Gst, type GstElement, type GstPipeline } from './gst.js';
import { parseLaunch } from './PipelineRunner.js';
import type { SampleHub } from './SampleHub.js';

/**
 * Shared-encode WebRTC with the per-viewer work left to GStreamer: one pipeline takes the hub's `video` stream
 * once, payloads it once and tees the RTP to a `queue ! proxysink` branch per viewer, whose webrtcbin pipeline
 * starts from a `proxysrc`. A viewer then costs SRTP and sending, and no JavaScript per frame (pushing every
 * sample into each viewer's own appsrc cost most of the engine's main thread at 20 viewers).
 */
export class WebRtcFanout {
  readonly #pipeline: GstPipeline;
  readonly #tee: GstElement;
  readonly #hub: SampleHub;
  readonly #feed: Subscription;
  /** Branch elements per proxysink. */
  readonly #branches = new Map<GstElement, { queue: GstElement; teePad: InstanceType<typeof Gst.Pad>; unlinked: boolean }>();

  constructor(hub: SampleHub) {
    this.#hub = hub;
    const element = parseLaunch(
      'appsrc name=videosrc format=time ! h264parse ! rtph264pay config-interval=-1 aggregate-mode=zero-latency ! ' +
        'application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,packetization-mode=(string)1 ! ' +
        'tee name=t allow-not-linked=true',
    );
    this.#pipeline = element as GstPipeline;
    this.#tee = this.#pipeline.getByName('t')!;
    const appsrc = this.#pipeline.getByName('videosrc')!;
    (appsrc as unknown as { format: number }).format = Gst.Format.TIME;
    this.#feed = hub.attachConsumer(appsrc, 'video');
    this.#pipeline.setState(Gst.State.PLAYING);
  }

  get pipeline(): GstPipeline {
    return this.#pipeline;
  }

  get branches(): number {
    return this.#branches.size;
  }

  /**
   * A new branch for one viewer: returns the proxysink its `proxysrc` reads, and makes the viewer's pipeline run
   * on this pipeline's clock and base time, as proxysrc needs.
   */
  attach(viewer: GstPipeline): GstElement {
    const queue = Gst.ElementFactory.make('queue', null)!;
    const sink = Gst.ElementFactory.make('proxysink', null)!;
    // A slow viewer loses packets, never holds up the others.
    (queue as unknown as { leaky: number; maxSizeBuffers: number; maxSizeTime: bigint; maxSizeBytes: number }).leaky = 2;
    (queue as unknown as { maxSizeBuffers: number }).maxSizeBuffers = 500;
    this.#pipeline.add(queue);
    this.#pipeline.add(sink);
    queue.link(sink);
    const teePad = this.#tee.requestPadSimple('src_%u')!;
    teePad.link(queue.getStaticPad('sink')!);
    sink.syncStateWithParent();
    queue.syncStateWithParent();
    this.#branches.set(sink, { queue, teePad, unlinked: false });
    const clock = this.#pipeline.getClock();
    if (clock) viewer.useClock(clock);
    viewer.setBaseTime(this.#pipeline.getBaseTime());
    viewer.setStartTime(Gst.CLOCK_TIME_NONE);
    // The newcomer needs SPS/PPS and a key frame to start decoding.
    setImmediate(() => this.#hub.requestKeyFrame('video'));
    return sink;
  }

  /**
   * Takes a viewer's branch off the tee, before the viewer's pipeline goes to NULL. Order matters: a viewer pipeline
   * going to NULL makes its proxysrc refuse data, the branch's queue then returns FLUSHING to whoever pushes into
   * it, and a tee that gets FLUSHING from a pad still linked returns it upstream, which stops the shared appsrc's
   * task: every other viewer froze (32 quick connect/close cycles did it every time). A pad released while the
   * tee pushes into it is one the tee ignores the result of.
   */
  unlink(sink: GstElement): void {
    const branch = this.#branches.get(sink);
    if (!branch || branch.unlinked) return;
    branch.unlinked = true;
    branch.teePad.unlink(branch.queue.getStaticPad('sink')!);
    this.#tee.releaseRequestPad(branch.teePad);
  }

  /** Removes a viewer's branch (unlinked first if it was not), once the viewer's pipeline is in NULL. */
  detach(sink: GstElement): void {
    this.unlink(sink);
    const branch = this.#branches.get(sink);
    if (!branch) return;
    this.#branches.delete(sink);
    branch.queue.setState(Gst.State.NULL);
    sink.setState(Gst.State.NULL);
    this.#pipeline.remove(branch.queue);
    this.#pipeline.remove(sink);
  }

  close(): void {
    this.#feed.unsubscribe();
    this.#pipeline.setState(Gst.State.NULL);
  }
}
