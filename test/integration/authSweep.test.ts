import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { ModuleProcess } from '../support/ModuleProcess.js';
import { RtspTcpClient } from '../support/RtspTcpClient.js';
import { generateTestCerts, type TestCerts } from '../support/testCerts.js';

const MOUNT = '( videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=15/1 ! x264enc tune=zerolatency speed-preset=ultrafast ! rtph264pay name=pay0 pt=96 )';

/** Every path the web server serves or could be asked for, in the forms that reach the same files. */
const WEB_PATHS = [
  '/',
  '/wwwroot/index.html',
  '/wwwroot/webrtc.html',
  '/wwwroot/hls.html',
  '/wwwroot/dash.html',
  '/wwwroot/auth.js',
  '/wwwroot/vendor/hls.js',
  '/wwwroot/vendor/dash.js',
  '/wwwroot/%69ndex.html',
  '/wwwroot/vendor/../index.html',
  '/api/status',
  '/api/status/events',
  '/api/session',
  '/metrics',
  '/media/',
  '/media/playlist.m3u8',
  '/media/segment00001.ts',
  '/media/%70laylist.m3u8',
  '/whep/player',
  '/whep/player/00000000-0000-4000-8000-000000000000',
  '/ws',
  '/ws?mode=shared',
  '/favicon.ico',
  '/no/such/route',
];
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
/** RTSP methods that would give media: each mount, its track, and a mount that does not exist. */
const RTSP_METHODS = ['DESCRIBE', 'SETUP', 'PLAY'];
const RTSP_PATHS = ['/player', '/player/stream=0', '/cam2', '/cam2/stream=0', '/nope', ''];

interface Probe {
  readonly what: string;
  /** Status code (HTTP or RTSP), 101 for a websocket that opened, 0 when the connection closed without one. */
  readonly status: number;
}

/** An HTTP(S) request without credentials: its status. */
function httpStatus(url: string, method: string, headers: Record<string, string> = {}): Promise<number> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = send(target, { method, headers, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.setTimeout(5_000, () => req.destroy());
    req.end(method === 'POST' || method === 'PUT' || method === 'PATCH' ? 'v=0\r\n' : undefined);
  });
}

/** A websocket upgrade without credentials: 101 if it was taken, else the status it was answered with. */
function upgradeStatus(url: string): Promise<number> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = send(target, {
      rejectUnauthorized: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 101);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.setTimeout(5_000, () => req.destroy());
    req.end();
  });
}

/** One RTSP request without credentials on a fresh connection (TLS for RTSPS): its status. */
function rtspStatus(port: number, tls: boolean, method: string, path: string): Promise<number> {
  return new Promise((resolve) => {
    const url = `${tls ? 'rtsps' : 'rtsp'}://127.0.0.1:${port}${path}`;
    const extra = method === 'SETUP' ? 'Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n' : method === 'DESCRIBE' ? 'Accept: application/sdp\r\n' : '';
    const onConnect = () => socket.write(`${method} ${url} RTSP/1.0\r\nCSeq: 1\r\n${extra}\r\n`);
    const socket: Socket = tls ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, onConnect) : connect(port, '127.0.0.1', onConnect);
    let text = '';
    const done = (status: number) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const status = /^RTSP\/1\.0 (\d{3})/.exec(text);
      if (status) done(Number(status[1]));
    });
    socket.on('error', () => done(0));
    socket.on('close', () => done(0));
    const timer = setTimeout(() => done(0), 5_000);
  });
}

describe('an unauthenticated sweep of every route and mount on every port', () => {
  let pki: TestCerts;
  let mediaRoot: string;
  let module: ModuleProcess;
  let web = 0;
  let metrics = 0;
  let rtsp = 0;
  let rtsps = 0;

  before(async () => {
    pki = await generateTestCerts();
    mediaRoot = mkdtempSync(join(tmpdir(), 'gst-iotedge-sweep-'));
    writeFileSync(join(mediaRoot, 'playlist.m3u8'), '#EXTM3U\n');
    writeFileSync(join(mediaRoot, 'segment00001.ts'), Buffer.alloc(188));
    module = new ModuleProcess({
      desired: {
        pipeline: 'videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=15/1 ! x264enc tune=zerolatency speed-preset=ultrafast ! h264parse ! appsink name=video max-buffers=30 drop=true sync=false',
        rtsp_pipeline: MOUNT,
        rtsp: { port: 0, address: '127.0.0.1', tls_port: 0, mounts: { cam2: MOUNT } },
        http: { port: 0, address: '127.0.0.1', media_root: mediaRoot },
        metrics: { port: 0, address: '127.0.0.1' },
        tls: { cert_file: pki.serverCertPath, key_file: pki.serverKeyPath },
        auth: { users: { alice: { password: '$ALICE_PW', rights: ['*'] } } },
      },
      env: { ALICE_PW: 'sweep-Pw-1' },
    });
    const [http, metricsLine, rtspLine] = await Promise.all([
      module.waitForLog((l) => l.event === 'http-listening'),
      module.waitForLog((l) => l.event === 'metrics-listening'),
      module.waitForLog((l) => l.event === 'rtsp-listening'),
    ]);
    web = http.port as number;
    metrics = metricsLine.port as number;
    rtsp = rtspLine.port as number;
    rtsps = rtspLine.tlsPort as number;
  });
  after(async () => {
    await module?.stop();
    if (module) rmSync(module.dir, { recursive: true, force: true });
    if (mediaRoot) rmSync(mediaRoot, { recursive: true, force: true });
    await pki?.cleanup();
  });

  it('refuses every request that would give anything, on HTTP, HTTPS, both metrics ports, RTSP and RTSPS', async () => {
    const probes: Probe[] = [];
    const origins = [
      ['HTTP', `http://127.0.0.1:${web}`],
      ['HTTPS', `https://127.0.0.1:${web}`],
      ['metrics HTTP', `http://127.0.0.1:${metrics}`],
      ['metrics HTTPS', `https://127.0.0.1:${metrics}`],
    ] as const;
    for (const [port, base] of origins) {
      for (const path of WEB_PATHS) {
        for (const method of METHODS) probes.push({ what: `${port} ${method} ${path}`, status: await httpStatus(`${base}${path}`, method, { accept: 'text/html,*/*' }) });
        probes.push({ what: `${port} websocket ${path}`, status: await upgradeStatus(`${base}${path}`) });
      }
    }
    for (const [port, number, tls] of [['RTSP', rtsp, false], ['RTSPS', rtsps, true]] as const) {
      for (const path of RTSP_PATHS) for (const method of RTSP_METHODS) probes.push({ what: `${port} ${method} ${path || '(no path)'}`, status: await rtspStatus(number, tls, method, path) });
    }
    // Refused: an error status (401, 403, 404, 405, 454 ...) or a connection closed without an answer.
    const let_in = probes.filter((p) => p.status !== 0 && p.status < 400);
    const byStatus = new Map<number, number>();
    for (const p of probes) byStatus.set(p.status, (byStatus.get(p.status) ?? 0) + 1);
    console.log(`sweep: ${probes.length - let_in.length}/${probes.length} refused (${(((probes.length - let_in.length) / probes.length) * 100).toFixed(1)}%); by status ${[...byStatus].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n}`).join(', ')}`);
    assert.deepEqual(let_in, []);
    assert.ok(probes.length > 700, `${probes.length} probes`);
    // Asked to sign in where a sign-in helps: the page and data routes answer 401, not 404, so clients send credentials.
    assert.ok(probes.filter((p) => p.status === 401).length > probes.length / 2);
  });

  it('answers only RTSP keep-alives and capability queries without credentials (no session, no media)', async () => {
    for (const [number, tls] of [[rtsp, false], [rtsps, true]] as const) {
      for (const method of ['OPTIONS', 'GET_PARAMETER']) assert.equal(await rtspStatus(number, tls, method, '/player'), 200, method);
      // Whatever SETUP did not give, PLAY cannot use.
      assert.equal(await rtspStatus(number, tls, 'PLAY', '/player'), 454);
    }
  });
});

describe('a certificate and key that do not belong together', () => {
  let pki: TestCerts;
  let other: TestCerts;
  before(async () => {
    [pki, other] = await Promise.all([generateTestCerts(), generateTestCerts()]);
  });
  after(async () => Promise.all([pki?.cleanup(), other?.cleanup()]));

  it('stop the start when they come from TLS_CERT_FILE / TLS_KEY_FILE, naming the files and the fingerprint', async () => {
    const module = new ModuleProcess({ desired: { http: { port: 0, address: '127.0.0.1' }, metrics: { port: null } }, env: { TLS_CERT_FILE: pki.serverCertPath, TLS_KEY_FILE: other.serverKeyPath } });
    const { code } = await module.exited;
    rmSync(module.dir, { recursive: true, force: true });
    assert.equal(code, 2);
    const said = module.output.join('\n');
    assert.match(said, /the private key does not belong to the certificate/);
    assert.ok(said.includes(pki.serverCertPath) && said.includes(other.serverKeyPath), said);
    assert.match(said, /fingerprint [0-9A-F]{2}(:[0-9A-F]{2}){31}/);
    assert.ok(!said.includes('PRIVATE KEY'), 'never the key');
  });

  it('refuse a twin that names them, with the reason in the reported properties, and the module keeps running', async () => {
    const module = new ModuleProcess({
      desired: { http: { port: 0, address: '127.0.0.1' }, metrics: { port: null }, tls: { cert_file: pki.serverCertPath, key_file: other.serverKeyPath } },
    });
    try {
      const reported = await module.waitForReported((r) => r.config.status === 'rejected', { after: 0 });
      assert.match(reported.config.error ?? '', /^tls: .*the private key does not belong to the certificate \(subject CN=localhost, fingerprint/);
      assert.equal(reported.tls, null);
      // The same twin with the right key is taken: it runs with TLS.
      const before = module.reportedVersion();
      const version = module.writeDesired({ http: { port: 0, address: '127.0.0.1' }, metrics: { port: null }, tls: { cert_file: pki.serverCertPath, key_file: pki.serverKeyPath } });
      const fixed = await module.waitForReported((r) => r.config.appliedVersion === version, { after: before });
      assert.equal(fixed.tls?.source, 'files');
    } finally {
      await module.stop();
      rmSync(module.dir, { recursive: true, force: true });
    }
  });
});

describe('turning auth on in a module that was open', () => {
  it('says at start that it is open, then closes the viewers anyone could open before (WebRTC, RTSP, the status stream)', async () => {
    const open = {
      pipeline: 'videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=15/1 ! x264enc tune=zerolatency speed-preset=ultrafast ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 ! appsink name=video max-buffers=30 drop=true sync=false',
      rtsp_pipeline: '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )',
      rtsp: { port: 0, address: '127.0.0.1' },
      http: { port: 0, address: '127.0.0.1' },
      metrics: { port: null },
    };
    const module = new ModuleProcess({ desired: open, env: { ALICE_PW: 'on-Pw-2' } });
    try {
      const [http, rtsp] = await Promise.all([module.waitForLog((l) => l.event === 'http-listening'), module.waitForLog((l) => l.event === 'rtsp-listening')]);
      const warned = await module.waitForLog((l) => l.event === 'auth-open');
      assert.equal(warned.level, 40);
      await module.waitForPipeline('main', 'playing');
      assert.equal(module.reported().properties.reported.auth, 'open');
      const ws = new WebSocket(`ws://127.0.0.1:${http.port as number}/ws`);
      const offered = new Promise<void>((resolve) => ws.once('message', () => resolve()));
      const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
      await offered;
      const viewer = new RtspTcpClient(`rtsp://127.0.0.1:${rtsp.port as number}/player`);
      await viewer.start(15_000);
      const events = await new Promise<import('node:http').IncomingMessage>((resolve, reject) =>
        httpRequest(`http://127.0.0.1:${http.port as number}/api/status/events`, resolve).on('error', reject).end(),
      );
      const streamEnded = new Promise<void>((resolve) => events.on('close', () => resolve()).resume());
      const before = module.reportedVersion();
      const version = module.writeDesired({ ...open, auth: { users: { alice: { password: '$ALICE_PW', rights: ['*'] } } } });
      const reported = await module.waitForReported((r) => r.config.appliedVersion === version, { after: before });
      assert.equal(reported.auth, 'protected');
      const timeout = (what: string) => new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} still open`)), 10_000));
      const { reason } = await Promise.race([closed, timeout('the websocket')]);
      assert.match(reason, /rights changed/);
      await Promise.race([viewer.closed, timeout('the RTSP viewer')]);
      await Promise.race([streamEnded, timeout('the status stream')]);
    } finally {
      await module.stop();
      rmSync(module.dir, { recursive: true, force: true });
    }
  });
});
