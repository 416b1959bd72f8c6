/**
 * A Map bounded in size that forgets the least recently used entry first, and entries past their expiry.
 * For state keyed by what clients send (addresses, credentials): an attacker who varies the key can only churn
 * this map, never grow it.
 */
export class LruMap<K, V> {
  /** Insertion order is use order: the first key is the least recently used. */
  readonly #entries = new Map<K, { value: V; expiresAt: number }>();
  /** Most entries kept. */
  readonly #max: number;
  /** Clock in milliseconds (injected in tests). */
  readonly #now: () => number;

  constructor(max: number, now: () => number = Date.now) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError('LruMap size must be a whole number above 0');
    this.#max = max;
    this.#now = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value, if present and not expired; marks it used. */
  get(key: K): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    this.#entries.delete(key);
    if (entry.expiresAt <= this.#now()) return undefined;
    this.#entries.set(key, entry);
    return entry.value;
  }

  /** Stores `value` until `ttlMs` from now, dropping the least recently used entry when full. */
  set(key: K, value: V, ttlMs: number): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlMs });
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
  }

  /** Entries not expired yet, least recently used first (a copy: deleting while iterating is safe). */
  entries(): Array<[K, V]> {
    const now = this.#now();
    return [...this.#entries].filter(([, entry]) => entry.expiresAt > now).map(([key, entry]) => [key, entry.value]);
  }

  delete(key: K): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }
}
