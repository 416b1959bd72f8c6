/**
 * A stand-in for the media engine's WebRTC side, for tests: a producer pipeline feeding a SampleHub, one
 * WebRtcPeer per websocket (shared viewers on the engine's WebRtcFanouts), and the viewer page, all in one process that loads node-gtk. Run it with
 * `node dist/test/support/webrtcHarness.js [--no-audio]`; it reports on stdout, one JSON object a line
 * ({@link HarnessEvent}). The test process imports only {@link WebRtcHarness} (which spawns it), so it never
 * loads node-gtk itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The seed-style per-viewer launch line: one encode per viewer, straight into webrtcbin. */
export const PER_VIEWER_LAUNCH =
  'videotestsrc is-live=true ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline ! ' +
  'rtph264pay config-interval=-1 ! application/x-rtp,media=video,encoding-name=H264,payload=96 ! webrtcbin name=webrtcbin';

/** A per-viewer line whose source never delivers (a camera that is down): webrtcbin never asks to negotiate. */
export const STALLED_LAUNCH =
  'videotestsrc is-live=true ! valve drop=true ! x264enc tune=zerolatency ! rtph264pay ! ' +
  'application/x-rtp,media=video,encoding-name=H264,payload=96 ! webrtcbin name=webrtcbin';

/** A per-viewer line that reads the main pipeline, as the seed's RTSP lines do (`appsrc name=videosrc`). */
export const HUB_LAUNCH =
  'appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 ! ' +
  'application/x-rtp,media=video,encoding-name=H264,payload=96 ! webrtcbin name=webrtcbin';

/** Per-viewer launch lines by the `launch` query parameter of the websocket URL. */
const LAUNCHES: Record<string, string> = { default: PER_VIEWER_LAUNCH, stalled: STALLED_LAUNCH, hub: HUB_LAUNCH };

/** The main pipeline of shared mode: H.264 into `appsink name=video` (and Opus into `appsink name=audio`). */
export const PRODUCER_VIDEO =
  'videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! ' +
  'x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline ! ' +
  'h264parse config-interval=-1 ! appsink name=video';
export const PRODUCER_AUDIO = 'audiotestsrc is-live=true wave=ticks ! audio/x-raw,rate=48000,channels=2 ! opusenc ! appsink name=audio';


/** What the harness process reports. */
export type HarnessEvent =
  | { type: 'listening'; port: number; audio: boolean }
  | { type: 'peer'; id: string; mode: string }
  /** Peers alive, and shared fan-outs not closed yet. */
  | { type: 'peers'; count: number; fanouts: number }
  | { type: 'state'; id: string; state: string; reason?: string; ms: number }
  | { type: 'offer'; id: string; sdp: string; ms: number }
  | { type: 'stats'; id: string; stats: Record<string, unknown> }
  | { type: 'refused'; id: string; reason: string }
  | { type: 'signal-error'; id: string; error: string }
  | { type: 'closed'; id: string; closeMs: number }
  /** A log line from the engine's parts (the shared fan-out's errors and warnings). */
  | { type: 'log'; level: string; msg: string }
  | { type: 'error'; error: string };

/**
 * The viewer page: each `startViewer(mode)` opens a websocket and an RTCPeerConnection that answers the module's
 * offer, as a page written for the original does (it sends `{ice: event.candidate}` and `{sdp: localDescription}`
 * as the browser serialises them).
 */
export const VIEWER_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>webrtc harness</title></head><body>
<script>
const viewers = [];
window.startViewer = (mode, query) => {
  const v = { t0: performance.now(), firstFrameMs: null, offer: null, states: [], errors: [], ws: null, pc: null };
  const index = viewers.push(v) - 1;
  const pc = new RTCPeerConnection({ iceServers: [] });
  v.pc = pc;
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.append(video);
  pc.ontrack = (e) => {
    if (e.track.kind !== 'video') return;
    video.srcObject = e.streams[0] || new MediaStream([e.track]);
    video.play().catch(() => {});
  };
  pc.onconnectionstatechange = () => v.states.push(pc.connectionState);
  const ws = new WebSocket('ws://' + location.host + '/ws?mode=' + encodeURIComponent(mode) + (query ? '&' + query : ''));
  ws.onclose = (e) => { v.closeCode = e.code; v.closeReason = e.reason; };
  v.ws = ws;
  pc.onicecandidate = (e) => { if (e.candidate && ws.readyState === 1) ws.send(JSON.stringify({ ice: e.candidate })); };
  ws.onmessage = async (e) => {
    try {
      const msg = JSON.parse(e.data);
      if (msg.sdp) {
        v.offer = msg.sdp.sdp;
        await pc.setRemoteDescription(msg.sdp);
        await pc.setLocalDescription(await pc.createAnswer());
        ws.send(JSON.stringify({ sdp: pc.localDescription }));
      } else if (msg.ice) {
        await pc.addIceCandidate(msg.ice);
      } else if (msg.error) {
        v.errors.push(msg.error);
      }
    } catch (error) { v.errors.push(String(error)); }
  };
  const poll = setInterval(async () => {
    const s = await window.viewerStats(index);
    if (s.framesDecoded > 0) { v.firstFrameMs = performance.now() - v.t0; clearInterval(poll); }
    if (pc.connectionState === 'closed') clearInterval(poll);
  }, 20);
  return index;
};
window.viewerStats = async (index) => {
  const v = viewers[index];
  const result = { framesDecoded: 0, audioPackets: 0, videoCodec: null, firstFrameMs: v.firstFrameMs, states: v.states, errors: v.errors, offer: v.offer, ws: v.ws.readyState, closeCode: v.closeCode, closeReason: v.closeReason };
  const stats = await v.pc.getStats();
  stats.forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video') {
      result.framesDecoded += s.framesDecoded || 0;
      const codec = s.codecId && stats.get(s.codecId);
      if (codec) result.videoCodec = codec.mimeType + ' ' + (codec.sdpFmtpLine || '');
    } else if (s.kind === 'audio') result.audioPackets += s.packetsReceived || 0;
  });
  return result;
};
window.sendRaw = (index, text) => viewers[index].ws.send(text);
window.closeViewer = (index) => { viewers[index].ws.close(); viewers[index].pc.close(); };
</script></body></html>`;

/** The test side: spawns the harness process and follows what it reports. */
export class WebRtcHarness {
  readonly child: ChildProcess;
  readonly port: number;
  readonly audio: boolean;
  /** Everything reported so far, in order. */
  readonly events: HarnessEvent[];
  /** stderr lines, for failure messages. */
  readonly stderr: string[];
  readonly #waiters: Set<() => void>;

  private constructor(child: ChildProcess, port: number, audio: boolean, events: HarnessEvent[], stderr: string[], waiters: Set<() => void>) {
    this.child = child;
    this.port = port;
    this.audio = audio;
    this.events = events;
    this.stderr = stderr;
    this.#waiters = waiters;
  }

  /** Starts the harness; resolves once its producer runs and its server listens. */
  static start(options: { audio?: boolean; timeoutMs?: number } = {}): Promise<WebRtcHarness> {
    const script = fileURLToPath(import.meta.url);
    const args = [script, ...(options.audio === false ? ['--no-audio'] : [])];
    // --expose-gc as the engine should run: WebRtcPeer then collects closed peers' sockets and threads promptly.
    const child = spawn(process.execPath, ['--expose-gc', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const events: HarnessEvent[] = [];
    const stderr: string[] = [];
    const waiters = new Set<() => void>();
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        events.push(JSON.parse(line) as HarnessEvent);
      } catch {
        stderr.push(line);
      }
      for (const waiter of waiters) waiter();
    });
    createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
    child.on('exit', () => {
      for (const waiter of waiters) waiter();
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`harness did not listen in time:\n${stderr.slice(-20).join('\n')}`)), options.timeoutMs ?? 20_000);
      const check = () => {
        const listening = events.find((e) => e.type === 'listening');
        if (listening && listening.type === 'listening') {
          clearTimeout(timer);
          waiters.delete(check);
          resolve(new WebRtcHarness(child, listening.port, listening.audio, events, stderr, waiters));
        } else if (child.exitCode !== null || child.signalCode !== null) {
          fail(new Error(`harness exited (${child.exitCode ?? child.signalCode}):\n${stderr.slice(-20).join('\n')}`));
        }
      };
      const fail = (error: Error) => {
        clearTimeout(timer);
        waiters.delete(check);
        child.kill('SIGKILL');
        reject(error);
      };
      waiters.add(check);
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** Peers alive in the harness, as last reported. */
  get peerCount(): number {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const event = this.events[i]!;
      if (event.type === 'peers') return event.count;
    }
    return 0;
  }

  /** The harness process's open file descriptors and threads (Linux /proc): what a leaked pipeline holds on to. */
  resources(): { fds: number; threads: number } {
    const pid = this.child.pid!;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { fds: readdirSync(`/proc/${pid}/fd`).length, threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? NaN) };
  }

  /**
   * Resolves with {@link resources} once they have stopped falling for `quietMs` (closed peers are collected in
   * GC passes over about 2 s), or after `timeoutMs`.
   */
  async settledResources(quietMs = 1_500, timeoutMs = 10_000): Promise<{ fds: number; threads: number }> {
    const deadline = Date.now() + timeoutMs;
    let last = this.resources();
    let since = Date.now();
    while (Date.now() < deadline && Date.now() - since < quietMs) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const now = this.resources();
      if (now.fds !== last.fds || now.threads !== last.threads) since = Date.now();
      last = now;
    }
    return last;
  }

  /** Resolves with the first event (from index `from`) that `match` accepts; rejects after `timeoutMs`. */
  waitFor<T extends HarnessEvent>(match: (event: HarnessEvent) => event is T, timeoutMs?: number, from?: number): Promise<T>;
  waitFor(match: (event: HarnessEvent) => boolean, timeoutMs?: number, from?: number): Promise<HarnessEvent>;
  waitFor(match: (event: HarnessEvent) => boolean, timeoutMs = 15_000, from = 0): Promise<HarnessEvent> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.slice(from).find(match);
        if (found) {
          done();
          resolve(found);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done();
          reject(new Error(`harness exited:\n${this.stderr.slice(-20).join('\n')}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching harness event in ${timeoutMs} ms; last events:\n${this.events.slice(-10).map((e) => JSON.stringify(e).slice(0, 300)).join('\n')}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Ends the harness (stdin closed: it closes its peers and pipelines and exits), killing it if it lingers. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.stdin?.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}

/** The harness process itself. */
async function main(): Promise<void> {
  const withAudio = !process.argv.includes('--no-audio');
  const report = (event: HarnessEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);
  // Loaded here, not at the top: the test process imports this file for WebRtcHarness and must not load node-gtk.
  const { GLib, Gst } = await import('../../media/gst.js');
  const { SampleHub } = await import('../../media/SampleHub.js');
  const { WebRtcPeer } = await import('../../media/WebRtcPeer.js');
  const { WebRtcFanouts } = await import('../../media/WebRtcFanouts.js');
  const { asAppSrc } = await import('../../media/gst.js');
  const { parseSignal } = await import('../../ipc/signalling.js');
  const { WebSocketServer } = await import('ws');

  Gst.init(null);
  const loop = GLib.MainLoop.new(null, false);
  // Not at top level: run() inside an ES module's evaluation would block Node's timers.
  setImmediate(() => loop.run());
  const hub = new SampleHub();
  const producer = Gst.parseLaunch(withAudio ? `${PRODUCER_VIDEO} ${PRODUCER_AUDIO}` : PRODUCER_VIDEO) as InstanceType<typeof Gst.Pipeline>;
  const detach = ['video', ...(withAudio ? ['audio'] : [])].map((name) => hub.attachProducer(producer.getByName(name)!));
  producer.setState(Gst.State.PLAYING);

  const peers = new Map<string, InstanceType<typeof WebRtcPeer>>();
  // As the engine: shared viewers read one fan-out when the hub has no Opus audio (a --no-audio harness).
  const fanouts = new WebRtcFanouts(hub, (level, msg) => report({ type: 'log', level, msg }));
  const reportPeers = () => report({ type: 'peers', count: peers.size, fanouts: fanouts.size });
  let nextId = 1;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/' || req.url?.startsWith('/?')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(VIEWER_PAGE);
    } else if (req.method === 'POST' && req.url === '/fanout/break') {
      // A real error in the fan-out's pipeline: caps its h264parse refuses (not-negotiated on the next buffer).
      const fanout = fanouts.current;
      const caps = Gst.Caps.fromString('audio/x-raw,format=S16LE,rate=48000,channels=1');
      if (fanout && caps) asAppSrc(fanout.pipeline.getByName('videosrc')!).caps = caps;
      res.writeHead(fanout ? 204 : 404).end();
    } else {
      res.writeHead(404).end();
    }
  });
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (ws, req) => {
    const id = `viewer-${nextId++}`;
    const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
    const mode = query.get('mode') === 'shared' ? 'shared' : 'per-viewer';
    const launch = LAUNCHES[query.get('launch') ?? 'default'] ?? PER_VIEWER_LAUNCH;
    const t0 = performance.now();
    const ms = () => Math.round(performance.now() - t0);
    let closeStarted = t0;
    let peer: InstanceType<typeof WebRtcPeer>;
    try {
      peer = new WebRtcPeer({
        id,
        mode,
        launch,
        hub,
        fanouts,
        turnServers: query.getAll('turn'),
        ...(query.has('stun') ? { stunServer: query.get('stun')! } : {}),
        onSignal: (msg) => {
          if ('sdp' in msg) report({ type: 'offer', id, sdp: msg.sdp.sdp, ms: ms() });
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
        },
        onState: (state, reason) => {
          report({ type: 'state', id, state, ...(reason ? { reason } : {}), ms: ms() });
          // As the web server will: a failed peer ends its viewer's socket (the page can retry).
          if (state === 'failed' && ws.readyState === ws.OPEN) ws.close(4000, (reason ?? 'failed').slice(0, 120));
          if (state === 'closed') {
            peers.delete(id);
            report({ type: 'closed', id, closeMs: Math.round(performance.now() - closeStarted) });
            reportPeers();
          }
        },
        onStats: (stats) => report({ type: 'stats', id, stats: { ...stats } }),
      });
    } catch (error) {
      report({ type: 'error', error: String(error) });
      ws.close(1011, String(error).slice(0, 120));
      return;
    }
    peers.set(id, peer);
    report({ type: 'peer', id, mode });
    ws.on('message', (data) => {
      const parsed = parseSignal(String(data));
      if (!parsed.ok) {
        report({ type: 'refused', id, reason: parsed.reason });
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ error: parsed.reason }));
        return;
      }
      try {
        peer.handleSignal(parsed.msg);
      } catch (error) {
        report({ type: 'signal-error', id, error: String(error) });
      }
    });
    ws.on('close', () => {
      closeStarted = performance.now();
      peer.close();
    });
    peer.start();
    // After start: a shared viewer has joined its fan-out by now.
    reportPeers();
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // Shared mode decides on audio from the hub's caps: wait until the producer has published them.
  const wanted = withAudio ? ['video', 'audio'] : ['video'];
  while (!wanted.every((name) => hub.stats()[name]?.caps)) await new Promise((resolve) => setTimeout(resolve, 20));
  const address = server.address();
  report({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0, audio: withAudio });

  // stdin closing is the test saying goodbye (it also happens when the test process dies).
  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const peer of peers.values()) peer.close();
    fanouts.close();
    wss.close();
    server.close();
    for (const fn of detach) fn();
    setTimeout(() => {
      producer.setState(Gst.State.NULL);
      loop.quit();
      process.exit(0);
    }, 100);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stdout.write(`${JSON.stringify({ type: 'error', error: String(error) })}\n`);
    process.exit(1);
  });
}
