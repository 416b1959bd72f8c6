import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { WebRtcHarness, type HarnessEvent } from '../support/webrtcHarness.js';


/** What the viewer page reports about one of its peer connections (see VIEWER_PAGE). */
interface ViewerStats {
  framesDecoded: number;
  audioPackets: number;
  videoCodec: string | null;
  firstFrameMs: number | null;
  states: string[];
  errors: string[];
  offer: string | null;
  /** 0 connecting, 1 open, 3 closed. */
  ws: number;
  closeCode?: number;
  closeReason?: string;
}

describe('WebRtcPeer with a real browser', () => {
  let harness: WebRtcHarness;
  let browser: Browser;
  let page: Page;

  before(async () => {
    harness = await WebRtcHarness.start({ audio: true });
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(harness.url);
  });
  after(async () => {
    await browser?.close();
    const code = await harness?.stop();
    assert.equal(code, 0, `harness exit code; stderr:\n${harness?.stderr.slice(-20).join('\n')}`);
  });

  // Page code goes as strings: this project compiles without the DOM types.
  /** Opens a viewer on the page; `query` goes on the websocket URL (harness options: launch, turn, stun). */
  const startViewer = (mode: 'shared' | 'per-viewer', query = '') =>
    page.evaluate(`window.startViewer(${JSON.stringify(mode)}, ${JSON.stringify(query)})`) as Promise<number>;
  const viewerStats = (index: number) => page.evaluate(`window.viewerStats(${index})`) as Promise<ViewerStats>;
  const closeViewer = (index: number) => page.evaluate(`window.closeViewer(${index})`);
  const sendRaw = (index: number, text: string) => page.evaluate(`window.sendRaw(${index}, ${JSON.stringify(text)})`);

  /** Resolves with the viewer's stats once it has decoded `count` frames; rejects with what it saw after `timeoutMs`. */
  async function framesDecoded(index: number, count: number, timeoutMs = 30_000): Promise<ViewerStats> {
    const deadline = Date.now() + timeoutMs;
    let stats = await viewerStats(index);
    while (stats.framesDecoded < count) {
      if (Date.now() > deadline) {
        const events = harness.events.slice(-8).map((e) => JSON.stringify(e).slice(0, 200));
        throw new Error(`viewer ${index} decoded ${stats.framesDecoded}/${count} frames: ${JSON.stringify({ ...stats, offer: undefined })}\n${events.join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      stats = await viewerStats(index);
    }
    return stats;
  }

  /** Closes the viewers' sockets and waits until the harness has no peer left. */
  async function closeAll(indexes: number[]): Promise<void> {
    const from = harness.events.length;
    for (const index of indexes) await closeViewer(index);
    await harness.waitFor((e) => e.type === 'peers' && e.count === 0, 30_000, from);
  }

  /** The harness id of the peer behind the page's viewer `index` (peers are numbered in connection order). */
  async function peerIdOf(from: number): Promise<string> {
    const event = await harness.waitFor((e): e is Extract<HarnessEvent, { type: 'peer' }> => e.type === 'peer', 20_000, from);
    return event.id;
  }

  it('streams the shared encode to a viewer: H.264 frames decoded, Opus audio received', async (t) => {
    const from = harness.events.length;
    const index = await startViewer('shared');
    const id = await peerIdOf(from);
    const first = await framesDecoded(index, 1);
    const later = await framesDecoded(index, first.framesDecoded + 30);
    assert.ok(later.framesDecoded > first.framesDecoded, 'framesDecoded rises');
    assert.match(later.videoCodec ?? '', /^video\/H264 /);
    assert.ok(later.audioPackets > 0, 'Opus audio packets arrive');
    assert.deepEqual(later.errors, []);
    const connected = await harness.waitFor((e) => e.type === 'state' && e.id === id && e.state === 'connected', 20_000, from);
    // webrtcbin's get-stats, read while connected.
    const stats = await harness.waitFor((e) => e.type === 'stats' && e.id === id && Number(e.stats.packetsSent) > 0, 20_000, from);
    assert.ok(stats.type === 'stats' && Number(stats.stats.bytesSent) > 0, 'bytes sent are counted');
    t.diagnostic(`first frame decoded ${Math.round(later.firstFrameMs ?? NaN)} ms after the page opened the socket; peer connected at ${connected.type === 'state' ? connected.ms : '?'} ms`);
    await closeAll([index]);
  });

  it('offers H.264 with profile-level-id=42e01f and packetization-mode=1, as Firefox and Safari need', async () => {
    const from = harness.events.length;
    const index = await startViewer('shared');
    const offer = await harness.waitFor((e): e is Extract<HarnessEvent, { type: 'offer' }> => e.type === 'offer', 20_000, from);
    const pt = /a=rtpmap:(\d+) H264\/90000/.exec(offer.sdp)?.[1];
    assert.ok(pt, 'the offer has H.264');
    const fmtp = new RegExp(`a=fmtp:${pt} (.*)`).exec(offer.sdp)?.[1] ?? '';
    assert.match(fmtp, /(^|;)profile-level-id=42e01f(;|$)/);
    assert.match(fmtp, /(^|;)packetization-mode=1(;|$)/);
    assert.match(offer.sdp, /a=rtpmap:\d+ OPUS\/48000/);
    await framesDecoded(index, 1);
    await closeAll([index]);
  });

  it('streams a per-viewer pipeline (the seed\'s webrtc_pipeline style) to a viewer', async (t) => {
    const from = harness.events.length;
    const index = await startViewer('per-viewer');
    const event = await harness.waitFor((e) => e.type === 'peer', 20_000, from);
    assert.equal(event.type === 'peer' && event.mode, 'per-viewer');
    const first = await framesDecoded(index, 1);
    const later = await framesDecoded(index, first.framesDecoded + 30);
    assert.match(later.videoCodec ?? '', /^video\/H264 /);
    const id = event.type === 'peer' ? event.id : '';
    const offered = harness.events.find((e) => e.type === 'offer' && e.id === id);
    const connected = harness.events.find((e) => e.type === 'state' && e.id === id && e.state === 'connected');
    t.diagnostic(
      `first frame decoded ${Math.round(later.firstFrameMs ?? NaN)} ms after the page opened the socket; ` +
        `offer at ${offered?.type === 'offer' ? offered.ms : '?'} ms, connected at ${connected?.type === 'state' ? connected.ms : '?'} ms`,
    );
    await closeAll([index]);
  });

  it('feeds a per-viewer line that reads the main pipeline (appsrc name=videosrc) from the sample hub', async () => {
    const index = await startViewer('per-viewer', 'launch=hub');
    const first = await framesDecoded(index, 1);
    const later = await framesDecoded(index, first.framesDecoded + 30);
    assert.match(later.videoCodec ?? '', /^video\/H264 /);
    await closeAll([index]);
  });

  it('serves three shared-mode viewers at once, and closing their sockets tears every peer down', async (t) => {
    const from = harness.events.length;
    const indexes = [await startViewer('shared'), await startViewer('shared'), await startViewer('shared')];
    await harness.waitFor((e) => e.type === 'peers' && e.count === 3, 20_000, from);
    const first = await Promise.all(indexes.map((i) => framesDecoded(i, 1)));
    const later = await Promise.all(indexes.map((i, n) => framesDecoded(i, first[n]!.framesDecoded + 30)));
    for (const stats of later) assert.match(stats.videoCodec ?? '', /^video\/H264 /);
    t.diagnostic(`first frames decoded after ${later.map((s) => Math.round(s.firstFrameMs ?? NaN)).join(', ')} ms (a shared viewer waits for the producer's next key frame)`);
    const closing = harness.events.length;
    await closeAll(indexes);
    const closed = harness.events.slice(closing).filter((e) => e.type === 'closed');
    assert.equal(closed.length, 3, 'each peer reports closed');
    t.diagnostic(`socket close to pipeline in NULL: ${closed.map((e) => (e.type === 'closed' ? e.closeMs : '?')).join(', ')} ms`);
    assert.equal(harness.peerCount, 0);
  });

  it('refuses a malformed signalling message with a reason, and the viewer keeps playing', async () => {
    const index = await startViewer('shared');
    const first = await framesDecoded(index, 1);
    const malformed = harness.events.length;
    await sendRaw(index, '{"ice":{"candidate":"candidate:1 1 UDP 1 1.2.3.4 9 typ host","sdpMLineIndex":"0"}}');
    const refused = await harness.waitFor((e) => e.type === 'refused', 20_000, malformed);
    assert.match(refused.type === 'refused' ? refused.reason : '', /sdpMLineIndex/);
    // A second answer is well formed but out of order: the peer refuses it and keeps its session.
    const outOfOrder = harness.events.length;
    await sendRaw(index, JSON.stringify({ sdp: { type: 'answer', sdp: 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n' } }));
    const error = await harness.waitFor((e) => e.type === 'signal-error', 20_000, outOfOrder);
    assert.match(error.type === 'signal-error' ? error.error : '', /no offer is waiting/);
    await framesDecoded(index, first.framesDecoded + 30);
    await closeAll([index]);
  });

  it('sends no offer for a pipeline that produces nothing, and tears it down when its owner closes it', async () => {
    // The control plane's peer machine bounds the wait and says why (test/unit/webrtcPeerMachine.test.ts); the
    // engine's part is to offer nothing it does not have, and to let go cleanly when told to.
    const from = harness.events.length;
    const index = await startViewer('per-viewer', 'launch=stalled');
    const id = await peerIdOf(from);
    await harness.waitFor((e) => e.type === 'state' && e.id === id && e.state === 'connecting', 20_000, from);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const ofPeer = () => harness.events.slice(from).filter((e) => 'id' in e && e.id === id);
    assert.deepEqual(ofPeer().filter((e) => e.type === 'offer'), [], 'no offer is sent');
    assert.deepEqual(ofPeer().filter((e) => e.type === 'state').map((e) => (e.type === 'state' ? e.state : '')), ['connecting']);
    const closing = harness.events.length;
    await closeViewer(index);
    await harness.waitFor((e) => e.type === 'closed' && e.id === id, 20_000, closing);
    await harness.waitFor((e) => e.type === 'peers' && e.count === 0, 20_000, closing);
    assert.deepEqual(ofPeer().filter((e) => e.type === 'state').map((e) => (e.type === 'state' ? e.state : '')), ['connecting', 'closed'], 'closed, not failed');
  });

  it('refuses a TURN server webrtcbin cannot use, without showing its password', async () => {
    const from = harness.events.length;
    const index = await startViewer('shared', `turn=${encodeURIComponent('http://user:s3cret@turn.example.com:3478')}`);
    const error = await harness.waitFor((e) => e.type === 'error', 20_000, from);
    const text = error.type === 'error' ? error.error : '';
    assert.match(text, /WebRtcPeerError: TURN server refused: http:\/\/\*\*\*@turn\.example\.com:3478/);
    assert.doesNotMatch(text, /s3cret/);
    const deadline = Date.now() + 20_000;
    while ((await viewerStats(index)).ws !== 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal((await viewerStats(index)).closeCode, 1011);
  });

  it('survives viewers leaving at any point of negotiation, and frees their sockets and threads', async (t) => {
    const before = await harness.settledResources();
    // Regression: a webrtcbin promise replied while the JS thread was inside setState(NULL) deadlocked the process.
    const delays = [0, 0, 20, 50, 80, 120, 160, 200, 250, 300, 400, 550];
    for (const [n, delay] of delays.entries()) {
      const indexes = [await startViewer('shared'), await startViewer(n % 2 ? 'per-viewer' : 'shared'), await startViewer('shared')];
      await new Promise((resolve) => setTimeout(resolve, delay));
      await closeAll(indexes);
    }
    // The engine still serves a new viewer.
    const index = await startViewer('shared');
    await framesDecoded(index, 10);
    await closeAll([index]);
    const after = await harness.settledResources();
    t.diagnostic(`${delays.length * 3 + 1} peers: fds ${before.fds} -> ${after.fds}, threads ${before.threads} -> ${after.threads}`);
    // A leaked webrtcbin holds about 3 fds (UDP, TCP listeners) and a thread or more; 37 of them would show.
    assert.ok(after.fds <= before.fds + 3, `fds ${before.fds} -> ${after.fds}`);
    assert.ok(after.threads <= before.threads + 2, `threads ${before.threads} -> ${after.threads}`);
  });

  it('logs no GStreamer criticals or warnings along the way', () => {
    // libnice's UPnP probe (on by default, see WebRtcPeer) now and then finds its random HTTP port taken: harmless.
    const noisy = harness.stderr.filter((line) => /CRITICAL|WARNING|ERROR/.test(line) && !/gupnp/.test(line));
    assert.deepEqual(noisy, []);
  });
});

describe('WebRtcPeer on the shared fan-out (no Opus audio: one payloader and a tee for every shared viewer)', () => {
  let harness: WebRtcHarness;
  let browser: Browser;
  let page: Page;

  before(async () => {
    harness = await WebRtcHarness.start({ audio: false });
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(harness.url);
  });
  after(async () => {
    await browser?.close();
    const code = await harness?.stop();
    assert.equal(code, 0, `harness exit code; stderr:\n${harness?.stderr.slice(-20).join('\n')}`);
  });

  const startViewer = () => page.evaluate(`window.startViewer('shared', '')`) as Promise<number>;
  const viewerStats = (index: number) => page.evaluate(`window.viewerStats(${index})`) as Promise<ViewerStats>;
  async function framesDecoded(index: number, count: number, timeoutMs = 30_000): Promise<ViewerStats> {
    const deadline = Date.now() + timeoutMs;
    let stats = await viewerStats(index);
    while (stats.framesDecoded < count) {
      if (Date.now() > deadline) throw new Error(`viewer ${index} decoded ${stats.framesDecoded}/${count} frames: ${JSON.stringify({ ...stats, offer: undefined })}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      stats = await viewerStats(index);
    }
    return stats;
  }
  /** Fan-outs open, as last reported. */
  const fanoutCount = () => {
    const peers = harness.events.filter((e): e is Extract<HarnessEvent, { type: 'peers' }> => e.type === 'peers');
    return peers.at(-1)?.fanouts ?? 0;
  };

  it('serves two viewers from one fan-out, and closes it when the last one leaves', async () => {
    const from = harness.events.length;
    const indexes = [await startViewer(), await startViewer()];
    await harness.waitFor((e) => e.type === 'peers' && e.count === 2, 20_000, from);
    await Promise.all(indexes.map((i) => framesDecoded(i, 30)));
    assert.equal(fanoutCount(), 1, 'one fan-out for both');
    const closing = harness.events.length;
    for (const index of indexes) await page.evaluate(`window.closeViewer(${index})`);
    const gone = await harness.waitFor((e) => e.type === 'peers' && e.count === 0, 20_000, closing);
    assert.equal(gone.type === 'peers' && gone.fanouts, 0, 'the fan-out is closed with its last viewer');
  });

  it('fails the viewers of a fan-out whose pipeline errors, saying why, and builds a new one for the next viewer', async () => {
    const indexes = [await startViewer(), await startViewer()];
    await Promise.all(indexes.map((i) => framesDecoded(i, 10)));
    const breaking = harness.events.length;
    assert.equal((await fetch(`${harness.url}fanout/break`, { method: 'POST' })).status, 204);
    // A failed peer's socket is closed (as the control plane does), which closes the peer.
    const gone = await harness.waitFor((e) => e.type === 'peers' && e.count === 0, 20_000, breaking);
    const reasons = harness.events.slice(breaking).flatMap((e) => (e.type === 'state' && e.state === 'failed' ? [e.reason ?? ''] : []));
    assert.equal(reasons.length, 2, `both viewers fail: ${JSON.stringify(reasons)}`);
    for (const reason of reasons) assert.match(reason, /^the shared fan-out failed: /);
    const logged = harness.events.slice(breaking).find((e) => e.type === 'log' && e.level === 'error');
    assert.match(logged?.type === 'log' ? logged.msg : '', /WebRTC fan-out failed/, 'the error is logged');
    assert.equal(gone.type === 'peers' && gone.fanouts, 0, 'the failed fan-out is closed once its viewers are gone');
    for (const index of indexes) assert.match((await viewerStats(index)).closeReason ?? '', /fan-out failed/);
    const next = await startViewer();
    await framesDecoded(next, 30);
    assert.equal(fanoutCount(), 1, 'a new fan-out');
    const closing = harness.events.length;
    await page.evaluate(`window.closeViewer(${next})`);
    await harness.waitFor((e) => e.type === 'peers' && e.count === 0, 20_000, closing);
  });
});
