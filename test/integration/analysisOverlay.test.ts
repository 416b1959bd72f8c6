import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { photoSource } from '../support/analysisMedia.js';
import { launchChromium } from '../support/browser.js';
import { ModuleProcess } from '../support/ModuleProcess.js';

/** The astronaut photo as a 10 fps camera, analysed at its `inference` element, encoded once for WebRTC viewers. */
const PIPELINE =
  `${photoSource('astronaut', 10)} ! inference name=people ! videoconvert ! video/x-raw,format=I420 ` +
  '! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! video/x-h264,profile=constrained-baseline ' +
  '! h264parse config-interval=-1 ! appsink name=video max-buffers=30 drop=true sync=false';

interface AnalysisMessage {
  analysis: { analyzer: string; camera: string; width: number; height: number; detections: Array<{ class: string; score: number; box: Record<string, number> }> };
}

describe('boxes over the video in webrtc.html', () => {
  let browser: Browser;
  let module: ModuleProcess;
  let base: string;
  before(async () => {
    browser = await launchChromium();
    module = new ModuleProcess({
      desired: {
        http: { port: 0, address: '127.0.0.1', media_root: '/tmp' },
        metrics: { port: null },
        rtsp: { port: 0, address: '127.0.0.1' },
        pipeline: PIPELINE,
        analyzers: { people: { classes: ['person'], fps: 5 } },
      },
    });
    const http = await module.waitForLog((l) => l.event === 'http-listening', 30_000);
    base = `http://127.0.0.1:${http.port as number}`;
    await module.waitForPipeline('main', 'playing', 30_000);
  });
  after(async () => {
    await browser?.close();
    await module?.stop();
    if (module) rmSync(module.dir, { recursive: true, force: true });
  });

  it('sends each analysed frame to a connected viewer\'s signalling socket as {"analysis": ...}, after the seed\'s sdp and ice', async () => {
    // A page written for the original module: it answers the offer, sends its candidates, and reads sdp and ice only.
    const page = await browser.newPage();
    await page.goto(`${base}/wwwroot/index.html`);
    const messages = (await page.evaluate(`new Promise((resolve, reject) => {
      const ws = new WebSocket(location.origin.replace('http', 'ws') + '/ws');
      const pc = new RTCPeerConnection();
      const seen = [];
      setTimeout(() => reject(new Error('no analysis message in 60 s; got ' + JSON.stringify(seen.map((m) => Object.keys(m))))), 60000);
      pc.onicecandidate = (e) => e.candidate && ws.send(JSON.stringify({ ice: e.candidate.toJSON() }));
      ws.onmessage = async (event) => {
        const msg = JSON.parse(event.data);
        seen.push(msg);
        if (msg.sdp) {
          await pc.setRemoteDescription(msg.sdp);
          await pc.setLocalDescription(await pc.createAnswer());
          ws.send(JSON.stringify({ sdp: { type: 'answer', sdp: pc.localDescription.sdp } }));
        } else if (msg.ice) {
          await pc.addIceCandidate(msg.ice);
        } else if (msg.analysis && msg.analysis.detections.length > 0) {
          ws.close();
          pc.close();
          resolve(seen);
        }
      };
    })`)) as Array<Record<string, unknown>>;
    await page.close();
    assert.ok('sdp' in messages[0]!, 'the module offers first, as the original');
    const first = messages.findIndex((m) => 'analysis' in m);
    assert.ok(messages.slice(0, first).every((m) => 'sdp' in m || 'ice' in m), 'analysis only once the viewer is connected');
    for (const m of messages) assert.equal(Object.keys(m).length, 1, 'one key per message: sdp, ice or analysis');
    const { analysis } = messages.at(-1) as unknown as AnalysisMessage;
    assert.equal(analysis.analyzer, 'people');
    assert.equal(analysis.camera, 'people');
    assert.ok(analysis.width === 320 && analysis.height === 320, `${analysis.width}x${analysis.height}: the square photo fitted into 320`);
    const [person] = analysis.detections;
    assert.equal(person!.class, 'person');
    assert.deepEqual(Object.keys(person!.box).sort(), ['height', 'width', 'x', 'y']);
  });

  it('draws the analyzer\'s boxes on a canvas over the playing video', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${base}/wwwroot/webrtc.html`);
      await page.waitForFunction('window.player.framesDecoded >= 10', null, { timeout: 30_000 });
      await page.waitForFunction('window.overlay.boxesDrawn > 0', null, { timeout: 60_000 });
      const last = (await page.evaluate('window.overlay.last')) as AnalysisMessage['analysis'];
      assert.equal(last.detections[0]?.class, 'person');
      // The canvas covers the video exactly, and something is painted on it.
      const geometry = (await page.evaluate(`(() => {
        const video = document.getElementById('video').getBoundingClientRect();
        const canvas = document.getElementById('overlay');
        const rect = canvas.getBoundingClientRect();
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
        return { video: [video.x, video.y, video.width, video.height], canvas: [rect.x, rect.y, rect.width, rect.height], painted };
      })()`)) as { video: number[]; canvas: number[]; painted: number };
      assert.deepEqual(geometry.canvas.map(Math.round), geometry.video.map(Math.round));
      assert.ok(geometry.painted > 100, `${geometry.painted} pixels painted`);
      assert.equal(await page.evaluate('window.player.state'), 'connected');
    } finally {
      await page.close();
    }
  });
});
