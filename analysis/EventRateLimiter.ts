/**
 * At most `max` events per `windowMs` (a fixed window, as the module's pipeline events on IoT Hub); what goes over is
 * dropped and counted, and the count rides along on the next event that goes out, so a route upstream can tell
 * that it saw a sample. The clock is injected for tests.
 */
export class EventRateLimiter {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #sentInWindow = 0;
  /** Dropped since the last event that went out. */
  #dropped = 0;
  /** Dropped in all, for metrics. */
  #droppedTotal = 0;

  constructor(max: number, windowMs: number, now: () => number = Date.now) {
    this.#max = max;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Whether an event may go out now; if so, returns how many were dropped before it (and resets that count). */
  take(): { ok: true; dropped: number } | { ok: false } {
    const now = this.#now();
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#sentInWindow = 0;
    }
    if (this.#sentInWindow >= this.#max) {
      this.#dropped++;
      this.#droppedTotal++;
      return { ok: false };
    }
    this.#sentInWindow++;
    const dropped = this.#dropped;
    this.#dropped = 0;
    return { ok: true, dropped };
  }

  get droppedTotal(): number {
    return this.#droppedTotal;
  }
}
