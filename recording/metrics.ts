import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { SegmentQueue } from './SegmentQueue.js';

/**
 * Prometheus metrics of recording, in the module's registry and with its prefix (`Metrics.registry`,
 * `Metrics.prefix`). Counters follow the queue's observer; gauges are read from `stats()` at scrape time, so a
 * new queue (a changed `record` setting) is followed with {@link observe} and nothing is counted twice.
 *
 * @example
 * const recordingMetrics = new RecordingMetrics(metrics.registry, metrics.prefix);
 * recordingMetrics.observe(recordings.queue);
 */
export class RecordingMetrics {
  /** The queue the gauges read. */
  #queue: SegmentQueue | null = null;
  #detach: (() => void) | null = null;
  readonly #written: Counter;
  readonly #uploaded: Counter<'target'>;
  readonly #uploadedBytes: Counter<'target'>;
  readonly #failed: Counter;
  readonly #dropped: Counter<'reason'>;
  readonly #uploadErrors: Counter<'target'>;
  readonly #delay: Histogram;

  constructor(registry: Registry, prefix: string) {
    const p = `${prefix}_recording`;
    const registers = [registry];
    this.#written = new Counter({ name: `${p}_segments_written_total`, help: 'Segments finished and queued (recorder, watched folders, recovered after a crash)', registers });
    this.#uploaded = new Counter({ name: `${p}_segments_uploaded_total`, help: 'Segments uploaded and verified, per target', labelNames: ['target'], registers });
    this.#uploadedBytes = new Counter({ name: `${p}_uploaded_bytes_total`, help: 'Bytes sent to each target (resumed parts are not sent twice)', labelNames: ['target'], registers });
    this.#failed = new Counter({ name: `${p}_segments_failed_total`, help: 'Segments that can never be uploaded (their file vanished or changed)', registers });
    this.#dropped = new Counter({ name: `${p}_segments_dropped_total`, help: 'Segments deleted before upload to keep the local disk budget', labelNames: ['reason'], registers });
    this.#uploadErrors = new Counter({ name: `${p}_upload_errors_total`, help: 'Failed upload tries (retried with backoff)', labelNames: ['target'], registers });
    this.#delay = new Histogram({
      name: `${p}_upload_delay_seconds`,
      help: 'From the end of a segment to its verified upload',
      buckets: [1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 21600, 86400],
      registers,
    });
    const stat = <K extends 'segmentsQueued' | 'bytesPending' | 'bytesLocal' | 'oldestPendingAgeS' | 'uploadBytesPerSecond'>(key: K) => () => {
      const value = this.#queue?.stats()[key];
      return typeof value === 'number' ? value : 0;
    };
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge(`${p}_segments_queued`, 'Segments waiting for upload to at least one target', stat('segmentsQueued'));
    gauge(`${p}_bytes_pending`, 'Bytes of segments waiting for upload', stat('bytesPending'));
    gauge(`${p}_bytes_local`, 'Bytes of segment files on local disk', stat('bytesLocal'));
    gauge(`${p}_oldest_pending_age_seconds`, 'Age of the oldest segment not yet uploaded (0 when none waits)', stat('oldestPendingAgeS'));
    gauge(`${p}_upload_bytes_per_second`, 'Upload throughput over the last uploads', stat('uploadBytesPerSecond'));
    gauge(`${p}_disk_alarm`, '1 while the local disk budget alarm is raised', () => (this.#queue?.stats().alarm ? 1 : 0));
    for (const reason of ['disk-budget', 'max-age']) this.#dropped.inc({ reason }, 0);
  }

  /** Follows a queue (the previous one is let go); null: none (recording off), the gauges read 0. */
  observe(queue: SegmentQueue | null): void {
    this.#detach?.();
    this.#detach = null;
    this.#queue = queue;
    if (queue === null) return;
    const o = queue.observer;
    const queued = () => this.#written.inc();
    const uploaded = (e: { target: string; delayMs: number }) => {
      this.#uploaded.inc({ target: e.target });
      this.#delay.observe(e.delayMs / 1000);
    };
    const done = (e: { target: string; bytesSent: number }) => this.#uploadedBytes.inc({ target: e.target }, e.bytesSent);
    const failed = () => this.#failed.inc();
    const dropped = (e: { reason: string }) => this.#dropped.inc({ reason: e.reason });
    const retry = (e: { target: string }) => this.#uploadErrors.inc({ target: e.target });
    o.on('queued', queued);
    o.on('uploaded', uploaded);
    o.on('upload-done', done);
    o.on('failed', failed);
    o.on('dropped', dropped);
    o.on('upload-retry', retry);
    this.#detach = () => {
      o.off('queued', queued);
      o.off('uploaded', uploaded);
      o.off('upload-done', done);
      o.off('failed', failed);
      o.off('dropped', dropped);
      o.off('upload-retry', retry);
    };
  }
}
