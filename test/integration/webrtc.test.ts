import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { gatheredRecvonlyOffer, launchChromium } from '../support/browser.js';
import { CameraSimulator } from '../support/cameraSimulator.js';
import { ModuleProcess } from '../support/ModuleProcess.js';

const SOURCE = (pattern: string) =>
  `videotestsrc is-live=true pattern=${pattern} ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 ! appsink name=video max-buffers=30 drop=true sync=false`;
const LOOPBACK = {
  http: { port: 0, address: '127.0.0.1', media_root: '/tmp' },
  metrics: { port: null },
  rtsp: { port: 0, address: '127.0.0.1' },
};

let browser: Browser;
const modules: ModuleProcess[] = [];
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser.close();
  await Promise.all(modules.map((m) => m.stop()));
  for (const m of modules) rmSync(m.dir, { recursive: true, force: true });
});

async function startModule(desired: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<{ module: ModuleProcess; base: string }> {
  const module = new ModuleProcess({ desired: { ...LOOPBACK, ...desired }, env });
  modules.push(module);
  const http = await module.waitForLog((l) => l.event === 'http-listening');
  return { module, base: `http://127.0.0.1:${http.port as number}` };
}

async function openPlayer(base: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${base}/wwwroot/webrtc.html`);
  return page;
}

async function framesDecoded(page: Page): Promise<number> {
  return (await page.evaluate('window.player.framesDecoded')) as number;
}

async function waitForFrames(page: Page, more: number, timeout = 20_000): Promise<void> {
  const from = await framesDecoded(page);
  await page.waitForFunction(`window.player.framesDecoded >= ${from + more}`, null, { timeout });
}

describe('WebRTC in shared-encode mode (the main pipeline\'s video appsink)', () => {
  let module: ModuleProcess;
  let base: string;
  before(async () => {
    ({ module, base } = await startModule({ pipeline: SOURCE('ball') }));
    await module.waitForPipeline('main', 'playing');
  });

  it('plays in webrtc.html: frames decode', async () => {
    const page = await openPlayer(base);
    await waitForFrames(page, 30);
    assert.equal(await page.evaluate('window.player.state'), 'connected');
    await page.close();
  });

  it('serves three viewers at once, and a closed viewer\'s peer is torn down in the engine', async () => {
    const opening = module.reportedVersion();
    const pages = await Promise.all([openPlayer(base), openPlayer(base), openPlayer(base)]);
    await Promise.all(pages.map((p) => waitForFrames(p, 30)));
    await module.waitForReported((r) => r.webrtc.peers === 3, { after: opening });
    const closingOne = module.reportedVersion();
    await pages[0]!.close();
    await module.waitForReported((r) => r.webrtc.peers === 2, { after: closingOne });
    const closingAll = module.reportedVersion();
    await Promise.all(pages.slice(1).map((p) => p.close()));
    const reported = await module.waitForReported((r) => r.webrtc.peers === 0, { after: closingAll });
    assert.equal(reported.webrtc.mode, 'shared');
  });

  it('keeps a viewer connected across a hot swap of the main pipeline', async () => {
    const page = await openPlayer(base);
    await waitForFrames(page, 30);
    const connects = await page.evaluate('window.player.connects');
    const from = module.logs.length;
    module.writeDesired({ ...LOOPBACK, pipeline: SOURCE('smpte') });
    const swapped = await module.waitForPipeline('main', 'playing', 20_000, from);
    assert.equal(swapped.template, SOURCE('smpte'));
    // Counted from now: frames of the new pipeline.
    await waitForFrames(page, 60);
    assert.equal(await page.evaluate('window.player.connects'), connects, 'the same connection all along');
    assert.equal(await page.evaluate('window.player.state'), 'connected');
    await page.close();
  });

  it('closes only the socket of a malformed or oversized signalling message, with a reason', async () => {
    const watching = await openPlayer(base);
    await waitForFrames(watching, 10);
    const ws = `${base.replace('http', 'ws')}/ws`;
    const bad: Array<string | Buffer> = [
      'not json',
      '',
      '[]',
      'null',
      '42',
      '"sdp"',
      '{}',
      '{"sdp":null}',
      '{"sdp":"v=0"}',
      '{"sdp":{"type":"answer"}}',
      '{"sdp":{"type":"answer","sdp":42}}',
      '{"sdp":{"type":"rollback","sdp":"v=0\\r\\nm=video 9 UDP 96"}}',
      '{"sdp":{"type":"answer","sdp":"hello"}}',
      '{"sdp":{"type":"answer","sdp":"v=0\\r\\nno media"}}',
      '{"sdp":{"type":"answer","sdp":"v=0\\r\\nm=video\\u0000"}}',
      '{"sdp":{"type":"answer","sdp":"v=0\\r\\nm=video 9","extra":1}}',
      '{"ice":null}',
      '{"ice":{}}',
      '{"ice":{"candidate":42,"sdpMLineIndex":0}}',
      '{"ice":{"candidate":"candidate:1","sdpMLineIndex":"0"}}',
      '{"ice":{"candidate":"candidate:1","sdpMLineIndex":-1}}',
      '{"ice":{"candidate":"candidate:1","sdpMLineIndex":1.5}}',
      '{"ice":{"candidate":"candidate:1","sdpMLineIndex":100000}}',
      `{"ice":{"candidate":"${'x'.repeat(5000)}","sdpMLineIndex":0}}`,
      '{"ice":{"candidate":"candidate:1\\r\\na=evil","sdpMLineIndex":0}}',
      '{"ice":{"candidate":"candidate:1","sdpMLineIndex":0,"sdpMid":{}}}',
      '{"ice":{"candidate":"candidate:1","sdpMLineIndex":0},"sdp":{"type":"answer","sdp":"v=0"}}',
      '{"__proto__":{"polluted":true}}',
      '{"bye":true}',
      `{"sdp":{"type":"answer","sdp":"v=0\\r\\nm=video ${'9'.repeat(70_000)}"}}`,
      Buffer.from([0x00, 0x01, 0x02]),
      '{"sdp":{"type":"answer","sdp":"v=0\\r\\nm=video 9 UDP/TLS/RTP/SAVPF 96"}',
    ];
    assert.ok(bad.length >= 30);
    for (const message of bad) {
      const socket = new WebSocket(ws);
      const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.on('open', resolve));
      socket.send(message);
      const { code, reason } = await closed;
      assert.ok(code === 1008 || code === 1009, `${String(message).slice(0, 60)} -> ${code} ${reason}`);
      if (code === 1008) assert.ok(reason.length > 0, 'a reason is given');
    }
    await waitForFrames(watching, 10);
    assert.equal(await watching.evaluate('window.player.state'), 'connected', 'other viewers are untouched');
    assert.equal(module.child.exitCode, null);
    await watching.close();
  });

  it('refuses viewers beyond max_peers with a clear reason', async () => {
    const after = module.reportedVersion();
    const version = module.writeDesired({ ...LOOPBACK, pipeline: SOURCE('smpte'), webrtc: { max_peers: 1 } });
    // This document applied, not the one before it (which allows more viewers).
    await module.waitForReported((r) => r.config.appliedVersion === version && r.webrtc.peers === 0, { after });
    const first = await openPlayer(base);
    await waitForFrames(first, 10);
    const second = new WebSocket(`${base.replace('http', 'ws')}/ws`);
    const { code, reason } = await new Promise<{ code: number; reason: string }>((resolve) =>
      second.on('close', (c, r) => resolve({ code: c, reason: r.toString() })),
    );
    assert.equal(code, 1013);
    assert.match(reason, /too many WebRTC viewers \(max_peers 1\)/);
    await first.close();
  });
});

describe('WebRTC per viewer (the seed\'s webrtc_pipeline)', () => {
  it('plays the seed\'s webrtc_pipeline from a camera in webrtc.html', async () => {
    const camera = await CameraSimulator.start({ user: 'viewer', password: 'cam-pass-123' });
    try {
      const { module, base } = await startModule(
        {
          webrtc_pipeline:
            'webrtcbin name=webrtcbin rtspsrc protocols=GST_RTSP_LOWER_TRANS_TCP location=rtsp://$USER:$PASSWORD@$IP/axis-media/media.amp ! rtph264depay ! h264parse ! rtph264pay config-interval=-1 name=payloader ! application/x-rtp,media=video,encoding-name=H264,payload=96 ! webrtcbin.',
        },
        { USER: camera.user, PASSWORD: camera.password, IP: `127.0.0.1:${camera.port}` },
      );
      await module.waitForLog((l) => l.event === 'config-applied');
      const opening = module.reportedVersion();
      const page = await openPlayer(base);
      await waitForFrames(page, 30, 30_000);
      const reported = await module.waitForReported((r) => r.webrtc.peers === 1, { after: opening });
      assert.equal(reported.webrtc.mode, 'per-viewer');
      const closing = module.reportedVersion();
      await page.close();
      await module.waitForReported((r) => r.webrtc.peers === 0, { after: closing });
    } finally {
      await camera.stop();
    }
  });
});

describe('WHEP', () => {
  it('answers an offer POSTed by an RTCPeerConnection in chromium, plays, and stops on DELETE', async () => {
    const { module, base } = await startModule({ pipeline: SOURCE('ball') });
    await module.waitForPipeline('main', 'playing');
    const opening = module.reportedVersion();
    const page = await browser.newPage();
    await page.goto(`${base}/wwwroot/index.html`);
    // The page's own code: a standard WHEP client (non-trickle: it waits for its candidates, then POSTs).
    const location = (await page.evaluate(`(async () => {
      ${gatheredRecvonlyOffer()}
      const response = await fetch('/whep/player', { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp });
      if (response.status !== 201) throw new Error('WHEP POST answered ' + response.status + ': ' + await response.text());
      await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
      window.whep = pc;
      return response.headers.get('location');
    })()`)) as string;
    assert.match(location, /^\/whep\/player\/[0-9a-f-]{36}$/);
    const decoded = `(async () => { let n = 0; (await window.whep.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') n = r.framesDecoded || 0; }); return n; })()`;
    await page.waitForFunction(`${decoded}.then((n) => n > 30)`, null, { timeout: 20_000, polling: 250 });
    await module.waitForReported((r) => r.webrtc.peers === 1, { after: opening });
    const closing = module.reportedVersion();
    const stop = await fetch(`${base}${location}`, { method: 'DELETE' });
    assert.equal(stop.status, 200);
    await module.waitForReported((r) => r.webrtc.peers === 0, { after: closing });
    assert.equal((await fetch(`${base}${location}`, { method: 'DELETE' })).status, 404);
    const bad = await fetch(`${base}/whep/player`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'not sdp' });
    assert.equal(bad.status, 400);
    const wrongType = await fetch(`${base}/whep/player`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'v=0' });
    assert.equal(wrongType.status, 415);
    // An offer to `/whep/` (no name) creates nothing: it was answered 201 with the Location "/whep//<id>".
    const sdp = (await page.evaluate(`(async () => { ${gatheredRecvonlyOffer()} const sdp = pc.localDescription.sdp; pc.close(); return sdp; })()`)) as string;
    const noName = await fetch(`${base}/whep/`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: sdp });
    assert.equal(noName.status, 404);
    await page.close();
  });
});

describe('ICE settings for real deployments', () => {
  it('offers host candidates at the advertised address (containers, NAT)', async () => {
    const { module, base } = await startModule({ pipeline: SOURCE('ball'), webrtc: { advertised_host: '203.0.113.7' } });
    await module.waitForPipeline('main', 'playing');
    const opening = module.reportedVersion();
    const socket = new WebSocket(`${base.replace('http', 'ws')}/ws`);
    const candidates: string[] = [];
    let offer = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no host candidate in 30 s (offer: ${offer.length} bytes)`)), 30_000);
      socket.on('message', (data) => {
        const msg = JSON.parse(data.toString()) as { sdp?: { sdp: string }; ice?: { candidate: string } };
        if (msg.sdp) offer = msg.sdp.sdp;
        if (msg.ice?.candidate.includes(' typ host')) candidates.push(msg.ice.candidate);
        if (offer && candidates.length > 0) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    // The peer is counted while the socket is open, and gone once it closes: a document from before the
    // socket opened (0 peers too) cannot answer for the teardown.
    await module.waitForReported((r) => r.webrtc.peers === 1, { after: opening });
    const closing = module.reportedVersion();
    socket.close();
    for (const candidate of candidates) {
      const fields = candidate.split(' ');
      assert.equal(fields[4], '203.0.113.7', candidate);
    }
    assert.match(offer, /profile-level-id=42e01f/);
    await module.waitForReported((r) => r.webrtc.peers === 0, { after: closing });
  });
});
