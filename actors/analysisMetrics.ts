import type { EventEmitter } from 'node:events';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AnalyzerObserverEvents } from './AnalyzerSupervisor.js';

/** Latency buckets in seconds: onnxruntime at 320 is ~15-30 ms, tfjs-wasm ~100 ms, a 32-bit ARM board up to seconds. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2, 5];

/**
 * Prometheus metrics of video analysis, fed only from analyzer supervisors' `observer` emitters:
 * `<prefix>_analysis_detections_total{analyzer,class}`, `_analysis_frames_total{analyzer}`, `_analysis_fps{analyzer}`,
 * `_analysis_inference_seconds{analyzer}` (histogram), `_analysis_frames_dropped_total{analyzer}` (stale frames the
 * model never saw), `_analysis_events_dropped_total{analyzer}` (rate limit), `_analysis_restarts_total{analyzer,reason}`.
 *
 * @example
 * const analysisMetrics = new AnalysisMetrics(metrics.registry, metrics.prefix);
 * const stop = analysisMetrics.observe(supervisor.observer); // call stop() when the analyzer is removed
 */
export class AnalysisMetrics {
  readonly #detections: Counter<'analyzer' | 'class'>;
  readonly #frames: Counter<'analyzer'>;
  readonly #fps: Gauge<'analyzer'>;
  readonly #latency: Histogram<'analyzer'>;
  readonly #framesDropped: Counter<'analyzer'>;
  readonly #eventsDropped: Counter<'analyzer'>;
  readonly #restarts: Counter<'analyzer' | 'reason'>;

  constructor(registry: Registry, prefix: string) {
    const registers = [registry];
    this.#detections = new Counter({ name: `${prefix}_analysis_detections_total`, help: 'Objects detected, by analyzer and class', labelNames: ['analyzer', 'class'], registers });
    this.#frames = new Counter({ name: `${prefix}_analysis_frames_total`, help: 'Frames analysed', labelNames: ['analyzer'], registers });
    this.#fps = new Gauge({ name: `${prefix}_analysis_fps`, help: 'Frames analysed per second (last second)', labelNames: ['analyzer'], registers });
    this.#latency = new Histogram({ name: `${prefix}_analysis_inference_seconds`, help: 'Time to analyse one frame (letterbox, inference, decoding)', labelNames: ['analyzer'], buckets: LATENCY_BUCKETS, registers });
    this.#framesDropped = new Counter({ name: `${prefix}_analysis_frames_dropped_total`, help: 'Frames replaced by newer ones while the model was busy', labelNames: ['analyzer'], registers });
    this.#eventsDropped = new Counter({ name: `${prefix}_analysis_events_dropped_total`, help: 'Detection events held back by the rate limit', labelNames: ['analyzer'], registers });
    this.#restarts = new Counter({ name: `${prefix}_analysis_restarts_total`, help: 'Analyzer process restarts, by reason', labelNames: ['analyzer', 'reason'], registers });
  }

  /** Counts what one supervisor's observer reports; returns the function that stops counting. */
  observe(observer: EventEmitter<AnalyzerObserverEvents>): () => void {
    const analyzed = ({ analyzer, latencyMs, classes }: AnalyzerObserverEvents['analyzed'][0]) => {
      this.#frames.inc({ analyzer });
      this.#latency.observe({ analyzer }, latencyMs / 1000);
      for (const [cls, count] of Object.entries(classes)) this.#detections.inc({ analyzer, class: cls }, count);
    };
    const fps = ({ analyzer, fps: value }: AnalyzerObserverEvents['fps'][0]) => this.#fps.set({ analyzer }, value);
    const framesDropped = ({ analyzer, frames }: AnalyzerObserverEvents['framesDropped'][0]) => this.#framesDropped.inc({ analyzer }, frames);
    const eventsDropped = ({ analyzer, events }: AnalyzerObserverEvents['eventsDropped'][0]) => this.#eventsDropped.inc({ analyzer }, events);
    const restart = ({ analyzer, reason }: AnalyzerObserverEvents['restart'][0]) => this.#restarts.inc({ analyzer, reason });
    observer.on('analyzed', analyzed);
    observer.on('fps', fps);
    observer.on('framesDropped', framesDropped);
    observer.on('eventsDropped', eventsDropped);
    observer.on('restart', restart);
    return () => {
      observer.off('analyzed', analyzed);
      observer.off('fps', fps);
      observer.off('framesDropped', framesDropped);
      observer.off('eventsDropped', eventsDropped);
      observer.off('restart', restart);
    };
  }
}
