import { copyFile, link, mkdir, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { describeError } from './target.js';
import { utcStamp } from './naming.js';
import type { ClosedSegment } from './SegmentQueue.js';
import type { WatchedFolderSettings } from './settings.js';

/** What the watcher needs of the queue. */
export interface FolderSink {
  hasOrigin(origin: string): boolean;
  add(segment: ClosedSegment): Promise<unknown>;
}

/** A file seen in the folder, and since when it has not changed. */
interface Seen {
  size: number;
  mtimeMs: number;
  birthtimeMs: number;
  stableSince: number;
}

/** `*.ts` -> /^[^/]*\.ts$/ (only `*` and `?` are special). */
export function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/**
 * Watches a folder a pipeline writes its own files into (splitmuxsink, hlssink2) and queues each file once its
 * writer is done with it. Node has no close-after-write event (inotify's IN_CLOSE_WRITE is not exposed, and
 * fs.watch is unreliable on network and overlay file systems), so the rule is by polling: a file is closed when
 * it is not the newest matching file and its size and mtime have not changed for `settle_ms`, or when even the
 * newest has not changed for `idle_close_ms` (the pipeline stopped), or after {@link flush} (the owner knows the
 * pipeline ended) once it is settled. A taken file is hard-linked into the queue's folder (copied across file
 * systems), so a writer that deletes old files (hlssink2 `max-files`) cannot take it away before upload.
 */
export class FolderWatcher {
  readonly #settings: WatchedFolderSettings;
  readonly #sink: FolderSink;
  /** Where taken files are linked: `<recordings>/folders/<stream>`. */
  readonly #into: string;
  readonly #pattern: RegExp;
  readonly #seen = new Map<string, Seen>();
  /** Origins taken in this run (the queue remembers them across runs). */
  readonly #taken = new Set<string>();
  readonly #onError: (message: string) => void;
  #timer: NodeJS.Timeout | null = null;
  #polling: Promise<void> | null = null;
  #flushing = false;
  #closed = false;

  constructor(settings: WatchedFolderSettings, recordingsDir: string, sink: FolderSink, onError: (message: string) => void = () => undefined) {
    this.#settings = settings;
    this.#sink = sink;
    this.#into = join(recordingsDir, 'folders', settings.stream);
    this.#pattern = globToRegExp(settings.pattern);
    this.#onError = onError;
  }

  start(): void {
    if (this.#timer || this.#closed) return;
    const every = Math.max(50, Math.min(1_000, Math.floor(this.#settings.settleMs / 2)));
    this.#timer = setInterval(() => void this.poll(), every);
    this.#timer.unref();
    void this.poll();
  }

  /** The writer is done (its pipeline stopped): take the newest file too once it has settled. */
  flush(): Promise<void> {
    this.#flushing = true;
    return this.poll();
  }

  /** One look at the folder (the timer calls it; tests may too). */
  poll(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => {
      this.#polling = null;
    });
    return this.#polling;
  }

  async #poll(): Promise<void> {
    if (this.#closed) return;
    let names: string[];
    try {
      names = (await readdir(this.#settings.path)).filter((n) => this.#pattern.test(n));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.#onError(`${this.#settings.path}: ${describeError(error)}`);
      return;
    }
    const now = Date.now();
    const present = new Set(names);
    for (const name of this.#seen.keys()) if (!present.has(name)) this.#seen.delete(name);
    for (const name of names) {
      try {
        const s = await stat(join(this.#settings.path, name));
        if (!s.isFile()) continue;
        const seen = this.#seen.get(name);
        if (!seen || seen.size !== s.size || seen.mtimeMs !== s.mtimeMs) {
          this.#seen.set(name, { size: s.size, mtimeMs: s.mtimeMs, birthtimeMs: s.birthtimeMs, stableSince: now });
        }
      } catch {
        this.#seen.delete(name);
      }
    }
    let newest: string | null = null;
    for (const [name, seen] of this.#seen) {
      const best = newest === null ? null : this.#seen.get(newest)!;
      if (!best || seen.mtimeMs > best.mtimeMs || (seen.mtimeMs === best.mtimeMs && name > newest!)) newest = name;
    }
    for (const [name, seen] of [...this.#seen].sort((a, b) => a[1].mtimeMs - b[1].mtimeMs)) {
      const quiet = now - seen.stableSince;
      const closed = name === newest ? quiet >= this.#settings.idleCloseMs || (this.#flushing && quiet >= this.#settings.settleMs) : quiet >= this.#settings.settleMs;
      if (!closed || seen.size === 0) continue;
      const source = join(this.#settings.path, name);
      const origin = `${source}|${seen.size}|${seen.mtimeMs}`;
      if (this.#taken.has(origin) || this.#sink.hasOrigin(origin)) continue;
      this.#taken.add(origin);
      try {
        await this.#take(source, name, seen, origin);
      } catch (error) {
        this.#taken.delete(origin);
        this.#onError(`${source}: not queued: ${describeError(error)}`);
      }
    }
  }

  async #take(source: string, name: string, seen: Seen, origin: string): Promise<void> {
    // birthtime is 0 where the file system does not keep it: then the start is unknown and mtime stands in.
    const startMs = Math.round(seen.birthtimeMs > 0 ? seen.birthtimeMs : seen.mtimeMs);
    const durationMs = Math.max(0, Math.round(seen.mtimeMs - startMs));
    await mkdir(this.#into, { recursive: true });
    const target = join(this.#into, `${utcStamp(startMs)}-${name}`);
    try {
      await link(source, target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        // Linked by a run that died before queuing it.
      } else if (code === 'EXDEV' || code === 'EPERM') {
        await copyFile(source, target);
      } else {
        throw error;
      }
    }
    await this.#sink.add({ path: target, stream: this.#settings.stream, startMs, durationMs, source: 'folder', origin, objectName: this.#settings.objectName, name: name.slice(0, name.length - extname(name).length) });
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
