import type { Logger } from 'pino';
import { BehaviorSubject, Subject } from 'rxjs';
import { errorMessage } from '../config/errors.js';
import type { EngineCommand, RecordEvent, RecorderSpec } from '../ipc/protocol.js';
import { Recordings, type RecordingsStatus } from '../recording/Recordings.js';
import type { SegmentEntry, SegmentQueue } from '../recording/SegmentQueue.js';
import type { SegmentUploadedEvent } from '../recording/events.js';
import type { RecordSettings, TargetSettings, UploadSettings } from '../recording/settings.js';
import type { UploadTarget } from '../recording/target.js';
import { createTarget } from '../recording/targets.js';
import { prepareStateDir } from './stateDir.js';

/** The engine events this part takes in. */
export const RECORD_EVENT_TYPES: ReadonlySet<string> = new Set<RecordEvent['type']>(['record-segment-opened', 'record-segment', 'record-state']);

/** How long a graceful stop of the engine's recorders may take (splitmuxsink finalising the open segment). */
export const RECORDERS_STOP_TIMEOUT_MS = 6_000;

export interface ModuleRecordingsOptions {
  readonly logger: Logger;
  /** The control plane's redactor. */
  readonly redact: (text: string) => string;
  /** Sends a command to the engine; false when none is up (every new engine gets the recorders again). */
  readonly send: (command: EngineCommand) => boolean;
  /** Recording's journal and (by default) segments: STATE_DIR, or the file mode's own state folder. */
  readonly stateDir: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Tests inject targets; default {@link createTarget}. */
  readonly createTarget?: (settings: TargetSettings, upload: UploadSettings) => Promise<UploadTarget>;
  readonly scanIntervalMs?: number;
}

/** Entries of the recordings the web server may read: the queue's own list, nothing of its insides. */
export interface RecordingsPort {
  /** Every segment the queue knows (local and uploaded), or null when recording is off. */
  entries(): ReadonlyArray<Readonly<SegmentEntry>> | null;
}

/**
 * The module's recording across config changes and engine restarts: the {@link Recordings} of the applied `record`
 * setting (the durable queue, its targets, the watched folders), opened and closed as the setting changes, and its
 * bridge to the engine's recorders: `record-configure` on apply and to every new engine, `record-*` events in,
 * `engineStopped()` when the engine goes down. It lives in the control plane, so a crashing engine costs at most
 * the fragment being written, never the queue. Monitoring goes out as `uploaded$` (IoT Hub output messages),
 * `queue$` (metrics follow each new queue), `changed$` (the status document) and log lines (alarms included).
 *
 * @example
 * const recordings = new ModuleRecordings({ logger, redact, send: (c) => engine.send(c), stateDir });
 * await recordings.check(next.recording); // in validate: bad credentials, a state folder that is not ours
 * await recordings.apply(next.recording); // in apply
 * // engine: ready -> recordings.engineReady(); record-* -> recordings.engineEvent(e); down -> recordings.engineStopped()
 */
export class ModuleRecordings {
  /** One message per segment verified on one target (the IoT Hub output RECORDINGS_OUTPUT). */
  readonly uploaded$ = new Subject<SegmentUploadedEvent>();
  /** Something the status document shows changed. */
  readonly changed$ = new Subject<void>();
  /** The open queue (null: recording off), for metrics. */
  readonly queue$ = new BehaviorSubject<SegmentQueue | null>(null);
  /** For the web server: the queue's entries. */
  readonly port: RecordingsPort;
  readonly #options: ModuleRecordingsOptions;
  readonly #log: Logger;
  /** The Recordings of the applied setting, or null. */
  #recordings: Recordings | null = null;
  /** The applied setting as JSON (expanded values included: in memory only), to tell a change from a re-apply. */
  #key: string | null = null;
  /** Engine events that arrived while one Recordings was being replaced by the next: given to the next. */
  #held: RecordEvent[] | null = null;
  /** Applies run one after the other. */
  #queue: Promise<void> = Promise.resolve();
  /** Waiters for every recorder to have stopped (a graceful stop of the recorders): each says whether it is done. */
  readonly #stopWaiters = new Set<() => boolean>();
  #closed = false;

  constructor(options: ModuleRecordingsOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'recording' });
    this.port = { entries: () => this.#recordings?.queue.entries() ?? null };
  }

  /** The recorders the engine should run now (none when recording is off). */
  specs(): RecorderSpec[] {
    return this.#recordings?.recorderSpecs() ?? [];
  }

  /**
   * What validation can find out beyond the settings' own checks, without changing anything: the state folder is
   * usable (created 0700, ours), and each target's client can be made from its credentials. Settings that are
   * already applied are not checked again.
   */
  async check(settings: RecordSettings | null): Promise<void> {
    if (settings === null || JSON.stringify(settings) === this.#key) return;
    try {
      await prepareStateDir(this.#options.stateDir);
    } catch (error) {
      throw new Error(`record: ${errorMessage(error)}`);
    }
    const make = this.#options.createTarget ?? createTarget;
    for (const [i, target] of settings.targets.entries()) {
      try {
        (await make(target, settings.upload)).close();
      } catch (error) {
        throw new Error(`record.targets[${i}] (${target.name}): ${this.#options.redact(errorMessage(error))}`);
      }
    }
  }

  /**
   * Makes `settings` the running recording: unchanged settings are left alone; changed ones close the old queue
   * (uploads in flight are aborted and resumed by the new one: the journal carries over) and open the new one,
   * and the engine gets the new recorders (a recorder whose spec did not change keeps its segment). Off: the
   * engine's recorders stop gracefully first, so their last segments are queued.
   */
  apply(settings: RecordSettings | null): Promise<void> {
    const run = this.#queue.then(() => this.#apply(settings));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply(settings: RecordSettings | null): Promise<void> {
    if (this.#closed) return;
    const key = settings === null ? null : JSON.stringify(settings);
    if (key === this.#key) return;
    const old = this.#recordings;
    if (old && settings === null) await this.stopRecorders();
    this.#recordings = null;
    this.#key = null;
    this.#held = [];
    try {
      if (old) {
        this.queue$.next(null);
        await old.close();
        this.#log.info({ event: 'recording-closed' }, 'recording settings changed: the previous queue is closed (its journal carries over)');
      }
      if (settings === null) {
        this.#options.send({ type: 'record-configure', recorders: [] });
        return;
      }
      const recordings = await Recordings.open(settings, {
        stateDir: this.#options.stateDir,
        redact: this.#options.redact,
        ...(this.#options.env ? { env: this.#options.env } : {}),
        ...(this.#options.createTarget ? { createTarget: this.#options.createTarget } : {}),
        ...(this.#options.scanIntervalMs ? { scanIntervalMs: this.#options.scanIntervalMs } : {}),
      });
      this.#observe(recordings);
      this.queue$.next(recordings.queue);
      await recordings.start();
      this.#recordings = recordings;
      this.#key = key;
      const held = this.#held;
      this.#held = null;
      for (const event of held) this.#take(recordings, event);
      this.#options.send({ type: 'record-configure', recorders: recordings.recorderSpecs() });
      const streams = settings.streams.map((s) => s.stream);
      const folders = settings.folders.map((f) => f.path);
      this.#log.info(
        { event: 'recording-started', streams, folders, targets: settings.targets.map((t) => t.name), dir: recordings.recordingsDir },
        `recording ${[...streams.map((s) => `stream ${s}`), ...folders.map((f) => `folder ${f}`)].join(', ')} into ${recordings.recordingsDir}` +
          (settings.targets.length > 0 ? `, uploading to ${settings.targets.map((t) => t.name).join(', ')}` : ' (no upload target: kept locally within the disk budget)'),
      );
    } finally {
      this.#held = null;
      this.changed$.next();
    }
  }

  /** A new engine is up: it runs the recorders of the applied setting (as the `rtsp` and `analysis` commands). */
  engineReady(): void {
    const specs = this.specs();
    if (specs.length > 0) this.#options.send({ type: 'record-configure', recorders: specs });
  }

  /** A `record-*` event from the engine. */
  engineEvent(event: RecordEvent): void {
    if (this.#held) {
      this.#held.push(event);
      return;
    }
    if (this.#recordings) this.#take(this.#recordings, event);
  }

  /** The engine went down (died, hung, stopped): the files it had open are crash remnants, salvaged by the next scan. */
  engineStopped(): void {
    this.#recordings?.engineStopped();
    this.#wakeStopWaiters();
    this.changed$.next();
  }

  /** The pipelines writing into watched folders stopped: their newest files are queued too. */
  async flushFolders(): Promise<void> {
    await this.#recordings?.flushFolders().catch((error: unknown) => this.#log.warn(`watched folders not flushed: ${this.#options.redact(errorMessage(error))}`));
  }

  /**
   * Stops the engine's recorders gracefully (EOS: the open segment is finalised and queued) and resolves once
   * every recorder says it stopped, the engine is gone, or `timeoutMs` passed.
   */
  async stopRecorders(timeoutMs = RECORDERS_STOP_TIMEOUT_MS): Promise<void> {
    if (!this.#recordings || this.specs().length === 0) return;
    if (!this.#options.send({ type: 'record-configure', recorders: [] })) return;
    if (this.#allStopped()) return;
    await new Promise<void>((resolve) => {
      const waiter = () => {
        if (!this.#allStopped()) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      const timer = setTimeout(() => {
        this.#stopWaiters.delete(waiter);
        resolve();
      }, timeoutMs);
      this.#stopWaiters.add(waiter);
    });
  }

  status(): RecordingsStatus | null {
    return this.#recordings?.status() ?? null;
  }

  /** Closes the queue (after the applies under way); idempotent. Stop the recorders first to queue their last segments. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    this.#closed = true;
    const recordings = this.#recordings;
    this.#recordings = null;
    this.queue$.next(null);
    await recordings?.close();
  }

  #take(recordings: Recordings, event: RecordEvent): void {
    recordings.handleEngineEvent(event);
    if (event.type === 'record-state') {
      const error = event.error === null ? '' : `: ${this.#options.redact(event.error)}`;
      const level = event.state === 'failed' ? 'error' : 'info';
      this.#log[level]({ event: 'recorder-state', recorder: event.recorder, state: event.state }, `recorder ${event.recorder} ${event.state}${error}`);
      this.#wakeStopWaiters();
      this.changed$.next();
    } else if (event.type === 'record-segment') {
      const s = event.segment;
      this.#log.debug({ event: 'recorder-segment', recorder: s.recorder, file: s.path.split('/').pop(), durationMs: s.durationMs, size: s.size }, `recorder ${s.recorder} finished a segment`);
    }
  }

  #allStopped(): boolean {
    const recorders = Object.values(this.#recordings?.status().recorders ?? {});
    return recorders.every((r) => r.state === 'stopped' || r.state === 'failed');
  }

  #wakeStopWaiters(): void {
    for (const waiter of [...this.#stopWaiters]) if (waiter()) this.#stopWaiters.delete(waiter);
  }

  /** Logs, status changes and upload messages from one queue's observer (attached before it starts). */
  #observe(recordings: Recordings): void {
    const o = recordings.observer;
    const log = this.#log;
    const text = this.#options.redact;
    const changed = () => this.changed$.next();
    o.on('queued', (s) => {
      log.info({ event: 'recording-queued', id: s.id, stream: s.stream, file: s.file, start: s.start, durationMs: s.durationMs, size: s.size, source: s.source }, `segment ${s.file} queued`);
      changed();
    });
    o.on('uploaded', (e) => {
      log.info({ event: 'recording-uploaded', stream: e.stream, target: e.target, url: text(e.url), size: e.size, delayMs: e.delayMs }, `segment ${e.objectName} uploaded to ${e.target}`);
      this.uploaded$.next(e);
      changed();
    });
    o.on('upload-started', changed);
    o.on('upload-retry', (e) => {
      log.warn({ event: 'recording-upload-retry', target: e.target, attempt: e.attempt, delayMs: e.delayMs }, `upload to ${e.target} failed (try ${e.attempt}), retrying in ${e.delayMs} ms: ${text(e.error)}`);
      changed();
    });
    o.on('failed', (e) => {
      log.error({ event: 'recording-failed', id: e.segment.id, target: e.target }, `segment ${e.segment.file} can never be uploaded: ${text(e.error)}`);
      changed();
    });
    o.on('dropped', (e) => {
      log.error({ event: 'recording-dropped', id: e.segment.id, reason: e.reason }, `segment ${e.segment.file} deleted before upload (${e.reason})`);
      changed();
    });
    o.on('local-deleted', changed);
    o.on('alarm', (alarm) => {
      log[alarm.level === 'dropping' ? 'error' : 'warn'](
        { event: 'recording-alarm', level: alarm.level, bytesPending: alarm.bytesPending, bytesLocal: alarm.bytesLocal, maxBytes: alarm.maxBytes },
        `recording disk alarm (${alarm.level}): ${alarm.message}`,
      );
      changed();
    });
    o.on('alarm-cleared', () => {
      log.info({ event: 'recording-alarm-cleared' }, 'recording disk alarm cleared');
      changed();
    });
    o.on('log', ({ level, msg }) => log[level]({ event: 'recording-log' }, text(msg)));
  }
}
