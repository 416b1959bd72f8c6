import { errorMessage } from '../config/errors.js';
import { isEngineCommand, type EngineCommand, type EngineEvent, type EngineStats, type WebRtcPeerSpec, type WebRtcPeerState } from '../ipc/protocol.js';
import { AnalysisTaps } from './AnalysisTap.js';
import { parseLaunch, type GstElement } from './gst.js';
import { PipelineRunner } from './PipelineRunner.js';
import { RecorderSet } from './RecorderSet.js';
import { RtspServer } from './RtspServer.js';
import { SampleHub } from './SampleHub.js';
import { WebRtcFanouts } from './WebRtcFanouts.js';
import { WebRtcPeer } from './WebRtcPeer.js';
import { ENGINE_TEARDOWN_MS } from '../machines/pipeline.js';

/** What the engine needs from its process. */
export interface EngineOptions {
  /** Sends an event to the control plane. */
  readonly send: (event: EngineEvent) => void;
  /** Ends the process once a shutdown is done (exit code 0). */
  readonly exit: () => void;
}

/**
 * The media engine: everything that touches GStreamer, in the child process the control plane forks, so that a
 * plugin that crashes, or an exception node-gtk turns into an exit, takes this process down and not the module.
 * It obeys {@link EngineCommand}s ({@link handle}) and answers with {@link EngineEvent}s. `media/main.ts` is
 * the process around it (GStreamer, IPC, timers, the GLib main loop).
 *
 * @example
 * const engine = new Engine({ send: (event) => process.send?.(event), exit: () => process.exit(0) });
 * process.on('message', (message) => engine.handle(message));
 */
export class Engine {
  /** Sends events to the control plane. */
  readonly #send: (event: EngineEvent) => void;
  /** Ends the process after a shutdown. */
  readonly #exit: () => void;
  /** The running pipelines, by name. */
  readonly #runners = new Map<string, PipelineRunner>();
  /** Samples from named appsinks to whoever consumes them (RTSP media, WebRTC peers). */
  readonly #hub = new SampleHub();
  /** The RTSP server (listening while there are mounts). */
  readonly #rtsp: RtspServer;
  /** WebRTC viewers' peers, by id. */
  readonly #peers = new Map<string, WebRtcPeer>();
  /** Shared mode's payloader-and-tee pipelines, while shared viewers watch. */
  readonly #fanouts: WebRtcFanouts;
  /** Video analysis: a tap per analyzer, and a branch after each named `inference` element of every pipeline. */
  readonly #analysis: AnalysisTaps;
  /** Recording: one recorder per `record` stream, hub samples into MP4 segments (`record-configure`). */
  readonly #recorders: RecorderSet;
  /** Set once a shutdown is under way: no pipeline starts after it. */
  #shuttingDown = false;

  constructor(options: EngineOptions) {
    this.#send = options.send;
    this.#exit = options.exit;
    this.#rtsp = new RtspServer(this.#hub, (event) => this.#send(event), (name) => this.#findElement(name));
    this.#fanouts = new WebRtcFanouts(this.#hub, (level, msg) => this.#log(level, msg));
    this.#analysis = new AnalysisTaps(this.#hub, (event) => this.#send(event));
    this.#recorders = new RecorderSet(this.#hub, (event) => this.#send(event), (level, msg) => this.#log(level, msg));
  }

  /** Whether the sample hub moves buffers in C (the plugin's `iotedgehub`) rather than through JS. */
  get nativeHub(): boolean {
    return this.#hub.native;
  }

  /**
   * Obeys one message from the control plane. A malformed one (unknown type, a field missing or of the wrong kind:
   * the protocol's guard) is logged and ignored; nothing thrown while obeying leaves this method.
   */
  handle(message: unknown): void {
    try {
      if (isEngineCommand(message)) this.#dispatch(message);
      else this.#log('error', `ignored a malformed command: ${(JSON.stringify(message) ?? String(message)).slice(0, 200)}`);
    } catch (error) {
      const type = isEngineCommand(message) ? message.type : 'unknown';
      this.#log('error', `command ${type} failed: ${errorMessage(error)}`);
    }
  }

  /** Counters for the control plane (sent every second). */
  stats(): EngineStats {
    const { rss, heapUsed, external } = process.memoryUsage();
    return { streams: this.#hub.stats(), rtsp: this.#rtsp.stats(), webrtcPeers: this.#peers.size, memory: { rss, heapUsed, external } };
  }

  /** Graceful stop of every pipeline and recorder (bounded), then exit. Idempotent. */
  shutdown(timeoutMs: number): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    for (const peer of this.#peers.values()) peer.close();
    this.#fanouts.close();
    this.#rtsp.close();
    this.#analysis.close();
    // Recorders get EOS with the pipelines: the segment being written is finalised and reported before the exit
    // (within the supervisor's bound, which kills the process at `timeoutMs`).
    let recordersStopped = false;
    void this.#recorders.stop(Math.max(500, timeoutMs - 1_000)).finally(() => (recordersStopped = true));
    const deadline = setTimeout(() => this.#exit(), timeoutMs + ENGINE_TEARDOWN_MS);
    const check = setInterval(() => {
      if (this.#runners.size > 0 || !recordersStopped) return;
      clearTimeout(deadline);
      clearInterval(check);
      this.#exit();
    }, 10);
    for (const runner of this.#runners.values()) runner.stop(true, timeoutMs);
  }

  #dispatch(command: EngineCommand): void {
    switch (command.type) {
      case 'ping':
        this.#send({ type: 'pong' });
        return;
      case 'validate':
        this.#validate(command.id, command.launch);
        return;
      case 'start':
        if (!this.#shuttingDown) this.#start(command.pipeline, command.run, command.launch);
        return;
      case 'stop':
        this.#stop(command.pipeline, command.run, command.graceful, command.timeoutMs);
        return;
      case 'rtsp':
        this.#rtsp.configure(command.config);
        return;
      case 'webrtc-open':
        this.#openPeer(command.spec);
        return;
      case 'webrtc-signal': {
        const peer = this.#peers.get(command.peer);
        if (!peer) return;
        try {
          peer.handleSignal(command.signal);
        } catch (error) {
          // A viewer that signals out of order (or a peer already going) is over; the others are not.
          peer.fail(errorMessage(error));
        }
        return;
      }
      case 'webrtc-close':
        this.#peers.get(command.peer)?.close();
        return;
      case 'shutdown':
        this.shutdown(command.timeoutMs);
        return;
      case 'analysis':
        if (!this.#shuttingDown) this.#analysis.configure(command.taps, command.decoder);
        return;
      case 'record-configure':
        if (!this.#shuttingDown) this.#recorders.configure(command.recorders);
        return;
    }
  }

  #log(level: 'debug' | 'info' | 'warn' | 'error', msg: string): void {
    this.#send({ type: 'log', level, msg });
  }

  #validate(id: number, launch: string): void {
    try {
      parseLaunch(launch);
      this.#send({ type: 'reply', id, ok: true });
    } catch (error) {
      this.#send({ type: 'reply', id, ok: false, error: errorMessage(error) });
    }
  }

  #start(pipeline: string, run: number, launch: string): void {
    this.#runners.get(pipeline)?.stop(false, 0);
    let runner: PipelineRunner;
    try {
      runner = new PipelineRunner(
        pipeline,
        run,
        launch,
        (event) => this.#send(event),
        () => {
          if (this.#runners.get(pipeline) === runner) this.#runners.delete(pipeline);
        },
        this.#hub,
      );
    } catch (error) {
      this.#send({ type: 'error', pipeline, run, message: errorMessage(error), source: 'parser', debug: null });
      this.#send({ type: 'stopped', pipeline, run, eos: false });
      return;
    }
    try {
      // Before PLAYING: a named `inference` element gets its tap branch while the pipeline is still in NULL.
      for (const detach of this.#analysis.attach(runner.pipeline)) runner.beforeNull(detach);
    } catch (error) {
      this.#send({ type: 'error', pipeline, run, message: `analysis tap: ${errorMessage(error)}`, source: 'inference', debug: null });
      runner.stop(false, 0);
      return;
    }
    this.#runners.set(pipeline, runner);
    this.#rtsp.producerStarted();
    runner.play();
  }

  #stop(pipeline: string, run: number, graceful: boolean, timeoutMs: number): void {
    const runner = this.#runners.get(pipeline);
    if (runner && runner.run === run) runner.stop(graceful, timeoutMs);
    else this.#send({ type: 'stopped', pipeline, run, eos: false });
  }

  /** An element of any running pipeline, by name (a proxysink for an RTSP proxysrc). */
  #findElement(name: string): GstElement | null {
    for (const runner of this.#runners.values()) {
      const element = runner.pipeline.getByName(name);
      if (element) return element;
    }
    return null;
  }

  #openPeer(spec: WebRtcPeerSpec): void {
    const { peer: id } = spec;
    if (this.#peers.has(id)) return;
    const state = (now: WebRtcPeerState, reason: string | null) => this.#send({ type: 'webrtc-state', peer: id, state: now, reason });
    let peer: WebRtcPeer;
    try {
      peer = new WebRtcPeer({
        id,
        mode: spec.mode,
        fanouts: this.#fanouts,
        launch: spec.launch ?? undefined,
        offer: spec.offer ?? undefined,
        hub: this.#hub,
        stunServer: spec.stunServer ?? undefined,
        turnServers: spec.turnServers,
        onSignal: (signal) => this.#send({ type: 'webrtc-signal', peer: id, signal }),
        onState: (now, reason) => {
          state(now, reason ?? null);
          if (now === 'failed') setImmediate(() => this.#peers.get(id)?.close());
          if (now === 'closed' && this.#peers.get(id) === peer) this.#peers.delete(id);
        },
      });
    } catch (error) {
      state('failed', errorMessage(error));
      state('closed', null);
      return;
    }
    this.#peers.set(id, peer);
    peer.start();
  }
}
