/**
 * A stand-in for the media engine's recording side, for tests and the bench: a producer pipeline feeding a
 * SampleHub and one Recorder, in a process that loads node-gtk. `node dist/test/support/recorderHarness.js
 * '<json options>'`; it reports on stdout one JSON object a line. SIGTERM stops the recorder gracefully (EOS, the
 * open segment finalised) and exits 0; stdin closing does the same. The test process only spawns it (JsonChild).
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { report } from './jsonChild.js';

export interface RecorderHarnessOptions {
  readonly dir: string;
  readonly segmentMs: number;
  readonly fragmentMs: number;
  readonly audio: boolean;
  readonly width?: number;
  readonly height?: number;
  /** x264 bitrate, kbit/s. */
  readonly bitrate?: number;
  readonly keyInt?: number;
  /** Swap the producer for one at `swapSize` (e.g. 640x480) this long after the first segment opened (a hot swap). */
  readonly swapAfterMs?: number;
  readonly swapSize?: string;
}

export const RECORDER_HARNESS = fileURLToPath(import.meta.url);

/** The producer: what a main pipeline publishing `video` (and `audio`) to the hub looks like. */
export function producerLaunch(o: RecorderHarnessOptions): string {
  const video =
    `videotestsrc is-live=true pattern=ball ! video/x-raw,width=${o.width ?? 320},height=${o.height ?? 240},framerate=30/1 ! ` +
    `x264enc tune=zerolatency speed-preset=ultrafast key-int-max=${o.keyInt ?? 15} bitrate=${o.bitrate ?? 1000} ! video/x-h264,profile=constrained-baseline ! ` +
    'h264parse config-interval=-1 ! appsink name=video max-buffers=30 drop=true sync=false';
  const audio = 'audiotestsrc is-live=true wave=ticks ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! appsink name=audio max-buffers=30 drop=true sync=false';
  return o.audio ? `${video} ${audio}` : video;
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as RecorderHarnessOptions;
  const { GLib, Gst } = await import('../../media/gst.js');
  const { SampleHub } = await import('../../media/SampleHub.js');
  const { Recorder } = await import('../../media/Recorder.js');
  Gst.init(null);
  const loop = GLib.MainLoop.new(null, false);
  setImmediate(() => loop.run());
  const hub = new SampleHub();
  let producer = Gst.parseLaunch(producerLaunch(options)) as InstanceType<typeof Gst.Pipeline>;
  let detach = ['video', ...(options.audio ? ['audio'] : [])].map((name) => hub.attachProducer(producer.getByName(name)!));
  producer.setState(Gst.State.PLAYING);
  const swap = () => {
    // As PipelineRunner swaps a main pipeline: the old producer's signals off, NULL on a later tick, the new one in.
    for (const fn of detach) fn();
    const old = producer;
    setTimeout(() => old.setState(Gst.State.NULL), 30);
    const [width, height] = (options.swapSize ?? '640x480').split('x').map(Number);
    producer = Gst.parseLaunch(producerLaunch({ ...options, width: width!, height: height! })) as InstanceType<typeof Gst.Pipeline>;
    detach = ['video', ...(options.audio ? ['audio'] : [])].map((name) => hub.attachProducer(producer.getByName(name)!));
    producer.setState(Gst.State.PLAYING);
    report({ type: 'swapped', at: Date.now() });
  };
  let swapping = false;
  // Audio is muxed only if its caps are known when video starts: wait for both, as a running engine would have them.
  const wanted = options.audio ? ['video', 'audio'] : ['video'];
  while (!wanted.every((name) => hub.stats()[name]?.caps)) await new Promise((resolve) => setTimeout(resolve, 20));
  const recorder = new Recorder({
    name: 'video',
    stream: 'video',
    audio: options.audio ? 'audio' : null,
    dir: options.dir,
    segmentMs: options.segmentMs,
    fragmentMs: options.fragmentMs,
    hub,
    onOpened: (path, startMs) => {
      report({ type: 'opened', path, startMs, at: Date.now() });
      if (options.swapAfterMs !== undefined && !swapping) {
        swapping = true;
        setTimeout(swap, options.swapAfterMs);
      }
    },
    onSegment: (segment) => report({ type: 'segment', segment: { ...segment }, at: Date.now() }),
    onState: (state, error) => report({ type: 'state', state, error }),
    onLog: (level, msg) => report({ type: 'log', level, msg }),
  });
  recorder.start();
  report({ type: 'ready', pid: process.pid });
  const frames = setInterval(() => report({ type: 'frames', buffers: hub.stats().video?.buffers ?? 0, at: Date.now() }), 250);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const t0 = Date.now();
    await recorder.stop(10_000);
    clearInterval(frames);
    report({ type: 'stopped', ms: Date.now() - t0 });
    for (const fn of detach) fn();
    setTimeout(() => {
      producer.setState(Gst.State.NULL);
      loop.quit();
      process.exit(0);
    }, 50);
  };
  process.on('SIGTERM', () => void stop());
  process.stdin.resume();
  process.stdin.on('end', () => void stop());
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    report({ type: 'error', error: String(error) });
    process.exit(1);
  });
}
