import { EventEmitter } from 'node:events';
import { mkdir, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { createActor, fromPromise } from 'xstate';
import { appendLineDurable, isAtomicTemp, writeFileAtomic } from '../actors/stateDir.js';
import { planBudget, type DiskAlarm } from './budget.js';
import { ClosedError, SegmentFileError, VerificationError } from './errors.js';
import type { RecordingObserverEvents, SegmentInfo, SegmentUploadedEvent } from './events.js';
import { readMp4Layout, trimToCompleteBoxes } from './mp4.js';
import { parseSegmentFileName, PARTIAL_SUFFIX } from './naming.js';
import { isOpenByAnyProcess } from './openFiles.js';
import type { LocalSettings, UploadSettings } from './settings.js';
import { describeError, stripQueries, type ResumeState, type UploadTarget } from './target.js';
import { renderObjectName, type ObjectNameTemplate } from './template.js';
import { uploaderMachine, type UploaderActor, type UploaderStateName, type UploadStepOutput } from './uploaderMachine.js';

/** A finished file to queue: from the engine's recorder, a watched folder, or found on disk after a crash. */
export interface ClosedSegment {
  readonly path: string;
  readonly stream: string;
  /** UTC start, ms since 1970. */
  readonly startMs: number;
  readonly durationMs: number;
  readonly source?: 'recorder' | 'folder' | 'recovered';
  /** Watched folders: the file it was taken from (path, size, mtime), so it is not taken twice. */
  readonly origin?: string;
  /** Watched folders have their own object name template. */
  readonly objectName?: ObjectNameTemplate;
  /** `{name}` in the template when not the file's own (a watched folder's file as its writer named it). */
  readonly name?: string;
}

/** Where one segment stands with one target. */
export interface TargetProgress {
  state: 'pending' | 'done' | 'failed';
  /** What the target persisted to resume (block size, UploadId and ETags). */
  resume: ResumeState | null;
  url: string | null;
  uploadedAt: number | null;
}

/** One segment in the journal. */
export interface SegmentEntry {
  readonly id: string;
  /** Queue order: uploads go oldest first, so segments arrive in order. */
  readonly seq: number;
  readonly path: string;
  readonly stream: string;
  readonly source: 'recorder' | 'folder' | 'recovered';
  readonly startMs: number;
  readonly durationMs: number;
  readonly size: number;
  /** MD5 of the file, base64, once an upload has read it (null before). */
  md5: string | null;
  readonly objectName: string;
  readonly addedAt: number;
  readonly origin: string | null;
  /** pending: some target still to go; uploaded: on every target (or there is none); failed/dropped: never will be. */
  state: 'pending' | 'uploaded' | 'failed' | 'dropped';
  local: 'present' | 'deleted';
  targets: Record<string, TargetProgress>;
  uploadedAt: number | null;
  /** Why it failed or was dropped. */
  reason: string | null;
}

/** Counters and gauges for metrics and status. Counters count since the queue was opened. */
export interface RecordingStats {
  readonly segmentsWritten: number;
  readonly segmentsUploaded: number;
  readonly segmentsFailed: number;
  readonly segmentsDropped: number;
  readonly uploadErrors: number;
  readonly bytesUploaded: number;
  /** Segments waiting for at least one target now. */
  readonly segmentsQueued: number;
  readonly bytesPending: number;
  readonly bytesLocal: number;
  readonly maxBytes: number;
  /** Age of the oldest segment not yet uploaded (from its start), seconds; null when none waits. */
  readonly oldestPendingAgeS: number | null;
  /** Bytes per second while uploading, over the last uploads; null before the first. */
  readonly uploadBytesPerSecond: number | null;
  readonly alarm: DiskAlarm | null;
  readonly targets: Readonly<Record<string, TargetStatus>>;
}

export interface TargetStatus {
  readonly type: 'azure-blob' | 's3';
  readonly state: UploaderStateName;
  /** Consecutive failed tries. */
  readonly attempt: number;
  readonly lastError: string | null;
  readonly uploaded: number;
  readonly bytesUploaded: number;
  /** Segment being uploaded now. */
  readonly current: string | null;
}

/** The queue as reported properties and /api/status show it. */
export interface RecordingStatus {
  readonly queued: number;
  readonly bytesPending: number;
  readonly bytesLocal: number;
  readonly maxBytes: number;
  readonly oldestPendingAgeS: number | null;
  readonly uploadBytesPerSecond: number | null;
  readonly written: number;
  readonly uploaded: number;
  readonly failed: number;
  readonly dropped: number;
  readonly alarm: { readonly level: DiskAlarm['level']; readonly message: string } | null;
  readonly targets: Readonly<Record<string, TargetStatus>>;
}

export interface SegmentQueueOptions {
  /** The queue's own folder (journal, history): `<STATE_DIR>/recording`. */
  readonly stateDir: string;
  /** Where the engine's recorder writes (scanned for segments the queue was never told about). */
  readonly recordingsDir: string;
  readonly camera: string;
  readonly objectName: ObjectNameTemplate;
  readonly local: LocalSettings;
  readonly upload: UploadSettings;
  readonly targets: readonly UploadTarget[];
  /** Makes text safe to show (the module's Redactor); URL query strings are stripped in any case. */
  readonly redact?: (text: string) => string;
  /** IOTEDGE_DEVICEID / IOTEDGE_MODULEID for the template. */
  readonly env?: NodeJS.ProcessEnv;
  /** How often the recordings folder is scanned and the age limit applied (default 5 s). */
  readonly scanIntervalMs?: number;
  /** A `.part` file unchanged this long, that no live recorder has open, is a crash remnant (default 10 s). */
  readonly orphanSettleMs?: number;
}

/** Uploads measured for the throughput figure. */
const THROUGHPUT_WINDOW = 20;
const JOURNAL_NAME = /^(\d{12})\.json$/;

/** `entry` as events show it. */
function info(entry: SegmentEntry, camera: string): SegmentInfo {
  return {
    id: entry.id,
    camera,
    stream: entry.stream,
    start: new Date(entry.startMs).toISOString(),
    durationMs: entry.durationMs,
    size: entry.size,
    file: basename(entry.path),
    objectName: entry.objectName,
  };
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * The durable queue of finished segments: a journal on disk (one file per segment, written atomically; a day file
 * of finished ones), one upload loop per target ({@link uploaderMachine}: oldest first, resumable, retried with
 * backoff, verified before the local file goes), the local disk budget ({@link planBudget}), and a scan of the
 * recordings folder that queues whatever a crash left there (a segment whose IPC message was lost, the `.part`
 * file of a killed engine, trimmed to its last complete fragment). Survives SIGKILL at any point: what was
 * acknowledged by `add` is on disk, and an upload resumes from the last block or part the journal holds.
 *
 * @example
 * const queue = await SegmentQueue.open({ stateDir, recordingsDir, camera, objectName, local, upload, targets });
 * queue.observer.on('uploaded', (event) => hub.sendOutputEvent('recordings', event));
 * await queue.start();
 * await queue.add({ path, stream: 'video', startMs, durationMs });
 */
export class SegmentQueue {
  /** Monitoring events: metrics, IoT Hub output, status, logs. */
  readonly observer = new EventEmitter<RecordingObserverEvents>();
  readonly #options: SegmentQueueOptions;
  readonly #queueDir: string;
  readonly #historyDir: string;
  /** Segments in the journal's queue folder, by id. */
  readonly #active = new Map<string, SegmentEntry>();
  /** Finished segments (uploaded and deleted locally, dropped, failed), for /api/recordings. */
  #history: SegmentEntry[] = [];
  /** Paths known to the queue (active or history), so a file is never queued twice. */
  readonly #paths = new Set<string>();
  readonly #origins = new Set<string>();
  /** Paths of finished segments whose file is gone by the journal (one still on disk is a leftover to delete). */
  readonly #retiredPaths = new Set<string>();
  /** Files a live recorder has open (from the engine's `record-segment-opened`). */
  readonly #writing = new Set<string>();
  /** Journal writes per entry, one after another (a later state must never be overwritten by an earlier one). */
  readonly #writes = new Map<string, Promise<void>>();
  readonly #uploaders = new Map<string, { target: UploadTarget; actor: UploaderActor; uploaded: number; bytes: number; current: string | null }>();
  /** Steps in flight, so close() waits for their last journal write. */
  readonly #steps = new Set<Promise<unknown>>();
  /** One add, scan or budget pass at a time. */
  #serial: Promise<unknown> = Promise.resolve();
  #nextSeq = 1;
  #alarm: DiskAlarm | null = null;
  #closed = false;
  #started = false;
  #timer: NodeJS.Timeout | null = null;
  readonly #throughput: Array<{ bytes: number; ms: number }> = [];
  readonly #counters = { segmentsWritten: 0, segmentsUploaded: 0, segmentsFailed: 0, segmentsDropped: 0, uploadErrors: 0, bytesUploaded: 0 };

  private constructor(options: SegmentQueueOptions) {
    this.#options = options;
    this.#queueDir = join(options.stateDir, 'queue');
    this.#historyDir = join(options.stateDir, 'history');
  }

  /**
   * Loads the journal and finishes what a crash interrupted (deletions, drops). Nothing is uploaded or scanned
   * before {@link start}: attach observers in between so that no event is missed.
   */
  static async open(options: SegmentQueueOptions): Promise<SegmentQueue> {
    const queue = new SegmentQueue(options);
    await queue.#load();
    await queue.#settle();
    return queue;
  }

  /** Starts the uploaders and the periodic scan; resolves after the first scan (crash remnants queued). Idempotent. */
  async start(): Promise<void> {
    if (this.#started || this.#closed) return;
    this.#started = true;
    for (const target of this.#options.targets) this.#startUploader(target);
    await this.scan();
    this.#timer = setInterval(() => {
      this.scan().catch((error: unknown) => this.#log('warn', `recordings scan failed: ${this.#text(describeError(error))}`));
    }, this.#options.scanIntervalMs ?? 5_000);
    this.#timer.unref();
  }

  /**
   * Queues a closed segment: hashes it, writes its journal entry (durable once this resolves) and wakes the
   * uploaders. Queuing a path the queue already has returns the entry it has (the engine's message and the
   * folder scan may both report one file).
   */
  add(segment: ClosedSegment): Promise<Readonly<SegmentEntry>> {
    return this.#serially(() => this.#add(segment));
  }

  /** The engine opened a segment file: it is not a crash remnant while the recorder writes it. */
  segmentOpened(path: string): void {
    this.#writing.add(path);
  }

  /** The engine went away (crash, restart): the files it had open are remnants now, queued by the next scan. */
  writerStopped(): void {
    this.#writing.clear();
  }

  /** Whether a watched folder's file (its origin key) was already taken. */
  hasOrigin(origin: string): boolean {
    return this.#origins.has(origin);
  }

  /** Stops uploading (in-flight uploads are aborted; their progress is kept and resumed). */
  pause(): void {
    for (const u of this.#uploaders.values()) u.actor.send({ type: 'PAUSE' });
  }

  resume(): void {
    for (const u of this.#uploaders.values()) u.actor.send({ type: 'RESUME' });
  }

  /** Ends every backoff wait now (e.g. the network is known to be back). */
  retryNow(): void {
    for (const u of this.#uploaders.values()) u.actor.send({ type: 'RETRY_NOW' });
  }

  /** Every segment the queue knows, oldest first: active ones and the history kept for `history_days`. */
  entries(): ReadonlyArray<Readonly<SegmentEntry>> {
    return [...this.#history, ...[...this.#active.values()].sort((a, b) => a.seq - b.seq)];
  }

  /**
   * Queues segment files in the recordings folder that the journal lacks: complete `.mp4` files at once, and
   * `.part` files (a recorder that died) once no recorder has them open and they stopped changing, cut to their
   * last complete fragment. Runs at open and every `scanIntervalMs`; the age limit is applied with it.
   */
  scan(): Promise<void> {
    return this.#serially(async () => {
      if (this.#closed) return;
      const dir = this.#options.recordingsDir;
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      const settle = this.#options.orphanSettleMs ?? 10_000;
      for (const name of names.sort()) {
        const parsed = parseSegmentFileName(name);
        if (!parsed) continue;
        const path = join(dir, name);
        const finalPath = join(dir, parsed.finalName);
        if (this.#writing.has(path)) continue;
        if (this.#paths.has(finalPath)) {
          // Uploaded and retired, but the process died before the file went: finish that.
          if (!parsed.partial && this.#retiredPaths.has(path)) await unlink(path).catch(() => undefined);
          continue;
        }
        try {
          const info = await stat(path);
          if (parsed.partial) {
            if (Date.now() - info.mtimeMs < settle) continue;
            if ((await isOpenByAnyProcess(path)) === true) continue;
            const layout = await trimToCompleteBoxes(path);
            if (!layout.playable || layout.fragments === 0) {
              await unlink(path);
              this.#log('warn', `${name}: a recorder died before its first fragment; nothing to keep`);
              continue;
            }
            await rename(path, finalPath);
            this.#log('info', `${name}: recovered ${layout.fragments} fragment(s) (${layout.size} bytes) left by a recorder that died`);
            await this.#add({ path: finalPath, stream: parsed.stream, startMs: parsed.startMs, durationMs: Math.max(0, Math.round(info.mtimeMs - parsed.startMs)), source: 'recovered' });
          } else {
            const layout = await readMp4Layout(path);
            const durationMs = layout.durationMs ?? Math.max(0, Math.round(info.mtimeMs - parsed.startMs));
            await this.#add({ path, stream: parsed.stream, startMs: parsed.startMs, durationMs, source: 'recovered' });
          }
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
          this.#log('warn', `${name}: could not be queued: ${this.#text(describeError(error))}`);
        }
      }
      await this.#budget();
      this.#pruneHistory();
    });
  }

  /** Counters and gauges now. */
  stats(): RecordingStats {
    const now = Date.now();
    let segmentsQueued = 0;
    let bytesPending = 0;
    let bytesLocal = 0;
    let oldest: number | null = null;
    for (const entry of this.#active.values()) {
      if (entry.local === 'present') bytesLocal += entry.size;
      if (entry.state !== 'pending') continue;
      segmentsQueued++;
      bytesPending += entry.size;
      oldest = oldest === null ? entry.startMs : Math.min(oldest, entry.startMs);
    }
    const measured = this.#throughput.reduce((acc, t) => ({ bytes: acc.bytes + t.bytes, ms: acc.ms + t.ms }), { bytes: 0, ms: 0 });
    const targets: Record<string, TargetStatus> = {};
    for (const [name, u] of this.#uploaders) {
      const snapshot = u.actor.getSnapshot();
      targets[name] = {
        type: u.target.type,
        state: snapshot.value as UploaderStateName,
        attempt: snapshot.context.attempt,
        lastError: snapshot.context.lastError ? this.#text(snapshot.context.lastError.message) : null,
        uploaded: u.uploaded,
        bytesUploaded: u.bytes,
        current: u.current,
      };
    }
    return {
      ...this.#counters,
      segmentsQueued,
      bytesPending,
      bytesLocal,
      maxBytes: this.#options.local.maxBytes,
      oldestPendingAgeS: oldest === null ? null : Math.max(0, Math.round((now - oldest) / 1000)),
      uploadBytesPerSecond: measured.ms > 0 ? Math.round((measured.bytes * 1000) / measured.ms) : null,
      alarm: this.#alarm,
      targets,
    };
  }

  /** For reported properties and /api/status: the stats without per-segment detail. */
  status(): RecordingStatus {
    const s = this.stats();
    return {
      queued: s.segmentsQueued,
      bytesPending: s.bytesPending,
      bytesLocal: s.bytesLocal,
      maxBytes: s.maxBytes,
      oldestPendingAgeS: s.oldestPendingAgeS,
      uploadBytesPerSecond: s.uploadBytesPerSecond,
      written: s.segmentsWritten,
      uploaded: s.segmentsUploaded,
      failed: s.segmentsFailed,
      dropped: s.segmentsDropped,
      alarm: s.alarm ? { level: s.alarm.level, message: s.alarm.message } : null,
      targets: s.targets,
    };
  }

  /** Stops the uploaders (an upload in flight is aborted; what it staged is resumed next time) and the scan. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const u of this.#uploaders.values()) u.actor.stop();
    await Promise.allSettled([...this.#steps]);
    await this.#serial.catch(() => undefined);
    await Promise.allSettled([...this.#writes.values()]);
    for (const u of this.#uploaders.values()) u.target.close();
  }

  // --- journal ---

  async #load(): Promise<void> {
    await mkdir(this.#queueDir, { recursive: true });
    await mkdir(this.#historyDir, { recursive: true });
    const cutoff = Date.now() - this.#options.upload.historyMaxAgeMs;
    const history = new Map<string, SegmentEntry>();
    for (const name of (await readdir(this.#historyDir)).sort()) {
      if (!/^\d{4}-\d{2}-\d{2}\.jsonl$/.test(name)) continue;
      if (name.slice(0, 10) < day(cutoff)) {
        await unlink(join(this.#historyDir, name)).catch(() => undefined);
        continue;
      }
      for (const line of (await readFile(join(this.#historyDir, name), 'utf8')).split('\n')) {
        if (!line) continue;
        try {
          const entry = JSON.parse(line) as SegmentEntry;
          history.set(entry.id, entry);
        } catch {
          // A line cut by a crash mid-append: the entry file is still in the queue folder.
        }
      }
    }
    for (const name of await readdir(this.#queueDir)) {
      const path = join(this.#queueDir, name);
      if (isAtomicTemp(name)) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      const match = JOURNAL_NAME.exec(name);
      if (!match) continue;
      let entry: SegmentEntry;
      try {
        entry = JSON.parse(await readFile(path, 'utf8')) as SegmentEntry;
      } catch (error) {
        this.#log('error', `journal file ${name} is unreadable (${describeError(error)}); moved aside`);
        await rename(path, `${path}.bad`).catch(() => undefined);
        continue;
      }
      this.#nextSeq = Math.max(this.#nextSeq, entry.seq + 1);
      if (history.has(entry.id)) {
        // Retired (history appended) but the process died before the entry file was removed.
        await unlink(path).catch(() => undefined);
        continue;
      }
      this.#active.set(entry.id, entry);
    }
    for (const entry of history.values()) this.#nextSeq = Math.max(this.#nextSeq, entry.seq + 1);
    this.#history = [...history.values()].sort((a, b) => a.seq - b.seq);
    for (const entry of this.#history) if (entry.local === 'deleted') this.#retiredPaths.add(entry.path);
    for (const entry of [...this.#history, ...this.#active.values()]) {
      this.#paths.add(entry.path);
      if (entry.origin) this.#origins.add(entry.origin);
    }
    const names = this.#options.targets.map((t) => t.name);
    for (const entry of this.#active.values()) {
      if (entry.state !== 'pending') continue;
      // A target added since: pending segments go there too. A target removed: its progress is kept, not waited for.
      for (const name of names) entry.targets[name] ??= { state: 'pending', resume: null, url: null, uploadedAt: null };
      if (this.#complete(entry)) this.#markUploaded(entry);
    }
  }

  /** Finishes what a crash interrupted: deletions after upload, drops, retirements. */
  async #settle(): Promise<void> {
    for (const entry of [...this.#active.values()]) {
      if (entry.local === 'deleted') await this.#retire(entry);
      else if (entry.state === 'dropped') {
        entry.local = 'deleted';
        await unlink(entry.path).catch(() => undefined);
        await this.#persist(entry);
        await this.#retire(entry);
      } else if (entry.state === 'uploaded' && !this.#options.local.keepUploaded && this.#options.targets.length > 0) {
        await this.#deleteLocal(entry, 'uploaded');
      }
    }
  }

  #entryPath(entry: SegmentEntry): string {
    return join(this.#queueDir, `${String(entry.seq).padStart(12, '0')}.json`);
  }

  /** Writes an entry's current state (after any write of it already under way). */
  #persist(entry: SegmentEntry): Promise<void> {
    const previous = this.#writes.get(entry.id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => writeFileAtomic(this.#entryPath(entry), JSON.stringify(entry)));
    this.#writes.set(entry.id, next);
    void next.finally(() => {
      if (this.#writes.get(entry.id) === next) this.#writes.delete(entry.id);
    }).catch(() => undefined);
    return next;
  }

  /** Moves a finished entry (nothing left to upload, no local file) from the queue folder to the day's history. */
  async #retire(entry: SegmentEntry): Promise<void> {
    if (!this.#active.has(entry.id)) return;
    this.#active.delete(entry.id);
    await this.#writes.get(entry.id)?.catch(() => undefined);
    await appendLineDurable(join(this.#historyDir, `${day(Date.now())}.jsonl`), JSON.stringify(entry));
    await unlink(this.#entryPath(entry)).catch(() => undefined);
    this.#history.push(entry);
    if (entry.local === 'deleted') this.#retiredPaths.add(entry.path);
  }

  #pruneHistory(): void {
    const cutoff = Date.now() - this.#options.upload.historyMaxAgeMs;
    if (this.#history.length > 0 && (this.#history[0]!.uploadedAt ?? this.#history[0]!.addedAt) < cutoff) {
      this.#history = this.#history.filter((e) => (e.uploadedAt ?? e.addedAt) >= cutoff);
    }
  }

  // --- adding ---

  async #add(segment: ClosedSegment): Promise<SegmentEntry> {
    if (this.#closed) throw new ClosedError('the segment queue is closed');
    this.#writing.delete(segment.path);
    this.#writing.delete(segment.path + PARTIAL_SUFFIX);
    const known = [...this.#active.values()].find((e) => e.path === segment.path) ?? this.#history.find((e) => e.path === segment.path);
    if (known) return known;
    let size: number;
    try {
      // No hashing here: the upload hashes the bytes it reads anyway (one pass over the file, not two).
      size = (await stat(segment.path)).size;
    } catch (error) {
      throw new SegmentFileError(`${segment.path}: ${(error as NodeJS.ErrnoException).code ?? describeError(error)}`);
    }
    const seq = this.#nextSeq++;
    const ext = extname(segment.path);
    const env = this.#options.env ?? process.env;
    const objectName = renderObjectName(segment.objectName ?? this.#options.objectName, {
      camera: this.#options.camera,
      stream: segment.stream,
      startMs: segment.startMs,
      durationMs: segment.durationMs,
      name: segment.name ?? basename(segment.path, ext),
      ext,
      device: env.IOTEDGE_DEVICEID ?? '',
      module: env.IOTEDGE_MODULEID ?? '',
    });
    const entry: SegmentEntry = {
      id: `${segment.stream}-${String(seq).padStart(8, '0')}`,
      seq,
      path: segment.path,
      stream: segment.stream,
      source: segment.source ?? 'recorder',
      startMs: segment.startMs,
      durationMs: segment.durationMs,
      size,
      md5: null,
      objectName,
      addedAt: Date.now(),
      origin: segment.origin ?? null,
      state: 'pending',
      local: 'present',
      targets: Object.fromEntries(this.#options.targets.map((t) => [t.name, { state: 'pending', resume: null, url: null, uploadedAt: null }])),
      uploadedAt: null,
      reason: null,
    };
    // No target: recording is local only, and the budget keeps the newest.
    if (this.#options.targets.length === 0) {
      entry.state = 'uploaded';
      entry.uploadedAt = entry.addedAt;
    }
    await this.#persist(entry);
    this.#active.set(entry.id, entry);
    this.#paths.add(entry.path);
    if (entry.origin) this.#origins.add(entry.origin);
    this.#counters.segmentsWritten++;
    this.observer.emit('queued', { ...info(entry, this.#options.camera), source: entry.source });
    for (const u of this.#uploaders.values()) u.actor.send({ type: 'WORK' });
    await this.#budget();
    return entry;
  }

  #serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#serial.catch(() => undefined).then(work);
    this.#serial = run.catch(() => undefined);
    return run;
  }

  // --- uploading ---

  #startUploader(target: UploadTarget): void {
    const logic = uploaderMachine.provide({
      actors: {
        step: fromPromise<UploadStepOutput, { target: string }>(({ signal }) => {
          const step = this.#step(target, signal);
          this.#steps.add(step);
          void step.finally(() => this.#steps.delete(step)).catch(() => undefined);
          return step;
        }),
      },
    });
    const actor = createActor(logic, {
      input: { target: target.name, initialDelayMs: this.#options.upload.initialDelayMs, maxDelayMs: this.#options.upload.maxDelayMs },
    });
    actor.on('retry', (event) => {
      this.#counters.uploadErrors++;
      this.observer.emit('upload-retry', { target: target.name, attempt: event.attempt, delayMs: event.delayMs, error: this.#text(event.error) });
    });
    this.#uploaders.set(target.name, { target, actor, uploaded: 0, bytes: 0, current: null });
    actor.start();
    actor.send({ type: 'WORK' });
  }

  /** Uploads the oldest segment this target still needs; resolves `empty` when there is none. */
  async #step(target: UploadTarget, signal: AbortSignal): Promise<UploadStepOutput> {
    const entry = [...this.#active.values()]
      .filter((e) => e.state === 'pending' && e.local === 'present' && e.targets[target.name]?.state === 'pending')
      .sort((a, b) => a.seq - b.seq)[0];
    if (!entry || this.#closed) return { empty: true };
    const progress = entry.targets[target.name]!;
    const uploader = this.#uploaders.get(target.name)!;
    uploader.current = entry.id;
    const started = performance.now();
    const segment = info(entry, this.#options.camera);
    try {
      const resumed = progress.resume !== null;
      this.observer.emit('upload-started', { segment, target: target.name, resumed });
      const result = await target.upload(
        {
          path: entry.path,
          objectName: entry.objectName,
          size: entry.size,
          key: `${entry.id}@${entry.addedAt}`,
          contentType: contentType(entry.path),
          metadata: { camera: asciiOnly(this.#options.camera), stream: entry.stream, start: segment.start, durationms: String(entry.durationMs) },
          resume: progress.resume,
          saveResume: async (state) => {
            if (this.#closed && signal.aborted) return;
            progress.resume = state;
            await this.#persist(entry);
          },
          onProgress: (bytesDone) => this.observer.emit('upload-progress', { segment: entry.id, target: target.name, bytesDone, size: entry.size }),
        },
        signal,
      );
      if (entry.state === 'dropped') return { empty: false };
      if (entry.md5 !== null && entry.md5 !== result.md5) {
        // Two reads of one file gave two checksums: it changed under the queue; what was stored is not the recording.
        throw new SegmentFileError(`${entry.path}: changed since an earlier upload (MD5 ${entry.md5}, now ${result.md5})`);
      }
      entry.md5 = result.md5;
      progress.state = 'done';
      progress.resume = null;
      progress.url = result.url;
      progress.uploadedAt = Date.now();
      uploader.uploaded++;
      uploader.bytes += result.bytesSent;
      this.#counters.bytesUploaded += result.bytesSent;
      this.#throughput.push({ bytes: result.bytesSent, ms: performance.now() - started });
      if (this.#throughput.length > THROUGHPUT_WINDOW) this.#throughput.shift();
      this.observer.emit('upload-done', {
        segment: entry.id,
        target: target.name,
        bytesSent: result.bytesSent,
        bytesSkipped: result.bytesSkipped,
        unitsSkipped: result.unitsSkipped,
        units: result.units,
        ms: Math.round(performance.now() - started),
      });
      const complete = this.#complete(entry);
      if (complete) this.#markUploaded(entry);
      const retireNow = complete && !this.#options.local.keepUploaded && entry.local === 'present';
      if (retireNow) {
        // The history line (fsynced) says uploaded and deleted before the file goes: one durable write, not two.
        // A crash between the two leaves a file the next scan deletes.
        entry.local = 'deleted';
        await this.#retire(entry);
      } else {
        await this.#persist(entry);
      }
      const event: SegmentUploadedEvent = {
        type: 'recording-uploaded',
        camera: this.#options.camera,
        stream: entry.stream,
        target: target.name,
        targetType: target.type,
        url: stripQueries(result.url),
        objectName: entry.objectName,
        start: segment.start,
        durationMs: entry.durationMs,
        size: entry.size,
        md5: result.md5,
        delayMs: Math.max(0, Date.now() - (entry.startMs + entry.durationMs)),
      };
      this.observer.emit('uploaded', event);
      if (retireNow) {
        await unlink(entry.path).catch(() => undefined);
        this.observer.emit('local-deleted', { segment, reason: 'uploaded' });
      } else if (complete) {
        await this.#serially(() => this.#budget());
      }
      return { empty: false };
    } catch (error) {
      if (signal.aborted) throw error;
      if (error instanceof SegmentFileError) {
        if (entry.state === 'dropped') return { empty: false };
        progress.state = 'failed';
        entry.state = 'failed';
        entry.reason = this.#text(error.message);
        this.#counters.segmentsFailed++;
        this.observer.emit('failed', { segment, target: target.name, error: entry.reason });
        await this.#persist(entry);
        return { empty: false };
      }
      if (error instanceof VerificationError) {
        // What is stored is wrong: upload it all again on the next try.
        progress.resume = null;
        await this.#persist(entry);
      }
      throw new Error(this.#text(error instanceof Error ? error.message : String(error)));
    } finally {
      uploader.current = null;
    }
  }

  #complete(entry: SegmentEntry): boolean {
    return this.#options.targets.every((t) => entry.targets[t.name]?.state === 'done');
  }

  #markUploaded(entry: SegmentEntry): void {
    entry.state = 'uploaded';
    entry.uploadedAt = Date.now();
    this.#counters.segmentsUploaded++;
  }

  async #deleteLocal(entry: SegmentEntry, reason: 'uploaded' | 'disk-budget' | 'max-age'): Promise<void> {
    // Set first: the budget pass and an upload step may both get here for one entry.
    if (entry.local === 'deleted') return;
    entry.local = 'deleted';
    await unlink(entry.path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    this.observer.emit('local-deleted', { segment: info(entry, this.#options.camera), reason });
    // No journal write of its own: the history line holds the final state, and a crash before it is finished
    // again at the next open (an uploaded entry whose file is gone).
    await this.#retire(entry);
  }

  // --- disk budget ---

  /** Applies the disk budget: uploaded files first, then (after the alarm) segments not uploaded. */
  async #budget(): Promise<void> {
    const local = [...this.#active.values()].filter((e) => e.local === 'present');
    const uploading = new Set([...this.#uploaders.values()].map((u) => u.current));
    const plan = planBudget(
      local.map((e) => ({ id: e.id, size: e.size, startMs: e.startMs, uploaded: e.state !== 'pending' })),
      this.#options.local,
      Date.now(),
    );
    // Once segments were dropped the alarm stays at `dropping` until the backlog is back under `alarm_at`.
    const alarm = plan.alarm && plan.alarm.level === 'filling' && this.#alarm?.level === 'dropping' ? { ...plan.alarm, level: 'dropping' as const, message: this.#alarm.message } : plan.alarm;
    if (alarm) {
      // Raised or changed level: said once; the figures in it are kept current for status quietly.
      const changed = this.#alarm?.level !== alarm.level;
      this.#alarm = alarm;
      if (changed) this.observer.emit('alarm', alarm);
    } else if (!alarm && this.#alarm) {
      this.#alarm = null;
      this.observer.emit('alarm-cleared');
    }
    const reasons = new Map(plan.drop.map((d) => [d.id, d.reason]));
    for (const id of plan.deleteUploaded) {
      const entry = this.#active.get(id);
      if (entry) await this.#deleteLocal(entry, budgetReason(entry, this.#options.local));
    }
    for (const [id, reason] of reasons) {
      const entry = this.#active.get(id);
      if (!entry || entry.state !== 'pending' || entry.local === 'deleted' || uploading.has(id)) continue;
      entry.state = 'dropped';
      entry.reason = reason === 'max-age' ? 'older than record.local.max_age_s' : `local budget of ${this.#options.local.maxBytes} bytes full`;
      this.#counters.segmentsDropped++;
      entry.local = 'deleted';
      this.observer.emit('dropped', { segment: info(entry, this.#options.camera), reason });
      await unlink(entry.path).catch(() => undefined);
      await this.#persist(entry);
      await this.#retire(entry);
    }
  }

  #log(level: 'info' | 'warn' | 'error', msg: string): void {
    this.observer.emit('log', { level, msg });
  }

  /** Text safe to show. */
  #text(text: string): string {
    return stripQueries(this.#options.redact ? this.#options.redact(text) : text);
  }
}

/** Why an uploaded file leaves the disk: the age limit, or the bytes budget. */
function budgetReason(entry: SegmentEntry, local: LocalSettings): 'disk-budget' | 'max-age' {
  return local.maxAgeMs !== null && Date.now() - entry.startMs > local.maxAgeMs ? 'max-age' : 'disk-budget';
}

function contentType(path: string): string {
  const ext = extname(path).toLowerCase();
  if (ext === '.ts') return 'video/mp2t';
  if (ext === '.m4s') return 'video/iso.segment';
  if (ext === '.mkv') return 'video/x-matroska';
  return 'video/mp4';
}

/** Object metadata is sent as HTTP headers: ASCII only. */
function asciiOnly(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '_');
}
