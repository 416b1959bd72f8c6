/**
 * WebRTC benchmark: module CPU with 20 viewers over module CPU with 1 viewer, in shared-encode mode and in
 * per-viewer mode (the original's way: one encode per viewer), measured in the same run (goal: shared <= 2x);
 * and the time from page load to the first decoded frame (median).
 * Env: VIEWERS (20), WINDOW_S (6), SIZE (320x240), LOADS (5).
 */
import { rmSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../test/support/browser.js';
import { cpuSeconds, median } from './cpu.js';
import { ModuleProcess } from '../test/support/ModuleProcess.js';

const VIEWERS = Number(process.env.VIEWERS ?? 20);
const WINDOW_MS = Number(process.env.WINDOW_S ?? 6) * 1000;
const LOADS = Number(process.env.LOADS ?? 5);
const [W, H] = (process.env.SIZE ?? '320x240').split('x');
const ENCODE = `videotestsrc is-live=true pattern=ball ! video/x-raw,width=${W},height=${H},framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline`;
const SHARED = { pipeline: `${ENCODE} ! h264parse config-interval=-1 ! appsink name=video max-buffers=30 drop=true sync=false` };
const PER_VIEWER = {
  webrtc_pipeline: `${ENCODE} ! rtph264pay config-interval=-1 ! application/x-rtp,media=video,encoding-name=H264,payload=96 ! webrtcbin name=webrtcbin`,
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));



async function startModule(desired: Record<string, unknown>) {
  const module = new ModuleProcess({
    desired: { ...desired, http: { port: 0, address: '127.0.0.1', media_root: '/tmp' }, metrics: { port: null }, rtsp: { port: 0, address: '127.0.0.1' }, webrtc: { max_peers: VIEWERS + 5, max_peers_per_address: VIEWERS + 5 } },
    env: { LOG_LEVEL: 'info' },
  });
  const http = await module.waitForLog((l) => l.event === 'http-listening');
  const engine = await module.waitForLog((l) => l.event === 'engine-ready');
  if ('pipeline' in desired) await module.waitForPipeline('main', 'playing');
  return { module, url: `http://127.0.0.1:${http.port as number}/wwwroot/webrtc.html`, pids: [module.child.pid!, engine.pid as number] };
}

async function openViewers(browser: Browser, url: string, n: number): Promise<Page[]> {
  const pages = await Promise.all(Array.from({ length: n }, () => browser.newPage()));
  await Promise.all(pages.map((p) => p.goto(url)));
  await Promise.all(pages.map((p) => p.waitForFunction('window.player.framesDecoded > 15', null, { timeout: 60_000 })));
  return pages;
}

async function load(pids: number[]): Promise<number> {
  await sleep(1_000);
  const c0 = cpuSeconds(pids);
  const t0 = performance.now();
  await sleep(WINDOW_MS);
  return (cpuSeconds(pids) - c0) / ((performance.now() - t0) / 1000);
}

async function mode(browser: Browser, name: string, desired: Record<string, unknown>): Promise<{ one: number; many: number }> {
  const { module, url, pids } = await startModule(desired);
  try {
    const first = await openViewers(browser, url, 1);
    const one = await load(pids);
    const more = await openViewers(browser, url, VIEWERS - 1);
    const many = await load(pids);
    for (const page of [...first, ...more]) await page.close();
    console.log(`${name}: 1 viewer ${one.toFixed(3)} CPU-s/s, ${VIEWERS} viewers ${many.toFixed(3)} CPU-s/s, ratio ${(many / one).toFixed(2)}`);
    return { one, many };
  } catch (error) {
    // Say why (an engine that died or was taken as hung), not just that a pid is gone.
    const why = module.logs.filter((l) => /engine-died|engine-failed|hung|webrtc-closed/.test(`${String(l.event)} ${l.msg}`)).slice(-5);
    console.error(`${name} failed: ${(error as Error).message}\n${why.map((l) => l.msg).join('\n')}`);
    throw error;
  } finally {
    await module.stop();
    rmSync(module.dir, { recursive: true, force: true });
  }
}

async function firstFrame(browser: Browser): Promise<number[]> {
  const { module, url } = await startModule(SHARED);
  const times: number[] = [];
  try {
    for (let i = 0; i < LOADS; i++) {
      const page = await browser.newPage();
      const t0 = performance.now();
      await page.goto(url);
      await page.waitForFunction('window.player.framesDecoded > 0', null, { polling: 10, timeout: 30_000 });
      times.push(performance.now() - t0);
      await page.close();
    }
  } finally {
    await module.stop();
    rmSync(module.dir, { recursive: true, force: true });
  }
  return times;
}

const browser = await launchChromium();
try {
  console.log(`WebRTC, ${W}x${H}@30 H.264, ${VIEWERS} viewers in headless chromium, ${WINDOW_MS / 1000} s windows`);
  const shared = await mode(browser, 'shared encode', SHARED);
  const perViewer = await mode(browser, 'per-viewer   ', PER_VIEWER);
  console.log(`ratio CPU(${VIEWERS})/CPU(1): shared ${(shared.many / shared.one).toFixed(2)} (goal <= 2), per-viewer ${(perViewer.many / perViewer.one).toFixed(2)}`);
  console.log(`shared vs per-viewer at ${VIEWERS} viewers: ${(shared.many / perViewer.many).toFixed(2)} of the CPU`);
  const times = await firstFrame(browser);
  console.log(`page load -> first decoded frame: median ${median(times).toFixed(0)} ms (${times.map((t) => t.toFixed(0)).join(', ')})`);
} finally {
  await browser.close();
}
