/**
 * Garbage collection in the engine. V8 does not see the native memory and resources behind node-gtk wrappers
 * (samples, RTSP clients, webrtcbins, their sockets and threads), so with `--expose-gc` (the control plane forks
 * the engine with it) the engine collects on a timer, and soon after a pipeline (a run of a named pipeline, a WebRTC
 * peer, a recorder, an analysis tap) is released. Without it, both do nothing.
 *
 * Collections after a release are not optional: with node-gtk patched (scripts/patch-node-gtk.mjs) the engine makes
 * little garbage, V8 rarely collects on its own, and a camera drop's old pipeline kept its ten sockets for good (a
 * soak: 12 file descriptors more at each drop and swap). Unpatched, the garbage of a V8 context per callback had
 * been collecting them.
 */

import { Gst, type GstPipeline } from './gst.js';

type Collect = (options?: { type: 'minor' | 'major' }) => void;

/** How long queued cross-thread calls get to run before a blocking GStreamer call from this thread. */
export const QUIESCE_MS = 30;

function collector(): Collect | undefined {
  return (globalThis as { gc?: Collect }).gc;
}

/**
 * Periodic collections. A minor one (young objects: most sample wrappers) is cheap and frequent; a full one,
 * which cost several percent of a core with 20 WebRTC viewers when run every 10 s, is rare.
 */
export function collectPeriodically(): void {
  const collect = collector();
  if (!collect) return;
  setInterval(() => collect({ type: 'minor' }), 2_000).unref();
  setInterval(() => collect({ type: 'major' }), 60_000).unref();
}

/** GC passes after the latest release, and their spacing: each pass frees one level of wrappers (the pipeline,
 * then the elements it held, ...), since a wrapped child outlives its parent until its own wrapper is collected. */
const COLLECT_PASSES = 4;
const COLLECT_EVERY_MS = 500;
/** Passes still to run after the latest release (process-wide: one schedule however many peers close). */
let passesLeft = 0;
let timer: NodeJS.Timeout | null = null;

/**
 * A closed peer's pipeline keeps its UDP sockets, TCP listeners and threads until V8 collects the JS wrappers,
 * and with a small JS heap that can take hours: about 3 file descriptors and a thread per closed viewer,
 * measured. Full collections over the next two seconds free them.
 */
export function collectSoon(): void {
  const collect = collector();
  if (!collect) return;
  passesLeft = COLLECT_PASSES;
  if (timer) return;
  const pass = () => {
    collect();
    timer = --passesLeft > 0 ? setTimeout(pass, COLLECT_EVERY_MS).unref() : null;
  };
  timer = setTimeout(pass, COLLECT_EVERY_MS).unref();
}

/**
 * Ends a pipeline from the JS thread: NULL and its bus watch off once calls already queued for this thread have run
 * (a streaming thread may be waiting for one of them, and NULL waits for the streaming threads; a timer, not
 * setImmediate: node-gtk delivers those calls in the poll phase, which setImmediate can run before), then `after`,
 * then collections that free its sockets, bus and threads.
 */
export function nullLater(pipeline: GstPipeline, after?: () => void): void {
  setTimeout(() => {
    pipeline.setState(Gst.State.NULL);
    pipeline.getBus()?.removeWatch();
    after?.();
    collectSoon();
  }, QUIESCE_MS);
}
