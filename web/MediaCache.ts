import type { Stats } from 'node:fs';

/**
 * A file is cached only once its mtime is this old. The kernel stamps mtime with a coarse clock (one tick,
 * up to 10 ms), so two same-size writes within one tick look like one version; any write after this delay
 * gets a later mtime, which the fstat check sees.
 */
const CACHE_SETTLE_MS = 50;

/** Same file, same content: a rename (new inode) or any write (mtime, ctime, size) makes it another version. */
export function sameVersion(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** Whole media files in memory by requested path, least recently used evicted first, bounded in bytes. */
export class MediaCache {
  /** The most bytes all entries may hold together. */
  readonly #maxBytes: number;
  /** Entries in use order: Map keeps insertion order, and a hit re-inserts. */
  readonly #entries = new Map<string, { stat: Stats; data: Buffer }>();
  /** Bytes held now. */
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Whether a file this size is kept: one file must not push out most of the others. */
  accepts(size: number): boolean {
    return size <= this.#maxBytes / 4;
  }

  /** The content of `path` if the entry is the version `stat` describes. */
  get(path: string, stat: Stats): Buffer | undefined {
    const entry = this.#entries.get(path);
    if (entry === undefined) return undefined;
    this.#delete(path);
    if (!sameVersion(entry.stat, stat)) return undefined;
    this.#entries.set(path, entry);
    this.#bytes += entry.data.length;
    return entry.data;
  }

  set(path: string, stat: Stats, data: Buffer): void {
    if (!this.accepts(data.length) || Date.now() - stat.mtimeMs < CACHE_SETTLE_MS) return;
    this.#delete(path);
    this.#entries.set(path, { stat, data });
    this.#bytes += data.length;
    for (const [oldest] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#delete(oldest);
    }
  }

  #delete(path: string): void {
    const entry = this.#entries.get(path);
    if (entry === undefined) return;
    this.#entries.delete(path);
    this.#bytes -= entry.data.length;
  }
}

