/**
 * Camera recovery suite: the seed's twin (rtspsrc from a camera stand-in with H.264 + AAC and Basic auth -> the
 * sample hub -> /player over RTSP, and shared-mode WebRTC) while the camera is killed and restarted CYCLES times
 * with random outages of MIN_OUTAGE_S to MAX_OUTAGE_S seconds. One RTSP viewer (gst-launch rtspsrc, decoding) and
 * one WebRTC viewer (chromium, webrtc.html) watch throughout.
 *
 * Prints, per cycle, the outage and the time from the camera being back (its RTSP port answering) to the next frame
 * at each viewer; then recoveries (goal CYCLES/CYCLES), the median and max of those times (goal: max <= 2 s), viewer
 * disconnects (goal 0) and module/engine restarts (goal 0).
 *
 * Env: CYCLES (20), MIN_OUTAGE_S (1), MAX_OUTAGE_S (60), SEED (random; printed).
 * Run: npm run recovery   (about 10 minutes with the defaults)
 */
import { rmSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { median } from './cpu.js';
import { launchChromium } from '../test/support/browser.js';
import { CameraSimulator } from '../test/support/cameraSimulator.js';
import { ModuleProcess } from '../test/support/ModuleProcess.js';
import { RtspViewer } from '../test/support/RtspViewer.js';

const CYCLES = Number(process.env.CYCLES ?? 20);
const MIN_OUTAGE_S = Number(process.env.MIN_OUTAGE_S ?? 1);
const MAX_OUTAGE_S = Number(process.env.MAX_OUTAGE_S ?? 60);
const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
/** A viewer that shows no frame this long after the camera is back counts as not recovered. */
const GIVE_UP_MS = 60_000;

/** mulberry32: a small seeded PRNG, so a run can be repeated. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The seed's twin, verbatim but for the camera's port (in $IP).
const SEED_MAIN =
  'rtspsrc protocols=GST_RTSP_LOWER_TRANS_TCP location=rtsp://$USER:$PASSWORD@$IP/axis-media/media.amp name=src src. ! queue ! rtph264depay ! h264parse config-interval=-1 ! appsink name=video max-buffers=30 drop=true src. ! rtpmp4gdepay ! aacparse ! appsink name=audio drop=true max-buffers=30';
const SEED_SHARED = '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )';

/** Resolves with the time of the first frame after `since` (performance.now()), or null after GIVE_UP_MS. */
async function nextRtspFrame(viewer: RtspViewer, since: number): Promise<number | null> {
  const deadline = since + GIVE_UP_MS;
  while (performance.now() < deadline) {
    const frame = viewer.frames.find((t) => t > since);
    if (frame !== undefined) return frame;
    await sleep(20);
  }
  return null;
}

async function nextWebRtcFrame(page: Page, since: number, before: number): Promise<number | null> {
  const deadline = since + GIVE_UP_MS;
  while (performance.now() < deadline) {
    if (((await page.evaluate('window.player.framesDecoded')) as number) > before) return performance.now();
    await sleep(20);
  }
  return null;
}

const random = prng(SEED);
console.log(`camera recovery: ${CYCLES} cycles, outages ${MIN_OUTAGE_S}-${MAX_OUTAGE_S} s, SEED=${SEED}`);
const camera = await CameraSimulator.start({ user: 'viewer', password: 'cam-S3cret', width: 640, height: 360, fps: 30 });
const module = new ModuleProcess({
  desired: {
    pipeline: SEED_MAIN,
    rtsp_pipeline: SEED_SHARED,
    rtsp: { port: 0, address: '127.0.0.1' },
    http: { port: 0, address: '127.0.0.1' },
    metrics: { port: null },
  },
  env: { USER: camera.user, PASSWORD: camera.password, IP: `127.0.0.1:${camera.port}` },
});
const browser = await launchChromium();
let viewer: RtspViewer | null = null;
const rtspTimes: number[] = [];
const webrtcTimes: number[] = [];
let recovered = 0;
try {
  const rtsp = await module.waitForLog((l) => l.event === 'rtsp-listening');
  const http = await module.waitForLog((l) => l.event === 'http-listening');
  await module.waitForPipeline('main', 'playing', 30_000);
  viewer = new RtspViewer({ url: `rtsp://127.0.0.1:${rtsp.port as number}/player`, transport: 'tcp' });
  await viewer.waitForFrames(30, 30_000);
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${http.port as number}/wwwroot/webrtc.html`);
  await page.waitForFunction('window.player.framesDecoded > 30', null, { timeout: 30_000 });
  const connects = (await page.evaluate('window.player.connects')) as number;
  const startLog = module.logs.length;
  const started = performance.now();
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const outageMs = Math.round((MIN_OUTAGE_S + random() * (MAX_OUTAGE_S - MIN_OUTAGE_S)) * 1000);
    await camera.kill('SIGKILL');
    await sleep(outageMs);
    const webrtcBefore = (await page.evaluate('window.player.framesDecoded')) as number;
    // restart() resolves once the camera's RTSP port answers again: "the camera is back".
    await camera.restart();
    const back = performance.now();
    const [rtspFrame, webrtcFrame] = await Promise.all([nextRtspFrame(viewer, back), nextWebRtcFrame(page, back, webrtcBefore)]);
    const rtspMs = rtspFrame === null ? null : rtspFrame - back;
    const webrtcMs = webrtcFrame === null ? null : webrtcFrame - back;
    if (rtspMs !== null) rtspTimes.push(rtspMs);
    if (webrtcMs !== null) webrtcTimes.push(webrtcMs);
    if (rtspMs !== null && webrtcMs !== null) recovered++;
    const show = (ms: number | null) => (ms === null ? 'none' : `${ms.toFixed(0)} ms`);
    if (process.env.TRACE) {
      const backAt = Date.now() - (performance.now() - back);
      for (const l of module.logs.filter((x) => x.event === 'pipeline-state' && (x.time as number) > backAt - outageMs - 2_000)) {
        console.log(`   ${((l.time as number) - backAt).toFixed(0).padStart(7)} ms ${String(l.state)} restarts=${String(l.restarts)} ${String(l.lastError ?? "")}`);
      }
    }
    console.log(`cycle ${String(cycle).padStart(2)}: outage ${(outageMs / 1000).toFixed(1).padStart(4)} s -> RTSP frame ${show(rtspMs)}, WebRTC frame ${show(webrtcMs)}`);
  }
  const minutes = (performance.now() - started) / 60_000;
  const engineRestarts = module.logs.slice(startLog).filter((l) => l.event === 'engine-died' || l.event === 'engine-failed-to-start').length;
  const disconnects = ((await page.evaluate('window.player.connects')) as number) - connects + (viewer.running ? 0 : 1);
  const stat = (times: number[]) => (times.length === 0 ? 'n/a' : `median ${median(times).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms`);
  console.log(`\n${CYCLES} camera drops in ${minutes.toFixed(1)} min (SEED=${SEED})`);
  console.log(`recoveries: ${recovered}/${CYCLES} (goal ${CYCLES}/${CYCLES})`);
  console.log(`camera back -> first frame: RTSP ${stat(rtspTimes)}; WebRTC ${stat(webrtcTimes)} (goal: max <= 2000 ms)`);
  console.log(`viewer disconnects: ${disconnects} (goal 0); engine restarts: ${engineRestarts}, module exited: ${module.child.exitCode !== null} (goal 0, false)`);
  await page.close();
} finally {
  await viewer?.stop();
  await browser.close();
  await module.stop();
  await camera.stop();
  rmSync(module.dir, { recursive: true, force: true });
}
