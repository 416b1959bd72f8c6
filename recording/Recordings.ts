import { join } from 'node:path';
import type { RecordEvent, RecorderSpec, RecorderStateName } from '../ipc/protocol.js';
import { FolderWatcher } from './FolderWatcher.js';
import { SegmentQueue, type RecordingStatus } from './SegmentQueue.js';
import type { RecordSettings, UploadSettings, TargetSettings } from './settings.js';
import type { UploadTarget } from './target.js';
import { createTarget } from './targets.js';

export interface RecordingsOptions {
  /** The module's STATE_DIR: the journal goes in `<stateDir>/recording`, segments in `<stateDir>/recordings` (unless `record.local.dir`). */
  readonly stateDir: string;
  /** The module's Redactor (`(t) => redactor.redact(t)`), after `redactor.add(secrets)`. */
  readonly redact: (text: string) => string;
  readonly env?: NodeJS.ProcessEnv;
  /** Tests inject targets; default {@link createTarget}. */
  readonly createTarget?: (settings: TargetSettings, upload: UploadSettings) => Promise<UploadTarget>;
  readonly scanIntervalMs?: number;
}

/** Status for reported properties and /api/status. */
export interface RecordingsStatus extends RecordingStatus {
  readonly recorders: Readonly<Record<string, { readonly state: RecorderStateName; readonly error: string | null }>>;
  readonly folders: readonly string[];
}

/**
 * The control plane's side of recording for one `record` setting: the durable {@link SegmentQueue} with its
 * targets, the watched folders, and the bridge to the engine's recorders (specs to send, events to take in).
 * A changed `record` setting is a new instance: close the old one first (the journal carries over).
 *
 * @example
 * const { settings, secrets } = parseRecordSettings(desired.record, process.env);
 * redactor.add(secrets);
 * const recordings = settings && (await Recordings.open(settings, { stateDir, redact: (t) => redactor.redact(t) }));
 * recordings?.observer.on('uploaded', (event) => iotHub.sendEvent('recordings', event));
 * await recordings?.start();
 * engine.send({ type: 'record-configure', recorders: recordings?.recorderSpecs() ?? [] });
 * // engine events: if (event.type.startsWith('record-')) recordings?.handleEngineEvent(event);
 */
export class Recordings {
  readonly queue: SegmentQueue;
  readonly settings: RecordSettings;
  readonly recordingsDir: string;
  readonly #watchers: FolderWatcher[];
  readonly #recorders = new Map<string, { state: RecorderStateName; error: string | null }>();
  readonly #redact: (text: string) => string;
  #closed = false;

  private constructor(settings: RecordSettings, queue: SegmentQueue, recordingsDir: string, watchers: FolderWatcher[], redact: (text: string) => string) {
    this.settings = settings;
    this.queue = queue;
    this.recordingsDir = recordingsDir;
    this.#watchers = watchers;
    this.#redact = redact;
  }

  static async open(settings: RecordSettings, options: RecordingsOptions): Promise<Recordings> {
    const recordingsDir = settings.local.dir ?? join(options.stateDir, 'recordings');
    const make = options.createTarget ?? createTarget;
    const targets = await Promise.all(settings.targets.map((t) => make(t, settings.upload)));
    const queue = await SegmentQueue.open({
      stateDir: join(options.stateDir, 'recording'),
      recordingsDir,
      camera: settings.camera,
      objectName: settings.objectName,
      local: settings.local,
      upload: settings.upload,
      targets,
      redact: options.redact,
      ...(options.env ? { env: options.env } : {}),
      ...(options.scanIntervalMs ? { scanIntervalMs: options.scanIntervalMs } : {}),
      // A live recorder touches its file every fragment; three fragments of silence (or 10 s) is a dead one.
      orphanSettleMs: Math.max(10_000, 3 * settings.fragmentMs),
    });
    const watchers = settings.folders.map(
      (folder) => new FolderWatcher(folder, recordingsDir, queue, (message) => queue.observer.emit('log', { level: 'warn', msg: options.redact(message) })),
    );
    return new Recordings(settings, queue, recordingsDir, watchers, options.redact);
  }

  /** Starts uploading, scanning and watching folders. Attach observers before, or the first events are missed. */
  async start(): Promise<void> {
    if (this.#closed) return;
    await this.queue.start();
    for (const watcher of this.#watchers) watcher.start();
  }

  get observer(): SegmentQueue['observer'] {
    return this.queue.observer;
  }

  /** What to send the engine: `{ type: 'record-configure', recorders: recordings.recorderSpecs() }`. */
  recorderSpecs(): RecorderSpec[] {
    return this.settings.streams.map((s) => ({
      name: s.stream,
      stream: s.stream,
      audio: s.audio,
      dir: this.recordingsDir,
      segmentMs: this.settings.segmentMs,
      fragmentMs: this.settings.fragmentMs,
    }));
  }

  /** Takes in an engine event of the recording kind. */
  handleEngineEvent(event: RecordEvent): void {
    if (this.#closed) return;
    switch (event.type) {
      case 'record-segment-opened':
        this.queue.segmentOpened(event.path);
        return;
      case 'record-segment':
        // A failure here loses nothing: the file is in the recordings folder and the next scan queues it.
        this.queue
          .add({ path: event.segment.path, stream: event.segment.stream, startMs: event.segment.startMs, durationMs: event.segment.durationMs, source: 'recorder' })
          .catch((error: unknown) => this.queue.observer.emit('log', { level: 'warn', msg: this.#redact(`segment ${event.segment.path} not queued yet: ${String(error)}`) }));
        return;
      case 'record-state':
        this.#recorders.set(event.recorder, { state: event.state, error: event.error === null ? null : this.#redact(event.error) });
        return;
    }
  }

  /** The engine died or was restarted: files it had open are crash remnants, queued by the next scan. */
  engineStopped(): void {
    this.queue.writerStopped();
    for (const [name, r] of this.#recorders) this.#recorders.set(name, { ...r, state: 'stopped' });
  }

  /** The pipelines writing into watched folders stopped: their newest files are closed too. */
  flushFolders(): Promise<void> {
    return Promise.all(this.#watchers.map((w) => w.flush())).then(() => undefined);
  }

  status(): RecordingsStatus {
    return { ...this.queue.status(), recorders: Object.fromEntries(this.#recorders), folders: this.settings.folders.map((f) => f.path) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const watcher of this.#watchers) watcher.close();
    await this.queue.close();
  }
}
