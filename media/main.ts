/**
 * The media engine's process: the entry point the control plane forks (actors/engineChildActor.ts). It starts
 * GStreamer and the GLib main loop, and wires the {@link Engine} to the IPC channel.
 */
import type { EngineEvent } from '../ipc/protocol.js';
import { Engine } from './Engine.js';
import { collectPeriodically } from './gc.js';
import { GLib, Gst } from './gst.js';

function send(event: EngineEvent): void {
  try {
    if (process.connected) process.send?.(event);
  } catch {
    // The channel closed under us: the `disconnect` handler below takes it from here.
  }
}

/**
 * Exits once the IPC channel has written what was sent (a recorder's last `record-segment` goes out just before
 * the exit); bounded, for a channel that no longer drains.
 */
function exitAfterFlush(): void {
  const exit = () => process.exit(0);
  setTimeout(exit, 1_000).unref();
  try {
    if (process.connected && process.send) process.send({ type: 'log', level: 'debug', msg: 'media engine exiting' } satisfies EngineEvent, () => exit());
    else exit();
  } catch {
    exit();
  }
}

Gst.init(null);
const engine = new Engine({ send, exit: exitAfterFlush });
// Engine.handle checks each message and never throws.
process.on('message', (message: unknown) => engine.handle(message));
// The control plane is gone (killed, crashed): finish recordings and leave, nobody is left to supervise us.
process.on('disconnect', () => engine.shutdown(5_000));
// A channel that closed while this module was still loading (ES modules load over the event loop) emitted its
// `disconnect` before the handler above existed: the engine would run on for ever with nobody to supervise it
// (seen: one left behind by a control plane stopped during its start).
if (typeof process.send === 'function' && !process.connected) engine.shutdown(5_000);
// Signals are the control plane's business: it asks for a graceful shutdown over IPC.
process.on('SIGINT', () => undefined);

setInterval(() => send({ type: 'stats', stats: engine.stats() }), 1_000).unref();
collectPeriodically();
const loop = GLib.MainLoop.new(null, false);
send({ type: 'ready', pid: process.pid, gstVersion: Gst.versionString() });
send({
  type: 'log',
  level: 'info',
  msg: engine.nativeHub ? 'sample hub: in C (iotedgehub)' : 'sample hub: in JS (the iotedgehub plugin is not loaded, or IOTEDGE_HUB=js)',
});
// Not at the module's top level: run() called while the ES module is still being evaluated blocks Node's timers
// (setTimeout/setInterval never fire); from a callback, Node's loop runs inside GLib's.
setImmediate(() => loop.run());
