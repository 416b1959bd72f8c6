/**
 * The media engine: the child process the control plane forks. Everything that touches GStreamer lives here,
 * so a plugin that crashes, or an exception node-gtk turns into an exit, takes this process down and not the
 * module. It obeys {@link EngineCommand}s from the IPC channel and answers with {@link EngineEvent}s.
 */
import { isEngineCommand, type EngineCommand, type EngineEvent, type WebRtcPeerSpec } from '../ipc/protocol.js';
import { errorMessage } from '../config/errors.js';
import { GLib, Gst } from './gst.js';
import { parseLaunch, PipelineRunner } from './PipelineRunner.js';
import { RtspServer } from './RtspServer.js';
import { SampleHub } from './SampleHub.js';
import { WebRtcFanout } from './WebRtcFanout.js';
import { WebRtcPeer } from './WebRtcPeer.js';

function send(event: EngineEvent): void {
  if (process.connected) process.send?.(event);
}

/** The running pipelines, by name. */
const runners = new Map<string, PipelineRunner>();
/** Samples from named appsinks to whoever consumes them (RTSP media, WebRTC peers). */
const hub = new SampleHub();
/** An element of any running pipeline, by name (a proxysink for an RTSP proxysrc). */
function findElement(name: string) {
  for (const runner of runners.values()) {
    const element = runner.pipeline.getByName(name);
    if (element) return element;
  }
  return null;
}
const rtsp = new RtspServer(hub, send, findElement);
/** WebRTC viewers' peers, by id. */
const peers = new Map<string, WebRtcPeer>();
/** Shared mode's one payloader and tee, while shared viewers watch. */
let fanout: WebRtcFanout | null = null;

function openPeer(spec: WebRtcPeerSpec): void {
  const { peer: id } = spec;
  const state = (state: Extract<EngineEvent, { type: 'webrtc-state' }>['state'], reason: string | null) =>
    send({ type: 'webrtc-state', peer: id, state, reason });
  if (peers.has(id)) return;
  try {
    if (spec.mode === 'shared' && !spec.offer) fanout ??= new WebRtcFanout(hub);
    const peer = new WebRtcPeer({
      id,
      mode: spec.mode,
      fanout: fanout ?? undefined,
      launch: spec.launch ?? undefined,
      offer: spec.offer ?? undefined,
      hub,
      stunServer: spec.stunServer ?? undefined,
      turnServers: spec.turnServers,
      onSignal: (signal) => send({ type: 'webrtc-signal', peer: id, signal }),
      onState: (now, reason) => {
        state(now, reason ?? null);
        if (now === 'failed') setImmediate(() => peers.get(id)?.close());
        if (now === 'closed') {
          peers.delete(id);
          // The last shared viewer gone: stop payloading for nobody.
          if (fanout && fanout.branches === 0) {
            fanout.close();
            fanout = null;
          }
        }
      },
    });
    peers.set(id, peer);
    peer.start();
  } catch (error) {
    state('failed', errorMessage(error));
    state('closed', null);
  }
}
/** Set once a shutdown is under way: no pipeline starts after it. */
let shuttingDown = false;

function start(pipeline: string, run: number, launch: string): void {
  runners.get(pipeline)?.stop(false, 0);
  let runner: PipelineRunner;
  try {
    runner = new PipelineRunner(
      pipeline,
      run,
      launch,
      send,
      () => {
        if (runners.get(pipeline) === runner) runners.delete(pipeline);
      },
      hub,
    );
  } catch (error) {
    send({ type: 'error', pipeline, run, message: errorMessage(error), source: 'parser', debug: null });
    send({ type: 'stopped', pipeline, run, eos: false });
    return;
  }
  runners.set(pipeline, runner);
  rtsp.producerStarted();
  runner.play();
}

function stop(pipeline: string, run: number, graceful: boolean, timeoutMs: number): void {
  const runner = runners.get(pipeline);
  if (runner && runner.run === run) runner.stop(graceful, timeoutMs);
  else send({ type: 'stopped', pipeline, run, eos: false });
}

/** Graceful stop of every pipeline (bounded), then exit 0. */
function shutdown(timeoutMs: number): void {
  if (shuttingDown) return;
  shuttingDown = true;
  const exit = () => process.exit(0);
  if (runners.size === 0) {
    exit();
    return;
  }
  const deadline = setTimeout(exit, timeoutMs + 500);
  const check = setInterval(() => {
    if (runners.size === 0) {
      clearTimeout(deadline);
      clearInterval(check);
      exit();
    }
  }, 10);
  for (const runner of runners.values()) runner.stop(true, timeoutMs);
}

function handle(command: EngineCommand): void {
  switch (command.type) {
    case 'validate':
      try {
        parseLaunch(command.launch);
        send({ type: 'reply', id: command.id, ok: true });
      } catch (error) {
        send({ type: 'reply', id: command.id, ok: false, error: errorMessage(error) });
      }
      return;
    case 'start':
      if (!shuttingDown) start(command.pipeline, command.run, command.launch);
      return;
    case 'stop':
      stop(command.pipeline, command.run, command.graceful, command.timeoutMs);
      return;
    case 'rtsp':
      rtsp.configure(command.config);
      return;
    case 'webrtc-open':
      openPeer(command.spec);
      return;
    case 'webrtc-signal': {
      const peer = peers.get(command.peer);
      if (!peer) return;
      try {
        peer.handleSignal(command.signal);
      } catch (error) {
        send({ type: 'webrtc-state', peer: command.peer, state: 'failed', reason: errorMessage(error) });
        peer.close();
      }
      return;
    }
    case 'webrtc-close':
      peers.get(command.peer)?.close();
      return;
    case 'ping':
      send({ type: 'pong' });
      return;
    case 'shutdown':
      for (const peer of peers.values()) peer.close();
      fanout?.close();
      rtsp.close();
      shutdown(command.timeoutMs);
      return;
  }
}

process.on('message', (message: unknown) => {
  if (!isEngineCommand(message)) return;
  try {
    handle(message);
  } catch (error) {
    send({ type: 'log', level: 'error', msg: `command ${message.type} failed: ${errorMessage(error)}` });
  }
});
// The control plane is gone (killed, crashed): finish recordings and leave, nobody is left to supervise us.
process.on('disconnect', () => shutdown(5_000));
// Signals are the control plane's business: it asks for a graceful shutdown over IPC.
process.on('SIGINT', () => undefined);

Gst.init(null);
setInterval(() => send({ type: 'stats', stats: { streams: hub.stats(), rtsp: rtsp.stats(), webrtcPeers: peers.size } }), 1_000).unref();
// V8 does not see the native memory behind wrappers (samples, RTSP clients, webrtcbins). A minor collection
// (young objects: most sample wrappers) is cheap and frequent; a full one, which cost several percent of a core
// with 20 WebRTC viewers when run every 10 s, is rare.
const collect = (globalThis as { gc?: (options?: { type: 'minor' | 'major' }) => void }).gc;
if (collect) {
  setInterval(() => collect({ type: 'minor' }), 2_000).unref();
  setInterval(() => collect({ type: 'major' }), 60_000).unref();
}
const loop = GLib.MainLoop.new(null, false);
send({ type: 'ready', pid: process.pid, gstVersion: Gst.versionString() });
// Not at the module's top level: run() called while the ES module is still being evaluated blocks Node's timers
// (setTimeout/setInterval never fire); from a callback, Node's loop runs inside GLib's.
setImmediate(() => loop.run());
