import { existsSync, renameSync, statSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Subscription } from 'rxjs';
import type { RecordedSegment, RecorderSpec, RecorderStateName } from '../ipc/protocol.js';
import { PARTIAL_SUFFIX, segmentFileName } from '../recording/naming.js';
import { trimToCompleteBoxes } from '../recording/mp4.js';
import { nullLater } from './gc.js';
import { asSplitMuxSink, GLib, Gst, uint64Field, type GstElement, type GstMessage, type GstPipeline } from './gst.js';
import type { GstSample, HubSample, SampleHub } from './SampleHub.js';

/** `GST_CLOCK_TIME_NONE` and negative running times come back as huge unsigned values. */
const MAX_VALID_TIME = 2n ** 62n;

export interface RecorderOptions extends RecorderSpec {
  readonly hub: SampleHub;
  /** A segment file was opened (it ends in `.part` until closed). */
  readonly onOpened?: (path: string, startMs: number) => void;
  /** A segment is finished and renamed: queue it. Called from the main loop, never from a streaming thread. */
  readonly onSegment: (segment: RecordedSegment) => void;
  readonly onState?: (state: RecorderStateName, error: string | null) => void;
  readonly onLog?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
}

/** A segment file splitmuxsink has open. */
interface OpenSegment {
  readonly partPath: string;
  readonly startMs: number;
  /** Running time of its first buffer, ns. */
  runningTime: bigint | null;
}

type AppSrcLike = GstElement & { endOfStream(): number };
type SignalTarget = GstElement & { connect(signal: string, cb: (...args: never[]) => unknown): number; disconnect(id: number): void };

/** The parser between the hub's caps and mp4mux (no re-encode): null when the caps cannot go into MP4 as they are. */
function videoParser(caps: string): string | null {
  if (caps.startsWith('video/x-h264')) return 'h264parse';
  if (caps.startsWith('video/x-h265')) return 'h265parse';
  return null;
}

function audioParser(caps: string): string | null {
  if (caps.startsWith('audio/mpeg') && /mpegversion=\(int\)[24]/.test(caps)) return 'aacparse';
  if (caps.startsWith('audio/x-opus')) return 'opusparse';
  return null;
}

/**
 * One recording pipeline: `appsrc ! <parser> ! splitmuxsink` (fragmented mp4mux; plus an audio appsrc into
 * `audio_%u` when the hub has one). Runs until {@link finish} (EOS: the open segment is finalised) or an error;
 * either way it ends by salvaging any `.part` it still has (cut to its last complete fragment).
 */
class RecordingRun {
  readonly #options: RecorderOptions;
  readonly #pipeline: GstPipeline;
  readonly #appsrcs: AppSrcLike[] = [];
  readonly #consumers: Subscription[] = [];
  readonly #mux: SignalTarget;
  #signalId: number | null = null;
  /** Wall clock at the pipeline's base time: a running time maps to UTC as this + running time. */
  readonly #utcAtBase: number;
  readonly #open = new Map<string, OpenSegment>();
  readonly audio: boolean;
  #ending = false;
  #closed = false;
  #eosTimer: NodeJS.Timeout | null = null;
  /** Resolves when the pipeline is in NULL and every segment is reported or salvaged. */
  readonly done: Promise<void>;
  #resolveDone!: () => void;
  /** Set when the run failed (its error message). */
  error: string | null = null;

  constructor(options: RecorderOptions, videoCaps: string, audioCaps: string | null, onFailed: (message: string) => void) {
    this.#options = options;
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    const parser = videoParser(videoCaps);
    if (!parser) throw new Error(`stream ${options.stream} carries ${videoCaps.split(',')[0]}: recording (no re-encode) needs H.264 or H.265`);
    const aparser = audioCaps ? audioParser(audioCaps) : null;
    if (audioCaps && !aparser) options.onLog?.('warn', `${options.name}: audio stream ${options.audio} carries ${audioCaps.split(',')[0]}, which MP4 cannot hold as it is; recording video only`);
    this.audio = aparser !== null;
    // filesink unbuffered (buffer-mode 2): its default 64 KiB stdio buffer held a low-bitrate stream's fragments in
    // memory for seconds (a 300 kbit/s file stayed 0 bytes until closed), so a SIGKILL lost more than a fragment.
    const launch =
      `appsrc name=vsrc ! ${parser} ! splitmuxsink name=mux async-finalize=true muxer-factory=mp4mux ` +
      `muxer-properties="properties,fragment-duration=(uint)${options.fragmentMs}" ` +
      `sink-factory=filesink sink-properties="properties,buffer-mode=(int)2" max-size-time=${BigInt(options.segmentMs) * 1_000_000n}` +
      (aparser ? ` appsrc name=asrc ! ${aparser} ! mux.audio_%u` : '');
    this.#pipeline = Gst.parseLaunch(launch) as GstPipeline;
    this.#mux = this.#pipeline.getByName('mux') as SignalTarget;
    asSplitMuxSink(this.#mux).location = join(options.dir, `${options.stream}-unnamed-%05d.mp4${PARTIAL_SUFFIX}`);
    // The segment's UTC start is in its name, chosen when splitmuxsink opens the file. This handler runs on the
    // main thread while a streaming thread waits for it: no blocking GStreamer call here, and it goes before NULL.
    this.#signalId = this.#mux.connect('format-location-full', ((_fragment: number, sample: GstSample) => this.#location(sample)) as never);
    // Our own clock and base time, read before PLAYING: running time 0 is a wall-clock instant known exactly.
    const clock = Gst.SystemClock.obtain();
    this.#pipeline.useClock(clock);
    this.#pipeline.setStartTime(Gst.CLOCK_TIME_NONE);
    this.#pipeline.setBaseTime(clock.getTime());
    this.#utcAtBase = Date.now();
    const bus = this.#pipeline.getBus()!;
    bus.addWatch(GLib.PRIORITY_DEFAULT, (_bus: unknown, message: GstMessage) => {
      try {
        this.#onMessage(message, onFailed);
      } catch (error) {
        options.onLog?.('error', `${options.name}: bus handler failed: ${String(error)}`);
      }
      return true;
    });
    const vsrc = this.#pipeline.getByName('vsrc') as AppSrcLike;
    this.#appsrcs.push(vsrc);
    this.#consumers.push(options.hub.attachConsumer(vsrc, options.stream));
    if (aparser && options.audio) {
      const asrc = this.#pipeline.getByName('asrc') as AppSrcLike;
      this.#appsrcs.push(asrc);
      this.#consumers.push(options.hub.attachConsumer(asrc, options.audio));
    }
  }

  play(): void {
    if (this.#pipeline.setState(Gst.State.PLAYING) === Gst.StateChangeReturn.FAILURE) {
      this.error = 'the recording pipeline failed to start';
      this.#teardown();
    }
  }

  /**
   * Takes no more samples from the hub. Pure JS (no GStreamer call), so it may run inside the producer's `new-sample`
   * handler: a closed subscriber is skipped for the sample being handed out, so no buffer of new caps reaches this muxer.
   */
  detach(): void {
    for (const consumer of this.#consumers.splice(0)) consumer.unsubscribe();
  }

  /** Ends the run gracefully: no more samples, EOS so the open segment is finalised, NULL (bounded by `timeoutMs`). */
  finish(timeoutMs: number): Promise<void> {
    if (this.#ending || this.#closed) return this.done;
    this.#ending = true;
    for (const consumer of this.#consumers.splice(0)) consumer.unsubscribe();
    // endOfStream() only queues EOS in the appsrc (it does not wait on a streaming thread), and a buffer the hub
    // would still push after it is refused: the new caps of a swapped producer never reach this muxer.
    for (const src of this.#appsrcs) src.endOfStream();
    this.#eosTimer = setTimeout(() => {
      this.#options.onLog?.('warn', `${this.#options.name}: no EOS within ${timeoutMs} ms; the open segment is salvaged`);
      this.#teardown();
    }, timeoutMs);
    return this.done;
  }

  /** `format-location-full`: the open file's name, from its first buffer's running time. Never throws. */
  #location(sample: GstSample): string {
    let startMs = Date.now();
    let runningTime: bigint | null = null;
    try {
      const buffer = sample.getBuffer();
      const segment = sample.getSegment();
      if (buffer && segment) {
        const rt = segment.toRunningTime(Gst.Format.TIME, buffer.pts);
        if (rt >= 0n && rt < MAX_VALID_TIME) {
          runningTime = rt;
          startMs = this.#utcAtBase + Number(rt / 1000n) / 1000;
        }
      }
    } catch {
      // The wall clock now is a fair stand-in; an exception here would end the process.
    }
    startMs = Math.round(startMs);
    let extra = 0;
    let path = join(this.#options.dir, segmentFileName(this.#options.stream, startMs));
    // A clock stepped back must not overwrite an earlier segment.
    while (existsSync(path) || existsSync(path + PARTIAL_SUFFIX)) path = join(this.#options.dir, segmentFileName(this.#options.stream, startMs, ++extra));
    const partPath = path + PARTIAL_SUFFIX;
    this.#open.set(partPath, { partPath, startMs, runningTime });
    return partPath;
  }

  #onMessage(message: GstMessage, onFailed: (message: string) => void): void {
    if (this.#closed) return;
    const type = message.type;
    if (type === Gst.MessageType.ELEMENT && message.src === (this.#mux as unknown)) {
      const s = message.getStructure();
      const name = s?.getName();
      if (!s || (name !== 'splitmuxsink-fragment-opened' && name !== 'splitmuxsink-fragment-closed')) return;
      const location = s.getString('location');
      const runningTime = uint64Field(s, 'running-time') ?? 0n;
      const open = location ? this.#open.get(location) : undefined;
      if (!open) return;
      if (name === 'splitmuxsink-fragment-opened') {
        open.runningTime ??= runningTime;
        this.#options.onOpened?.(open.partPath, open.startMs);
      } else {
        this.#closedSegment(open, runningTime);
      }
    } else if (type === Gst.MessageType.ERROR) {
      const [error] = message.parseError();
      this.error = error.message;
      onFailed(error.message);
      this.#teardown();
    } else if (type === Gst.MessageType.EOS) {
      this.#teardown();
    }
  }

  /** splitmuxsink closed the file: rename it from `.part` and report it. */
  #closedSegment(open: OpenSegment, endRunningTime: bigint): void {
    this.#open.delete(open.partPath);
    const path = open.partPath.slice(0, -PARTIAL_SUFFIX.length);
    try {
      renameSync(open.partPath, path);
      const size = statSync(path).size;
      const durationMs = open.runningTime !== null && endRunningTime >= open.runningTime ? Number((endRunningTime - open.runningTime) / 1_000_000n) : 0;
      this.#options.onSegment({ recorder: this.#options.name, stream: this.#options.stream, path, startMs: open.startMs, durationMs, size, audio: this.audio });
    } catch (error) {
      this.#options.onLog?.('error', `${this.#options.name}: ${path}: ${String(error)}`);
    }
  }

  /** Signals off, NULL on a later tick (PipelineRunner's rules), then the open segments salvaged. */
  #teardown(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#eosTimer) clearTimeout(this.#eosTimer);
    for (const consumer of this.#consumers.splice(0)) consumer.unsubscribe();
    if (this.#signalId !== null) this.#mux.disconnect(this.#signalId);
    this.#signalId = null;
    nullLater(this.#pipeline, () => void this.#salvage().finally(() => this.#resolveDone()));
  }

  /** Files splitmuxsink never closed (an error, no EOS in time): cut to the last complete fragment and report. */
  async #salvage(): Promise<void> {
    for (const open of [...this.#open.values()]) {
      this.#open.delete(open.partPath);
      try {
        const layout = await trimToCompleteBoxes(open.partPath);
        if (!layout.playable || layout.fragments === 0) {
          await unlink(open.partPath);
          continue;
        }
        const path = open.partPath.slice(0, -PARTIAL_SUFFIX.length);
        renameSync(open.partPath, path);
        const durationMs = layout.durationMs ?? Math.max(0, Date.now() - open.startMs);
        this.#options.onSegment({ recorder: this.#options.name, stream: this.#options.stream, path, startMs: open.startMs, durationMs, size: layout.size, audio: this.audio });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.#options.onLog?.('error', `${this.#options.name}: salvaging ${open.partPath}: ${String(error)}`);
      }
    }
  }
}

/**
 * Records one sample hub stream into MP4 segments of `segmentMs`, fragmented every `fragmentMs` (a crash loses at
 * most the last fragment), named `<stream>-<UTC start>.mp4`, without re-encoding: buffers move by reference from
 * the producer's appsink (SampleHub), never through JavaScript. Audio from the `audio` hub stream is muxed into the
 * same segments when that stream has AAC or Opus caps by the time video starts. A segment ends at the last key
 * frame that keeps it within `segmentMs` (splitmuxsink's rule), so it is up to one GOP shorter than that. When the
 * producer's caps change (a swapped main pipeline), the open segment is finished and a new one starts with the
 * new caps, rather than feeding a muxer caps it cannot take.
 *
 * @example
 * const recorder = new Recorder({ name: 'video', stream: 'video', audio: 'audio', dir, segmentMs: 60_000, fragmentMs: 1_000, hub, onSegment: (s) => send({ type: 'record-segment', segment: s }) });
 * recorder.start();
 * await recorder.stop(5_000); // EOS: the open segment is finalised and reported
 */
export class Recorder {
  readonly name: string;
  readonly #options: RecorderOptions;
  /** The hub stream, watched for the first caps and for caps changes. */
  #watch: Subscription | null = null;
  #run: RecordingRun | null = null;
  /** Runs finishing (a caps change), awaited by stop(). */
  readonly #finishing = new Set<Promise<void>>();
  /** Caps of the stream as the running segment's pipeline was built for (wrapper, and text). */
  #capsObject: HubSample['caps'] = null;
  #capsText: string | null = null;
  #state: RecorderStateName = 'stopped';
  #stopping: Promise<void> | null = null;
  #segments = 0;

  constructor(options: RecorderOptions) {
    this.name = options.name;
    this.#options = {
      ...options,
      onSegment: (segment) => {
        this.#segments++;
        try {
          options.onSegment(segment);
        } catch (error) {
          options.onLog?.('error', `${options.name}: segment callback failed: ${String(error)}`);
        }
      },
    };
  }

  get state(): RecorderStateName {
    return this.#state;
  }

  /** Segments reported so far. */
  get segments(): number {
    return this.#segments;
  }

  /** Starts waiting for the stream; the pipeline is built when its first caps arrive. */
  start(): void {
    if (this.#watch || this.#stopping) return;
    this.#setState('waiting', null);
    this.#watch = this.#options.hub.stream(this.#options.stream).subscribe((item) => this.#onSample(item));
  }

  /** Finishes the open segment (EOS; bounded by `timeoutMs`) and stops. Idempotent. */
  stop(timeoutMs = 5_000): Promise<void> {
    this.#stopping ??= (async () => {
      this.#watch?.unsubscribe();
      this.#watch = null;
      if (this.#state !== 'failed') this.#setState('stopping', null);
      const run = this.#run;
      this.#run = null;
      if (run) this.#finishing.add(run.finish(timeoutMs));
      await Promise.allSettled([...this.#finishing]);
      if (this.#state !== 'failed') this.#setState('stopped', null);
    })();
    return this.#stopping;
  }

  /** Runs inside the producer's `new-sample` handler (its streaming thread waits): only notice, build later. */
  #onSample(item: HubSample): void {
    // The caps wrapper is the same object until the caps change: a reference compare per sample.
    if (!item.caps || item.caps === this.#capsObject || this.#stopping) return;
    this.#capsObject = item.caps;
    try {
      const caps = item.caps.toString();
      if (caps === this.#capsText) return;
      this.#capsText = caps;
      // At once, before the hub hands this sample on to the running segment's appsrc (its subscription comes after
      // this one): the old segment ends with the old caps; the new run is built below, outside this handler.
      this.#run?.detach();
      // Building a pipeline (PLAYING, attachConsumer's key frame request upstream into the producer) from inside the
      // producer's signal handler deadlocked: the producer's thread holds what those calls wait for. A timer runs
      // once the handler has returned (setImmediate may run before it, as PipelineRunner notes).
      setTimeout(() => this.#build(caps), 0);
    } catch {
      // RxJS would rethrow a subscriber's error on a timer, which ends the process.
    }
  }

  #build(caps: string): void {
    if (this.#stopping) return;
    try {
      const old = this.#run;
      this.#run = null;
      if (old) {
        const finishing = old.finish(5_000);
        this.#finishing.add(finishing);
        void finishing.finally(() => this.#finishing.delete(finishing));
      }
      const audioCaps = this.#options.audio ? (this.#options.hub.stats()[this.#options.audio]?.caps ?? null) : null;
      const run = new RecordingRun(this.#options, caps, audioCaps, (message) => {
        if (this.#run !== run) return;
        this.#run = null;
        this.#setState('failed', message);
      });
      this.#run = run;
      run.play();
      if (!run.error) this.#setState('recording', null);
    } catch (error) {
      this.#run = null;
      this.#setState('failed', error instanceof Error ? error.message : String(error));
      this.#watch?.unsubscribe();
      this.#watch = null;
    }
  }

  #setState(state: RecorderStateName, error: string | null): void {
    if (this.#state === state && error === null) return;
    this.#state = state;
    try {
      this.#options.onState?.(state, error);
    } catch {
      // As above.
    }
  }
}
