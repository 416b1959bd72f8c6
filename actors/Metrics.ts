import type { EventEmitter } from 'node:events';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Observable, Subscription } from 'rxjs';
import type { EngineStats } from '../ipc/protocol.js';
import { PIPELINE_STATES } from '../machines/pipeline.js';
import { RecordingMetrics } from '../recording/metrics.js';
import type { SegmentQueue } from '../recording/SegmentQueue.js';
import type { AnalyzerObserverEvents } from './AnalyzerSupervisor.js';
import { AnalysisMetrics } from './analysisMetrics.js';
import type { ControlPlaneEvent, StatusDocument } from './ControlPlane.js';

/** What the metrics follow: the control plane's observable side, nothing of its insides. */
export interface MetricsSource {
  readonly events$: Observable<ControlPlaneEvent>;
  readonly status$: Observable<StatusDocument>;
  readonly stats$: Observable<EngineStats | null>;
  /** Analyzers' monitoring events (video analysis metrics). */
  readonly analysisObserver?: EventEmitter<AnalyzerObserverEvents>;
  /** Recording's queue while `record` is on (recording metrics). */
  readonly recordingQueue$?: Observable<SegmentQueue | null>;
}

/** The event-loop lag histogram's sampling period (prom-client's default is 10 ms). */
export const EVENT_LOOP_SAMPLE_MS = 100;

/** `gst-iotedge` -> `gst_iotedge`: a module name as a Prometheus metric prefix. */
export function metricPrefix(moduleName: string): string {
  const cleaned = moduleName.replace(/[^a-zA-Z0-9_]/g, '_').replace(/^([0-9])/, '_$1');
  return cleaned || 'gst_iotedge';
}

/**
 * The module's Prometheus registry, fed from the control plane's events and the engine's stats. Names carry the
 * module name as prefix, and every series the IoT Edge labels (`iothub`, `edge_device`, `module_name`) when the
 * IoT Edge environment provides them, as edgeHub's own metrics do.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly prefix: string;
  readonly #pipelineState: Gauge<'pipeline' | 'state'>;
  readonly #restarts: Counter<'pipeline'>;
  readonly #errors: Counter<'pipeline'>;
  readonly #streamBuffers: Counter<'stream'>;
  readonly #streamBytes: Counter<'stream'>;
  readonly #streamFps: Gauge<'stream'>;
  readonly #rtspViewers: Gauge<'mount'>;
  readonly #rtspBytes: Counter<'mount'>;
  /** Last engine byte count per mount, for increments. */
  readonly #lastRtspBytes = new Map<string, number>();
  readonly #webrtcPeers: Gauge;
  readonly #twinUpdates: Counter<'result'>;
  readonly #engineRestarts: Counter<'reason'>;
  readonly #engineUp: Gauge;
  readonly #engineMemory: Gauge<'area'>;
  readonly #httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly #uncaught: Counter<'kind'>;
  readonly #authFailures: Counter<'surface' | 'reason'>;
  /** Last engine counters per stream, to turn its cumulative counts (reset by an engine restart) into increments. */
  readonly #lastStreams = new Map<string, { buffers: number; bytes: number; at: number }>();
  /** Pipelines seen in the state gauge, so a removed pipeline's series go away. */
  readonly #knownPipelines = new Set<string>();
  /** Mounts seen in the viewers gauge. */
  readonly #knownMounts = new Set<string>();
  readonly #subscriptions: Subscription[] = [];
  /** Video analysis: detections per class, analysed fps, inference latency, frames and events dropped, restarts. */
  readonly #analysis: AnalysisMetrics;
  /** Stops following analyzers' observer. */
  #stopAnalysis: (() => void) | null = null;
  /** Recording: segments written, uploaded, failed, dropped; bytes pending, oldest pending age, throughput, disk alarm. */
  readonly #recording: RecordingMetrics;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.prefix = metricPrefix(env.IOTEDGE_MODULEID ?? 'gst_iotedge');
    const labels: Record<string, string> = {};
    if (env.IOTEDGE_IOTHUBHOSTNAME) labels.iothub = env.IOTEDGE_IOTHUBHOSTNAME;
    if (env.IOTEDGE_DEVICEID) labels.edge_device = env.IOTEDGE_DEVICEID;
    if (env.IOTEDGE_MODULEID) labels.module_name = env.IOTEDGE_MODULEID;
    this.registry.setDefaultLabels(labels);
    // The event-loop lag histogram samples on a timer of its own; prom-client's 10 ms woke the control plane's
    // thread 100 times a second, about 1% of a core on a module with nothing to do. 100 ms still shows any stall
    // that matters (a twin, a signalling message or a scrape waiting behind a blocked loop).
    collectDefaultMetrics({ register: this.registry, prefix: `${this.prefix}_`, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    // prom-client names these gauges *_total, which Prometheus reserves for counters (promtool refuses them);
    // the same values are there without the suffix.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(`${this.prefix}_${name}`);
    }
    const p = this.prefix;
    const registers = [this.registry];
    this.#pipelineState = new Gauge({ name: `${p}_pipeline_state`, help: 'Pipeline state: 1 for the current state', labelNames: ['pipeline', 'state'], registers });
    this.#restarts = new Counter({ name: `${p}_pipeline_restarts_total`, help: 'Pipeline restarts (after errors, EOS or a restart request)', labelNames: ['pipeline'], registers });
    this.#errors = new Counter({ name: `${p}_pipeline_errors_total`, help: 'Pipeline failures (GStreamer errors, start timeouts, unexpected EOS)', labelNames: ['pipeline'], registers });
    this.#streamBuffers = new Counter({ name: `${p}_stream_buffers_total`, help: 'Buffers through each named appsink', labelNames: ['stream'], registers });
    this.#streamBytes = new Counter({ name: `${p}_stream_bytes_total`, help: 'Bytes through each named appsink', labelNames: ['stream'], registers });
    this.#streamFps = new Gauge({ name: `${p}_stream_fps`, help: 'Buffers per second through each named appsink, over the last second', labelNames: ['stream'], registers });
    this.#rtspViewers = new Gauge({ name: `${p}_rtsp_viewers`, help: 'RTSP sessions playing, per mount', labelNames: ['mount'], registers });
    this.#rtspBytes = new Counter({ name: `${p}_rtsp_bytes_sent_total`, help: 'RTP bytes sent to RTSP viewers, per mount', labelNames: ['mount'], registers });
    this.#webrtcPeers = new Gauge({ name: `${p}_webrtc_peers`, help: 'WebRTC peers alive in the media engine', registers });
    this.#twinUpdates = new Counter({ name: `${p}_twin_updates_total`, help: 'Desired documents applied or rejected', labelNames: ['result'], registers });
    this.#engineRestarts = new Counter({ name: `${p}_engine_restarts_total`, help: 'Media engine restarts, by why it went down (exited, hung, failed_to_start)', labelNames: ['reason'], registers });
    this.#engineUp = new Gauge({ name: `${p}_engine_up`, help: '1 while the media engine process is up', registers });
    this.#engineMemory = new Gauge({
      name: `${p}_engine_memory_bytes`,
      help: "The media engine process's memory: resident (rss), V8 heap in use (heap), C++ objects V8 tracks (external); the control plane's own is in process_resident_memory_bytes",
      labelNames: ['area'],
      registers,
    });
    this.#httpRequests = new Counter({ name: `${p}_http_requests_total`, help: 'HTTP requests served', labelNames: ['method', 'route', 'status'], registers });
    this.#uncaught = new Counter({ name: `${p}_uncaught_errors_total`, help: 'Exceptions and rejections no handler caught (logged; the module kept running)', labelNames: ['kind'], registers });
    for (const kind of ['exception', 'rejection']) this.#uncaught.inc({ kind }, 0);
    this.#analysis = new AnalysisMetrics(this.registry, p);
    this.#recording = new RecordingMetrics(this.registry, p);
    this.#authFailures = new Counter({
      name: `${p}_auth_failures_total`,
      help: 'Refused sign-ins (wrong password, unknown user, bad or expired token, rate limited, credentials over plain text with require_tls), by surface and reason; RTSP refusals happen inside GStreamer and are not counted',
      labelNames: ['surface', 'reason'],
      registers,
    });
    this.#webrtcPeers.set(0);
    this.#engineUp.set(0);
    for (const result of ['applied', 'rejected']) this.#twinUpdates.inc({ result }, 0);
  }

  /** Follows a control plane until {@link close}. */
  observe(plane: MetricsSource): void {
    this.#subscriptions.push(
      plane.events$.subscribe((event) => {
        if (event.type === 'config' && event.status !== 'superseded') this.#twinUpdates.inc({ result: event.status });
        if (event.type === 'pipeline-state') {
          if (event.state === 'backoff') this.#errors.inc({ pipeline: event.pipeline });
          if (event.state === 'starting' && event.restarts > 0) this.#restarts.inc({ pipeline: event.pipeline });
        }
        if (event.type === 'engine-down') this.#engineRestarts.inc({ reason: event.cause.replaceAll('-', '_') });
      }),
      plane.status$.subscribe((status) => {
        const seen = new Set(Object.keys(status.pipelines));
        for (const name of this.#knownPipelines) {
          if (!seen.has(name)) for (const state of PIPELINE_STATES) this.#pipelineState.remove({ pipeline: name, state });
        }
        for (const [name, pipeline] of Object.entries(status.pipelines)) {
          this.#knownPipelines.add(name);
          for (const state of PIPELINE_STATES) this.#pipelineState.set({ pipeline: name, state }, pipeline.state === state ? 1 : 0);
        }
        this.#engineUp.set(status.engine.state === 'running' ? 1 : 0);
        this.#webrtcPeers.set(status.webrtc.peers);
      }),
      plane.stats$.subscribe((stats) => stats && this.#onStats(stats)),
    );
    if (plane.analysisObserver) this.#stopAnalysis = this.#analysis.observe(plane.analysisObserver);
    if (plane.recordingQueue$) this.#subscriptions.push(plane.recordingQueue$.subscribe((queue) => this.#recording.observe(queue)));
  }

  observeUncaught(kind: 'exception' | 'rejection'): void {
    this.#uncaught.inc({ kind });
  }

  /** A refused sign-in on `surface` (http, websocket, whep, metrics) for `reason` (auth/AccessControl's AuthFailureReason). */
  observeAuthFailure(surface: string, reason: string): void {
    this.#authFailures.inc({ surface, reason: reason.replaceAll('-', '_') });
  }

  observeHttp(method: string, route: string, status: number): void {
    this.#httpRequests.inc({ method, route, status: String(status) });
  }

  close(): void {
    for (const s of this.#subscriptions) s.unsubscribe();
    this.#stopAnalysis?.();
    this.#recording.observe(null);
  }

  #onStats(stats: EngineStats): void {
    const now = Date.now();
    for (const [stream, { buffers, bytes }] of Object.entries(stats.streams)) {
      const last = this.#lastStreams.get(stream);
      // A smaller count than last time means a new engine: its counts are all new.
      const newBuffers = last && buffers >= last.buffers ? buffers - last.buffers : buffers;
      const newBytes = last && bytes >= last.bytes ? bytes - last.bytes : bytes;
      this.#streamBuffers.inc({ stream }, newBuffers);
      this.#streamBytes.inc({ stream }, newBytes);
      if (last) this.#streamFps.set({ stream }, (newBuffers * 1000) / Math.max(1, now - last.at));
      this.#lastStreams.set(stream, { buffers, bytes, at: now });
    }
    const mounts = new Set(Object.keys(stats.rtsp));
    for (const mount of this.#knownMounts) if (!mounts.has(mount)) this.#rtspViewers.remove({ mount });
    for (const [mount, { viewers, bytesSent }] of Object.entries(stats.rtsp)) {
      this.#knownMounts.add(mount);
      this.#rtspViewers.set({ mount }, viewers);
      const last = this.#lastRtspBytes.get(mount) ?? 0;
      this.#rtspBytes.inc({ mount }, bytesSent >= last ? bytesSent - last : bytesSent);
      this.#lastRtspBytes.set(mount, bytesSent);
    }
    this.#engineMemory.set({ area: 'rss' }, stats.memory.rss);
    this.#engineMemory.set({ area: 'heap' }, stats.memory.heapUsed);
    this.#engineMemory.set({ area: 'external' }, stats.memory.external);
  }
}
