import { connect } from 'node:net';
import { FuzzRandom } from './fuzzRandom.js';
import type { FuzzTarget } from './fuzzTarget.js';

/** How one input ended: a class for the tally, and a problem when the module did not answer as it should. */
export interface FuzzOutcome {
  readonly cls: string;
  readonly problem?: string;
  /** Extra tallies (e.g. refusals with 1013 before the input could be sent). */
  readonly also?: readonly string[];
}

/** One surface of the module that a fuzz run sends hostile inputs to. */
export interface FuzzSurface {
  readonly name: string;
  /** Inputs in flight at once. */
  readonly concurrency: number;
  /** New inputs a second at most (to stay under the module's admission rate, so inputs are tried, not refused). */
  readonly ratePerSecond?: number;
  /** Work done once before the first input (e.g. taking a valid offer to mutate). */
  prepare?(target: FuzzTarget): Promise<void>;
  /** Generates input `index` from `rng`, sends it, and says how the module answered. */
  run(rng: FuzzRandom, index: number, target: FuzzTarget): Promise<FuzzOutcome>;
  /** Puts back what the inputs changed (the last good config); returns a problem if that failed. */
  finish?(target: FuzzTarget): Promise<string | null>;
}

/** What a fuzz run of one surface saw. */
export interface SurfaceReport {
  readonly surface: string;
  readonly seed: number;
  readonly tried: number;
  readonly classes: Record<string, number>;
  /** The first problems (each names its input's index, to replay with the same seed). */
  readonly problems: string[];
  readonly problemCount: number;
  readonly ms: number;
}

/** Problems kept in a report; the rest are counted. */
const MAX_PROBLEMS_KEPT = 25;
/** An input that has not ended after this long is a problem in itself (the module hangs on it). */
const INPUT_TIMEOUT_MS = 30_000;

/**
 * Sends `count` inputs of `surface` to the target (at most `concurrency` at once, paced to `ratePerSecond`), and
 * tallies how they ended. Input `i` is drawn from {@link FuzzRandom.forInput}(seed, surface, i): the same seed
 * replays the same inputs.
 */
export async function fuzzSurface(surface: FuzzSurface, target: FuzzTarget, seed: number, count: number): Promise<SurfaceReport> {
  const started = Date.now();
  await surface.prepare?.(target);
  const classes: Record<string, number> = {};
  const problems: string[] = [];
  let problemCount = 0;
  let next = 0;
  let slot = Date.now();
  const interval = surface.ratePerSecond ? 1_000 / surface.ratePerSecond : 0;
  const tally = (cls: string) => {
    classes[cls] = (classes[cls] ?? 0) + 1;
  };
  const worker = async () => {
    for (;;) {
      const index = next++;
      if (index >= count) return;
      if (interval > 0) {
        slot = Math.max(slot + interval, Date.now());
        const wait = slot - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      let outcome: FuzzOutcome;
      let timer: NodeJS.Timeout | undefined;
      try {
        outcome = await Promise.race([
          surface.run(FuzzRandom.forInput(seed, surface.name, index), index, target),
          new Promise<FuzzOutcome>((resolve) => {
            timer = setTimeout(() => resolve({ cls: 'hung', problem: `no outcome within ${INPUT_TIMEOUT_MS} ms` }), INPUT_TIMEOUT_MS);
          }),
        ]);
      } catch (error) {
        outcome = { cls: 'harness-error', problem: `the fuzzer itself failed: ${(error as Error).stack ?? String(error)}` };
      } finally {
        clearTimeout(timer);
      }
      tally(outcome.cls);
      for (const extra of outcome.also ?? []) tally(extra);
      if (outcome.problem !== undefined) {
        problemCount++;
        if (problems.length < MAX_PROBLEMS_KEPT) problems.push(`#${index}: ${outcome.problem}`);
      }
    }
  };
  await Promise.all(Array.from({ length: surface.concurrency }, worker));
  const finished = await surface.finish?.(target);
  if (finished) {
    problemCount++;
    problems.push(`after the inputs: ${finished}`);
  }
  return { surface: surface.name, seed, tried: count, classes, problems, problemCount, ms: Date.now() - started };
}

/** One line per surface for the log: inputs, classes, problems, time. */
export function formatReport(report: SurfaceReport): string {
  const classes = Object.entries(report.classes)
    .sort((a, b) => b[1] - a[1])
    .map(([cls, n]) => `${cls}=${n}`)
    .join(' ');
  return `[fuzz] ${report.surface}: ${report.tried} inputs in ${(report.ms / 1000).toFixed(1)} s (seed ${report.seed}); ${classes}; problems: ${report.problemCount}`;
}

/** The local address for input `index` of a surface: 127.<lane>.x.y, so no one address meets the per-address limits. */
export function localAddress(lane: number, index: number): string {
  return `127.${lane}.${Math.floor(index / 250) % 250}.${2 + (index % 250)}`;
}

/** One response read off a raw socket. */
export interface RawResponse {
  /** NaN when nothing that looks like a status line came back. */
  readonly status: number;
  readonly head: string;
  readonly headers: Map<string, string>;
  readonly body: Buffer;
  /** Every byte that came back. */
  readonly raw: Buffer;
  /** The server closed the connection (rather than us, at the timeout or once the response was complete). */
  readonly serverClosed: boolean;
  readonly timedOut: boolean;
  readonly error: string | null;
}

export interface RawRequestOptions {
  readonly port: number;
  readonly localAddress?: string;
  /** Ends the wait when nothing more came for this long after the last byte written or read. */
  readonly idleMs?: number;
  /** The request's method was HEAD: a response has no body whatever its headers say. */
  readonly head?: boolean;
}

/**
 * Writes `request` byte for byte to a TCP connection and reads one HTTP (or RTSP) response: the status line and
 * headers, then the body by Content-Length or chunked framing, or up to the close. Interim 1xx responses are
 * skipped. Resolves on a complete response, the server's close, an error, or `idleMs` of silence.
 */
export function rawRequest(request: Buffer, options: RawRequestOptions): Promise<RawResponse> {
  const idleMs = options.idleMs ?? 3_000;
  return new Promise((resolve) => {
    const socket = connect({ port: options.port, host: '127.0.0.1', localAddress: options.localAddress });
    const chunks: Buffer[] = [];
    let done = false;
    let idle: NodeJS.Timeout;
    const finish = (serverClosed: boolean, timedOut: boolean, error: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      socket.destroy();
      resolve(parseResponse(Buffer.concat(chunks), options.head === true, serverClosed, timedOut, error));
    };
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => finish(false, true, null), idleMs);
    };
    socket.on('connect', () => {
      socket.write(request);
      arm();
    });
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      arm();
      if (parseResponse(Buffer.concat(chunks), options.head === true, false, false, null).complete) finish(false, false, null);
    });
    socket.on('error', (error) => finish(false, false, (error as NodeJS.ErrnoException).code ?? error.message));
    socket.on('close', () => finish(true, false, null));
    arm();
  });
}

function parseResponse(raw: Buffer, head: boolean, serverClosed: boolean, timedOut: boolean, error: string | null): RawResponse & { complete: boolean } {
  let offset = 0;
  for (;;) {
    const end = raw.indexOf('\r\n\r\n', offset);
    const text = raw.subarray(offset, end === -1 ? raw.length : end).toString('latin1');
    const status = Number(/^(?:HTTP|RTSP)\/\d\.\d (\d{3})/.exec(text)?.[1] ?? NaN);
    const lines = text.split('\r\n');
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const base = { status, head: text, headers, raw, serverClosed, timedOut, error };
    if (end === -1) return { ...base, body: Buffer.alloc(0), complete: false };
    const rest = raw.subarray(end + 4);
    if (status >= 100 && status < 200) {
      offset = end + 4;
      continue;
    }
    if (head || status === 204 || status === 304) return { ...base, body: Buffer.alloc(0), complete: true };
    const length = headers.get('content-length');
    if (length !== undefined && /^\d+$/.test(length)) {
      const n = Number(length);
      return { ...base, body: rest.subarray(0, n), complete: rest.length >= n };
    }
    if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) {
      const body = dechunk(rest);
      return { ...base, body: body ?? rest, complete: body !== null };
    }
    return { ...base, body: rest, complete: false };
  }
}

/** The body of a complete chunked encoding, or null while it is incomplete. */
function dechunk(data: Buffer): Buffer | null {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol === -1) return null;
    const size = parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size)) return null;
    if (size === 0) return Buffer.concat(parts);
    if (data.length < eol + 2 + size + 2) return null;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** An HTTP response body that must be a JSON object with an `error` string (the module's refusals). */
export function jsonError(response: RawResponse): string | null {
  try {
    const parsed = JSON.parse(response.body.toString('utf8')) as { error?: unknown };
    if (typeof parsed.error === 'string' && parsed.error.length > 0) return null;
    return `the body has no "error" string: ${response.body.toString('utf8').slice(0, 200)}`;
  } catch {
    return `the body is not JSON: ${JSON.stringify(response.body.toString('latin1').slice(0, 200))}`;
  }
}

/** A short, printable picture of an input for a problem line. */
export function show(input: string | Buffer, max = 160): string {
  const text = typeof input === 'string' ? input : input.toString('latin1');
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}...(${text.length} chars)` : text);
}
