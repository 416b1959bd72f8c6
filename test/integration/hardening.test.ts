import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fork } from 'node:child_process';
import { WebSocket } from 'ws';
import { ENGINE_ENTRY } from '../../actors/engineChildActor.js';
import { ModuleProcess } from '../support/ModuleProcess.js';

const LIVE = 'videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! fakesink';
const LOOPBACK = { http: { port: 0, address: '127.0.0.1' }, metrics: { port: null }, rtsp: { port: 0, address: '127.0.0.1' } };
/** How long a graceful stop may take here: the pipelines' EOS, the engine's exit, the hub's bounded last report. */
const STOP_BOUND_MS = 30_000;

const modules: ModuleProcess[] = [];
const dirs: string[] = [];
const servers: Server[] = [];
after(async () => {
  await Promise.all(modules.map((m) => m.stop()));
  for (const server of servers) server.close();
  for (const dir of [...dirs, ...modules.map((m) => m.dir)]) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gst-iotedge-hardening-'));
  dirs.push(dir);
  return dir;
}

function start(desired: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, twinFile = true): ModuleProcess {
  const module = new ModuleProcess({ desired, env: { LOG_LEVEL: 'info', ...env }, twinFile });
  modules.push(module);
  return module;
}

/** A local TCP port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A hub that takes the TCP connection and never says a word (no TLS handshake, no MQTT). */
async function silentHub(): Promise<number> {
  const held: Socket[] = [];
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    held.push(socket);
  });
  server.on('close', () => held.forEach((s) => s.destroy()));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** IoT Hub mode against a hub at `port` on loopback (refused or silent), with `stateDir` for the cached document. */
function hubEnv(port: number, stateDir: string): NodeJS.ProcessEnv {
  const key = randomBytes(32).toString('base64');
  return {
    EdgeHubConnectionString: `HostName=hub.invalid;DeviceId=edge-1;ModuleId=gst;SharedAccessKey=${key};GatewayHostName=127.0.0.1:${port}`,
    STATE_DIR: stateDir,
    REPORT_INTERVAL_MS: '100',
  };
}

/** A state folder (0700, ours) with `content` as its cached desired document. */
function stateDirWith(content: string | Buffer | null): string {
  const dir = join(tempDir(), 'state');
  mkdirSync(dir, { mode: 0o700 });
  if (content !== null) writeFileSync(join(dir, 'last-desired.json'), content);
  return dir;
}

describe('SIGTERM in IoT Hub mode before the hub ever answers', () => {
  for (const [label, hub] of [
    ['a hub port that refuses connections', closedPort],
    ['a hub that accepts the connection and never answers', silentHub],
  ] as const) {
    it(`stops the cached document's pipeline gracefully and exits 0 (${label})`, async () => {
      const module = start({}, hubEnv(await hub(), stateDirWith(JSON.stringify({ pipeline: LIVE }))), false);
      await module.waitForLog((l) => l.event === 'cached-desired', 20_000);
      await module.waitForPipeline('main', 'playing', 30_000);
      assert.ok(!module.logs.some((l) => l.event === 'iothub-connected'), 'the hub never answered');
      const from = module.logs.length;
      const stopping = Date.now();
      module.child.kill('SIGTERM');
      const exit = await Promise.race([module.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), STOP_BOUND_MS))]);
      assert.notEqual(exit, 'hung', `still running ${STOP_BOUND_MS} ms after SIGTERM; last output:\n${module.output.slice(-10).join('\n')}`);
      assert.deepEqual(exit, { code: 0, signal: null }, `exit after ${Date.now() - stopping} ms`);
      const stopped = module.logs.slice(from);
      assert.ok(stopped.some((l) => l.event === 'pipeline-state' && l.pipeline === 'main' && l.state === 'stopped'), 'the main pipeline was stopped, not killed');
      assert.ok(stopped.some((l) => l.event === 'stopped' && l.code === 0));
    });
  }
});

/** The pids of a process's children now (the media engine, for the module). */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('SIGTERM in IoT Hub mode while it starts (loading the IoT Hub SDK, reading the cached document)', () => {
  it('exits 0 and leaves no media engine behind', async () => {
    const module = start({}, hubEnv(await closedPort(), stateDirWith(JSON.stringify({ pipeline: LIVE }))), false);
    await module.waitForLog((l) => l.event === 'started', 20_000);
    const children = childrenOf(module.child.pid!);
    module.child.kill('SIGTERM');
    const exit = await Promise.race([module.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), STOP_BOUND_MS))]);
    assert.deepEqual(exit, { code: 0, signal: null }, `last output:\n${module.output.slice(-10).join('\n')}`);
    const deadline = Date.now() + 10_000;
    while (children.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(children.filter(alive), [], 'the media engine exited with the module');
  });
});

describe('a media engine whose control plane went away while it was still loading', () => {
  it('exits by itself (its IPC channel closed before the engine listened for that)', async () => {
    const engine = fork(ENGINE_ENTRY, [], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    // At once: the engine's modules (node-gtk, GStreamer) are still loading, over the event loop.
    engine.disconnect();
    const exit = await Promise.race([
      new Promise<number | null>((resolve) => engine.once('exit', (code) => resolve(code))),
      new Promise<'alive'>((resolve) => setTimeout(() => resolve('alive'), 30_000)),
    ]);
    if (exit === 'alive') engine.kill('SIGKILL');
    assert.equal(exit, 0, 'the engine exited on its own, with 0');
  });
});

describe('a cached desired document that cannot be read', () => {
  for (const [label, content] of [
    ['empty', ''],
    ['cut short', '{"pipeline": "videotestsrc is-li'],
    ['not JSON', 'not json at all'],
    ['binary', randomBytes(64)],
  ] as const) {
    it(`is a warning, and the module keeps running (${label})`, async () => {
      const module = start({}, hubEnv(await closedPort(), stateDirWith(content)), false);
      await module.waitForLog((l) => l.event === 'started', 20_000);
      const warning = await module.waitForLog((l) => l.event === 'cached-desired-unreadable', 20_000);
      assert.equal(warning.level, 40, 'a warning');
      assert.match(warning.msg, /last-desired\.json/);
      // It goes on to the hub (and fails there: nothing listens) instead of ending.
      await module.waitForLog((l) => l.event === 'iothub-connect-failed', 30_000);
      assert.equal(module.child.exitCode, null);
      assert.equal(module.child.signalCode, null);
    });
  }
});

describe('the state folder is private', () => {
  it('is created with mode 0700', async () => {
    const stateDir = join(tempDir(), 'new-state');
    const module = start({}, hubEnv(await closedPort(), stateDir), false);
    await module.waitForLog((l) => l.event === 'started', 20_000);
    assert.equal(statSync(stateDir).mode & 0o777, 0o700);
  });

  it('is tightened to 0700 when it is ours but open to others', async () => {
    const stateDir = stateDirWith(null);
    chmodSync(stateDir, 0o755);
    const module = start({}, hubEnv(await closedPort(), stateDir), false);
    await module.waitForLog((l) => l.event === 'started', 20_000);
    assert.equal(statSync(stateDir).mode & 0o777, 0o700);
  });

  it('makes the module refuse to start, with exit code 2 and the reason, when it belongs to another user', { skip: process.getuid?.() !== 0 ? 'needs root to chown' : false }, async () => {
    const stateDir = stateDirWith(JSON.stringify({ pipeline: LIVE }));
    chownSync(stateDir, 12345, 12345);
    const module = start({}, hubEnv(await closedPort(), stateDir), false);
    const exit = await Promise.race([module.exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 20_000))]);
    assert.deepEqual(exit, { code: 2, signal: null }, `output:\n${module.output.slice(-10).join('\n')}`);
    assert.ok(
      module.output.some((line) => /STATE_DIR/.test(line) && /belongs to uid 12345/.test(line)),
      `a clear message; output:\n${module.output.slice(-10).join('\n')}`,
    );
    assert.ok(!module.logs.some((l) => l.event === 'pipeline-state'), 'nothing ran from a folder someone else controls');
  });
});

describe('a pipeline that pours binary into stdout', () => {
  it('leaves the module and the main pipeline running and the log bounded', async () => {
    const module = start({ ...LOOPBACK, pipeline: LIVE });
    await module.waitForPipeline('main', 'playing', 30_000);
    const from = module.logs.length;
    const outputFrom = module.output.length;
    module.writeDesired({ ...LOOPBACK, pipeline: LIVE, pipelines: { pour: 'videotestsrc ! video/x-raw,width=640,height=480 ! fdsink fd=1' } });
    await module.waitForPipeline('pour', 'playing', 30_000, from);
    const dropped = await module.waitForLog((l) => /lines of output dropped/.test(String(l.msg)), 20_000, from);
    assert.equal(dropped.stream, 'gstreamer');
    // Some seconds of pouring, measured by what the module logged meanwhile (a second "dropped" report).
    await module.waitForLog((l) => l !== dropped && /lines of output dropped/.test(String(l.msg)), 20_000, module.logs.indexOf(dropped) + 1);
    assert.equal(module.child.exitCode, null);
    const since = module.logs.slice(from);
    assert.ok(!since.some((l) => l.event === 'pipeline-state' && l.pipeline === 'main'), 'the main pipeline was not touched');
    assert.ok(!since.some((l) => l.event === 'engine-died' || l.event === 'engine-ready'), 'the engine was not restarted');
    const longest = Math.max(...module.output.slice(outputFrom).map((line) => Buffer.byteLength(line)));
    assert.ok(longest <= 9 * 1024, `the longest log line is ${longest} bytes`);
  });
});

describe('a launch line that takes GStreamer\'s parser minutes (3,500 nested bins)', () => {
  // Found by the twin fuzz: parse time grows with the nesting (1,000: 5 s, 2,000: 18 s, 3,000: 60 s with
  // gst-launch-1.0 here) on the engine's main thread, where the hang watchdog cannot tell it from a hang. The
  // module bounds the nesting (config/launch.ts MAX_BIN_DEPTH) and refuses the document.
  it('is refused with the reason while the main pipeline keeps running and the engine is never restarted', async () => {
    const module = start({ ...LOOPBACK, pipeline: LIVE });
    await module.waitForPipeline('main', 'playing', 30_000);
    const from = module.logs.length;
    const nested = `${'('.repeat(3_500)}fakesrc num-buffers=1 ! fakesink${')'.repeat(3_500)}`;
    module.writeDesired({ ...LOOPBACK, pipeline: LIVE, pipelines: { deep: { pipeline: nested, on_eos: 'stop' } } });
    // Refused by the bound, well within the watchdog's 20 s; the engine never sees it.
    const verdict = await Promise.race([
      module.waitForLog((l) => l.event === 'config-applied' || l.event === 'config-rejected', 30_000, from),
      module.waitForLog((l) => l.event === 'engine-died', 30_000, from),
    ]);
    assert.equal(verdict.event, 'config-rejected', `the document was refused: ${String(verdict.msg)}`);
    assert.match(String(verdict.msg), /bins nested 3500 deep; at most 64/);
    const since = module.logs.slice(from);
    assert.deepEqual(since.filter((l) => l.event === 'engine-died').map((l) => l.msg), []);
    assert.ok(!since.some((l) => l.event === 'pipeline-state' && l.pipeline === 'main'), 'the main pipeline was not touched');
  });
});

/** A WHEP offer as a browser sends it (recvonly H.264), without a browser. */
function staticOffer(): string {
  const fingerprint = Array.from(randomBytes(32), (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
  return [
    'v=0',
    'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'a=msid-semantic: WMS',
    'm=video 9 UDP/TLS/RTP/SAVPF 96',
    'c=IN IP4 0.0.0.0',
    'a=rtcp:9 IN IP4 0.0.0.0',
    'a=ice-ufrag:hRdN',
    'a=ice-pwd:hardeninghardeninghardening',
    'a=ice-options:trickle',
    `a=fingerprint:sha-256 ${fingerprint}`,
    'a=setup:actpass',
    'a=mid:0',
    'a=recvonly',
    'a=rtcp-mux',
    'a=rtpmap:96 H264/90000',
    'a=rtcp-fb:96 nack pli',
    'a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
    'a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host',
    '',
  ].join('\r\n');
}

/** Opens /ws and collects what the module sends until it closes the socket (or `timeoutMs`). */
function viewerSocket(url: string, timeoutMs: number): Promise<{ messages: string[]; code: number | null; reason: string }> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url);
    const messages: string[] = [];
    const timer = setTimeout(() => {
      socket.terminate();
      resolve({ messages, code: null, reason: '' });
    }, timeoutMs);
    socket.on('message', (data) => messages.push(data.toString()));
    socket.on('error', () => undefined);
    socket.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ messages, code, reason: reason.toString() });
    });
  });
}

describe('a per-viewer webrtc_pipeline whose failure quotes an expanded secret', () => {
  // The camera is not there; its element name and its URI carry the secret, so GStreamer's error quotes it.
  const secret = `cam-${randomBytes(10).toString('hex')}`;
  const forms = [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64'), Buffer.from(`u:${secret}`).toString('base64')];
  const leaked = (text: string) => forms.filter((form) => text.includes(form));
  const launch =
    'webrtcbin name=webrtcbin rtspsrc name=src-$CAM_PASSWORD protocols=GST_RTSP_LOWER_TRANS_TCP location=rtsp://u:$CAM_PASSWORD@127.0.0.1:1/x ! rtph264depay ! h264parse ! rtph264pay config-interval=-1 name=payloader ! application/x-rtp,media=video,encoding-name=H264,payload=96 ! webrtcbin.';
  let module: ModuleProcess;
  let base = '';

  it('is tried over WHEP: the answer never holds the secret', async () => {
    module = start({ ...LOOPBACK, webrtc_pipeline: launch, webrtc: { negotiation_timeout_ms: 8_000 } }, { CAM_PASSWORD: secret });
    const http = await module.waitForLog((l) => l.event === 'http-listening', 30_000);
    await module.waitForLog((l) => l.event === 'config-applied', 30_000);
    base = `http://127.0.0.1:${http.port as number}`;
    const from = module.logs.length;
    const response = await fetch(`${base}/whep/player`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: staticOffer() });
    const body = await response.text();
    assert.deepEqual(leaked(body), [], `the WHEP answer (${response.status}) holds the secret: ${body.slice(0, 500)}`);
    if (response.status === 201) {
      // Answered before the camera failed: the failure comes after, and goes to the log only.
      await module.waitForLog((l) => l.event === 'webrtc-closed', 30_000, from);
    } else {
      assert.equal(response.status, 500);
      assert.equal(typeof (JSON.parse(body) as { error: unknown }).error, 'string');
    }
  });

  it('is tried over /ws: the close reason never holds the secret', async () => {
    const from = module.logs.length;
    const { code, reason } = await viewerSocket(`${base.replace('http', 'ws')}/ws`, 30_000);
    assert.notEqual(code, null, 'the module closed the socket of a viewer whose pipeline failed');
    assert.deepEqual(leaked(reason), [], `close ${code} ${reason}`);
    await module.waitForLog((l) => l.event === 'webrtc-closed', 20_000, from);
  });

  it('never shows the secret in any log line; its ${CAM_PASSWORD} form may be there', () => {
    const lines = module.output.filter((line) => leaked(line).length > 0);
    assert.deepEqual(lines.map((l) => l.slice(0, 300)), []);
    assert.ok(
      module.output.some((line) => line.includes('${CAM_PASSWORD}')),
      'the failure did quote the secret (redacted), so the check above is not vacuous',
    );
  });

  it('still serves the next viewer after a viewer\'s peer failed in the engine (an offer or a close, never silence)', async () => {
    const from = module.logs.length;
    const { messages, code } = await viewerSocket(`${base.replace('http', 'ws')}/ws`, 20_000);
    assert.ok(messages.length > 0 || code !== null, 'the module said nothing to the next viewer in 20 s');
    const uncaught = module.logs.slice(from).filter((l) => l.event === 'uncaught');
    assert.deepEqual(uncaught.map((l) => String(l.msg).slice(0, 300)), [], 'nothing reached the crash policy');
  });
});

describe('the status event stream', () => {
  it('refuses subscribers beyond its cap (64) with 503, and the earlier ones keep streaming', async () => {
    const module = start({ ...LOOPBACK, pipeline: LIVE });
    const http = await module.waitForLog((l) => l.event === 'http-listening', 30_000);
    await module.waitForPipeline('main', 'playing', 30_000);
    const url = `http://127.0.0.1:${http.port as number}/api/status/events`;
    /** One subscriber: its events so far, everything it was sent, and when the server ended it. */
    type Stream = { response: IncomingMessage; data: string[]; text: string; ended: Promise<void> };
    const open = (): Promise<Stream> =>
      new Promise((resolve, reject) => {
        get(url, (response) => {
          const stream: Stream = { response, data: [], text: '', ended: new Promise((done) => response.on('end', done)) };
          response.setEncoding('utf8');
          let buffered = '';
          response.on('data', (chunk: string) => {
            stream.text += chunk;
            buffered += chunk;
            for (let end = buffered.indexOf('\n\n'); end !== -1; end = buffered.indexOf('\n\n')) {
              const event = buffered.slice(0, end);
              buffered = buffered.slice(end + 2);
              if (event.startsWith('data: ')) stream.data.push(event.slice(6));
            }
          });
          resolve(stream);
        }).on('error', reject);
      });
    const streams: Stream[] = [];
    try {
      for (let i = 0; i < 64; i++) streams.push(await open());
      assert.ok(streams.every((s) => s.response.statusCode === 200));
      const refused = await open();
      streams.push(refused);
      assert.equal(refused.response.statusCode, 503);
      await refused.ended;
      assert.match((JSON.parse(refused.text) as { error: string }).error, /too many status streams \(64\)/);
      // A change of status reaches every stream admitted before the refusal.
      const version = module.writeDesired({ ...LOOPBACK, pipeline: LIVE });
      const deadline = Date.now() + 20_000;
      const got = (s: Stream) => s.data.some((d) => (JSON.parse(d) as { config: { appliedVersion: number | null } }).config.appliedVersion === version);
      while (!streams.slice(0, 64).every(got) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(streams.slice(0, 64).filter(got).length, 64, 'every admitted stream got the new status');
      // One leaves: there is room again.
      streams[0]!.response.destroy();
      let again: Stream | null = null;
      for (let attempt = 0; attempt < 50 && again?.response.statusCode !== 200; attempt++) {
        again?.response.destroy();
        await new Promise((resolve) => setTimeout(resolve, 100));
        again = await open();
      }
      streams.push(again!);
      assert.equal(again!.response.statusCode, 200, 'a stream is admitted once one left');
    } finally {
      for (const s of streams) s.response.destroy();
    }
  });
});
