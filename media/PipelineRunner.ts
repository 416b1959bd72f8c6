import type { EngineEvent, GstStateName } from '../ipc/protocol.js';
import { lowerTcpJitterLatency, networkSourceUri, RTSPSRC_DEFAULT_LATENCY_MS, RTSPSRC_TCP_LATENCY_MS, unreachableSourceUri } from './networkSource.js';
import { allElements, asAppSink, GLib, Gst, objectName, parseLaunch, type AppSink, type GstMessage, type GstPipeline } from './gst.js';
import type { SampleHub } from './SampleHub.js';
import { nullLater, QUIESCE_MS } from './gc.js';

const STATE_NAMES: Record<number, GstStateName> = {
  [Gst.State.VOID_PENDING]: 'void-pending',
  [Gst.State.NULL]: 'null',
  [Gst.State.READY]: 'ready',
  [Gst.State.PAUSED]: 'paused',
  [Gst.State.PLAYING]: 'playing',
};


/**
 * One run of one pipeline in the engine: parse, PLAYING, bus messages turned into {@link EngineEvent}s, and a
 * stop that cannot deadlock (appsink signals off before NULL, NULL on a later tick). An error or EOS ends the
 * run here at once, so the restart the control plane decides on never meets the old pipeline's resources.
 */
export class PipelineRunner {
  readonly name: string;
  readonly run: number;
  /** The GStreamer pipeline this run owns. */
  readonly #pipeline: GstPipeline;
  /** Sends events to the control plane. */
  readonly #emit: (event: EngineEvent) => void;
  /** Called before NULL: things that would have a streaming thread wait for JS (signal handlers) go first. */
  readonly #beforeNull: Array<() => void> = [];
  /** Called once when the run is over. */
  readonly #onClosed: () => void;
  /** A graceful stop in progress: the EOS we sent is the stop, not a failure. */
  #stopping = false;
  #eosTimer: NodeJS.Timeout | null = null;
  #closed = false;
  /** The live check of the hub's appsinks ran (once per run, at the first PLAYING). */
  #unsynced = false;
  /** Last state the pipeline itself reached. */
  #state: GstStateName = 'null';

  constructor(
    name: string,
    run: number,
    launch: string,
    emit: (event: EngineEvent) => void,
    onClosed: () => void,
    hub: SampleHub | null = null,
  ) {
    this.name = name;
    this.run = run;
    this.#emit = emit;
    this.#onClosed = onClosed;
    const element = parseLaunch(launch);
    if (element instanceof Gst.Pipeline) {
      this.#pipeline = element;
    } else {
      // A single element (or a bin in parentheses) comes back bare: gst-launch puts it in a pipeline too.
      this.#pipeline = new Gst.Pipeline({ name: 'pipeline0' });
      this.#pipeline.add(element);
    }
    for (const name of lowerTcpJitterLatency(this.#pipeline)) {
      this.#emit({ type: 'log', level: 'debug', msg: `${name}: RTSP over TCP, jitterbuffer latency ${RTSPSRC_TCP_LATENCY_MS} ms instead of the default ${RTSPSRC_DEFAULT_LATENCY_MS} ms`, pipeline: this.name });
    }
    const bus = this.#pipeline.getBus()!;
    bus.addWatch(GLib.PRIORITY_DEFAULT, (_bus: unknown, message: GstMessage) => {
      try {
        this.#onMessage(message);
      } catch (error) {
        this.#emit({ type: 'log', level: 'error', msg: `bus handler failed: ${String(error)}`, pipeline: this.name });
      }
      return true;
    });
    this.#beforeNull.push(() => {
      for (const appsink of this.#appsinks()) appsink.emitSignals = false;
    });
    // Named appsinks (`appsink name=video`) publish to the sample hub; unnamed ones (appsink0) are the user's own.
    if (hub) {
      // One producer per run: its video and audio share one offset onto every consumer's timeline.
      const producer = hub.producer();
      for (const element of allElements(this.#pipeline)) {
        if (element.getFactory()?.getName() === 'appsink' && !/^appsink\d+$/.test(element.name)) {
          this.#beforeNull.unshift(hub.attachProducer(element, producer));
        }
      }
    }
  }

  /** The pipeline's appsinks (named ones feed RTSP and WebRTC; any may hold samples nobody pulls). */
  *#appsinks(): Generator<AppSink> {
    for (const element of allElements(this.#pipeline)) {
      if (element.getFactory()?.getName() === 'appsink') yield asAppSink(element);
    }
  }

  /** The pipeline (for the RTSP and WebRTC parts that feed from its sinks). */
  get pipeline(): GstPipeline {
    return this.#pipeline;
  }

  /** Registers work to do before the pipeline goes to NULL (e.g. disconnecting signal handlers). */
  beforeNull(fn: () => void): void {
    this.#beforeNull.push(fn);
  }

  play(): void {
    const result = this.#pipeline.setState(Gst.State.PLAYING);
    if (result !== Gst.StateChangeReturn.FAILURE) return;
    // The element that failed has posted an ERROR saying why: take it now, before the bus watch would.
    const error = this.#pipeline.getBus()?.timedPopFiltered(0n, Gst.MessageType.ERROR);
    if (error) this.#onMessage(error);
    else this.#fail('failed to change state to PLAYING', objectName(this.#pipeline), null);
  }

  /**
   * Ends the run. Graceful: EOS first so muxers finalise their files, bounded by `timeoutMs`, then NULL.
   */
  stop(graceful: boolean, timeoutMs: number): void {
    if (this.#closed || this.#stopping) return;
    this.#stopping = true;
    const flowing = this.#state === 'playing' || this.#state === 'paused';
    if (!graceful || !flowing) {
      this.#teardown(false);
      return;
    }
    // Sending EOS blocks this thread on the source's streaming thread, which may itself be waiting for this
    // thread to run a `new-sample` handler: signals go off first, and EOS waits until queued calls have run.
    this.#quiesce();
    this.#eosTimer = setTimeout(() => this.#teardown(false), timeoutMs + QUIESCE_MS);
    setTimeout(() => {
      if (this.#closed) return;
      // An appsink holds EOS back until its queued samples are pulled, and nobody pulls any more.
      for (const appsink of this.#appsinks()) appsink.waitOnEos = false;
      this.#pipeline.sendEvent(Gst.Event.newEos());
    }, QUIESCE_MS);
  }

  /** Runs the before-NULL hooks (signal handlers off) once. */
  #quiesce(): void {
    for (const fn of this.#beforeNull.splice(0)) {
      try {
        fn();
      } catch (error) {
        this.#emit({ type: 'log', level: 'warn', msg: `before-stop hook failed: ${String(error)}`, pipeline: this.name });
      }
    }
  }

  #onMessage(message: GstMessage): void {
    if (this.#closed) return;
    const type = message.type;
    if (type === Gst.MessageType.STATE_CHANGED) {
      if (message.src !== this.#pipeline) return;
      const [, state] = message.parseStateChanged();
      this.#state = STATE_NAMES[state] ?? 'null';
      if (this.#state === 'playing') this.#unsyncLiveProducers();
      this.#emit({ type: 'state', pipeline: this.name, run: this.run, state: this.#state });
    } else if (type === Gst.MessageType.ERROR) {
      const [error, debug] = message.parseError();
      if (this.#stopping) {
        this.#teardown(false);
        return;
      }
      this.#fail(error.message, objectName(message.src), debug, unreachableSourceUri(message.src, error));
    } else if (type === Gst.MessageType.WARNING) {
      const [warning] = message.parseWarning();
      this.#emit({ type: 'warning', pipeline: this.name, run: this.run, message: warning.message, source: objectName(message.src) });
    } else if (type === Gst.MessageType.EOS) {
      if (this.#stopping) {
        this.#teardown(true);
        return;
      }
      this.#emit({ type: 'eos', pipeline: this.name, run: this.run, sourceUri: networkSourceUri(this.#pipeline) });
      this.#teardown(true);
    } else if (type === Gst.MessageType.LATENCY) {
      // As gst-launch-1.0 does: live sources with changing latency need it recomputed.
      this.#pipeline.recalculateLatency();
    } else if (type === Gst.MessageType.CLOCK_LOST) {
      this.#pipeline.setState(Gst.State.PAUSED);
      this.#pipeline.setState(Gst.State.PLAYING);
    } else if (type === Gst.MessageType.REQUEST_STATE) {
      this.#pipeline.setState(message.parseRequestState());
    }
  }

  /**
   * A named appsink of a live pipeline hands its samples to the hub at once instead of at their presentation time
   * (sync off): the hub's consumers time buffers from their capture times, so waiting at the appsink only added the
   * pipeline's latency (rtspsrc's 2 s by default) to every frame, and to a camera's recovery. A pipeline that is not
   * live (a file) keeps its appsinks in sync, or it would pour the whole file into the consumers at once.
   */
  #unsyncLiveProducers(): void {
    if (this.#unsynced) return;
    this.#unsynced = true;
    for (const sink of this.#appsinks()) {
      if (/^appsink\d+$/.test(sink.name)) continue;
      const query = Gst.Query.newLatency();
      if (!sink.getStaticPad('sink')?.peerQuery(query)) continue;
      const [live] = query.parseLatency();
      if (live) sink.setSync(false);
    }
  }

  #fail(message: string, source: string, debug: string | null, sourceUri: string | null = null): void {
    this.#emit({ type: 'error', pipeline: this.name, run: this.run, message, source, debug, sourceUri });
    this.#stopping = true;
    this.#teardown(false);
  }

  #teardown(eos: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#eosTimer) clearTimeout(this.#eosTimer);
    this.#quiesce();
    // NULL once calls already queued for this thread have run (a signal emitted just before the handlers went off).
    nullLater(this.#pipeline, () => {
      this.#emit({ type: 'stopped', pipeline: this.name, run: this.run, eos });
      this.#onClosed();
    });
  }
}
