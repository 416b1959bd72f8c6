/** Limits of {@link OutputLines}. */
export interface OutputLimits {
  /** A longer line is cut here (a pipeline ending in `fdsink` pours binary video into stdout). */
  readonly maxLineBytes: number;
  /** Lines passed on per second; the rest are counted and reported once a second. */
  readonly maxLinesPerSecond: number;
}

export const DEFAULT_OUTPUT_LIMITS: OutputLimits = { maxLineBytes: 8 * 1024, maxLinesPerSecond: 200 };

const NEWLINE = 0x0a;

/**
 * Splits a child's output into lines for the log, bounded in memory and in rate: a line over `maxLineBytes` is cut
 * (the rest of it skipped up to the next newline, never buffered), and beyond `maxLinesPerSecond` lines are
 * dropped, with one `N lines dropped` line when the second is over. GST_DEBUG=5 or a stray `fdsink` then costs
 * a bounded log, not the control plane's memory.
 */
export class OutputLines {
  readonly #limits: OutputLimits;
  readonly #emit: (line: string) => void;
  readonly #now: () => number;
  /** The start of the line being read (at most maxLineBytes of it). */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** The current line is over the limit: skip to its end. */
  #cut = 0;
  #windowStart = 0;
  #inWindow = 0;
  #dropped = 0;

  constructor(emit: (line: string) => void, limits: OutputLimits = DEFAULT_OUTPUT_LIMITS, now: () => number = Date.now) {
    this.#emit = emit;
    this.#limits = limits;
    this.#now = now;
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, start);
      const end = newline === -1 ? chunk.length : newline;
      this.#take(chunk.subarray(start, end));
      if (newline === -1) break;
      this.#endLine();
      start = newline + 1;
    }
  }

  /** The last line, if the output ended without a newline, and any count of dropped lines. */
  end(): void {
    if (this.#pendingBytes > 0 || this.#cut > 0) this.#endLine();
    this.#reportDropped();
  }

  #take(part: Buffer): void {
    const room = this.#limits.maxLineBytes - this.#pendingBytes;
    if (part.length <= room) {
      if (part.length > 0) this.#pending.push(Buffer.from(part));
      this.#pendingBytes += part.length;
      return;
    }
    if (room > 0) {
      this.#pending.push(Buffer.from(part.subarray(0, room)));
      this.#pendingBytes += room;
    }
    this.#cut += part.length - Math.max(room, 0);
  }

  #endLine(): void {
    // Binary (a stray fdsink) comes out as replacement and control characters, which JSON logging would escape to
    // six characters each: shown as `?`, so the logged line stays as short as the limit says.
    let line = Buffer.concat(this.#pending, this.#pendingBytes).toString('utf8').replace(/[\u0000-\u0008\u000b-\u001f\u007f\ufffd]/g, '?');
    if (this.#cut > 0) line += ` [... ${this.#cut} more bytes cut]`;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#cut = 0;
    const now = this.#now();
    if (now - this.#windowStart >= 1_000) {
      this.#reportDropped();
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (this.#inWindow >= this.#limits.maxLinesPerSecond) {
      this.#dropped++;
      return;
    }
    this.#inWindow++;
    this.#emit(line);
  }

  #reportDropped(): void {
    if (this.#dropped === 0) return;
    const dropped = this.#dropped;
    this.#dropped = 0;
    this.#emit(`[${dropped} lines of output dropped: more than ${this.#limits.maxLinesPerSecond} a second]`);
  }
}
