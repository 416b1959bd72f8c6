/**
 * RTSP benchmarks, each against a baseline measured in the same run:
 *   relay:   module relaying H.264 main pipeline -> shared RTSP media -> 1 viewer, CPU seconds, vs one
 *            gst-launch-1.0 process doing the same encode with a tee to an RTP payloader (goal <= 1.10);
 *   fan-out: N RTSP/TCP viewers (10, 50, 100) of one stream: every viewer's frame rate and server CPU, vs a
 *            plain gst-rtsp-server (python3-gi) serving the same launch line (goal: 100 viewers >= 29 fps,
 *            CPU ratio <= 1.15);
 *   swap:    the frame gap a connected viewer sees during main-pipeline swaps (goal <= 500 ms, 0 disconnects).
 * Env: RELAY_SIZE (1920x1080), FANOUT_SIZE (1280x720), WINDOW_S (8), VIEWERS (10,50,100), SWAPS (5).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, median } from './cpu.js';
import { ModuleProcess } from '../test/support/ModuleProcess.js';
import { RtspTcpClient } from '../test/support/RtspTcpClient.js';

const WINDOW_MS = Number(process.env.WINDOW_S ?? 8) * 1000;
const VIEWER_COUNTS = (process.env.VIEWERS ?? '10,50,100').split(',').map(Number);
const SWAPS = Number(process.env.SWAPS ?? 5);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function source(size: string, pattern = 'ball'): string {
  const [w, h] = size.split('x');
  return `videotestsrc is-live=true pattern=${pattern} ! video/x-raw,width=${w},height=${h},framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=4000 ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1`;
}


async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** CPU seconds per second of the processes over the window. */
async function cpuLoad(pids: number[], windowMs: number): Promise<number> {
  const c0 = cpuSeconds(pids);
  const t0 = performance.now();
  await sleep(windowMs);
  return (cpuSeconds(pids) - c0) / ((performance.now() - t0) / 1000);
}

interface Server {
  url: string;
  pids: number[];
  stop(): Promise<void>;
}

async function moduleServer(main: string | null, rtspPipeline: string): Promise<Server & { module: ModuleProcess }> {
  const module = new ModuleProcess({
    desired: { ...(main ? { pipeline: main } : {}), rtsp_pipeline: rtspPipeline, rtsp: { port: 0, address: '127.0.0.1' } },
    env: { LOG_LEVEL: 'info' },
  });
  const listening = await module.waitForLog((l) => l.event === 'rtsp-listening');
  const ready = await module.waitForLog((l) => l.event === 'engine-ready');
  if (main) await module.waitForPipeline('main', 'playing');
  return {
    module,
    url: `rtsp://127.0.0.1:${listening.port as number}/player`,
    pids: [module.child.pid!, ready.pid as number],
    stop: async () => {
      await module.stop();
      rmSync(module.dir, { recursive: true, force: true });
    },
  };
}

async function baselineServer(launch: string): Promise<Server> {
  const port = await freePort();
  const script = fileURLToPath(new URL('../../bench/rtspBaselineServer.py', import.meta.url));
  const child = spawn('/usr/bin/python3', [script, String(port), launch], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => line === 'ready' && resolve());
    child.on('exit', (code) => reject(new Error(`baseline server exited ${code}`)));
  });
  return { url: `rtsp://127.0.0.1:${port}/player`, pids: [child.pid!], stop: () => stopChild(child) };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGINT');
  await new Promise((r) => child.on('exit', r));
}

async function viewers(url: string, n: number): Promise<RtspTcpClient[]> {
  // The first viewer alone: gst-rtsp-server 1.22 can abort (gst_rtsp_media_get_rates assertion) when several
  // clients arrive while a shared media is still preparing.
  const first = new RtspTcpClient(url);
  await first.start(20_000);
  const clients: RtspTcpClient[] = [first];
  for (let i = 1; i < n; i += 10) {
    const batch = Array.from({ length: Math.min(10, n - i) }, () => new RtspTcpClient(url));
    await Promise.all(batch.map((c) => c.start(20_000)));
    clients.push(...batch);
  }
  return clients;
}


async function relay(): Promise<void> {
  const size = process.env.RELAY_SIZE ?? '1920x1080';
  const src = source(size);
  const server = await moduleServer(`${src} ! appsink name=video max-buffers=30 drop=true sync=false`, '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )');
  const [client] = await viewers(server.url, 1);
  await sleep(2_000);
  const moduleLoad = await cpuLoad(server.pids, WINDOW_MS);
  const fps = client!.fps(performance.now() - WINDOW_MS, performance.now());
  client!.close();
  await server.stop();

  const udpPort = await freePort();
  const launch = `${src} ! tee name=t ! queue ! rtph264pay config-interval=-1 pt=96 ! udpsink host=127.0.0.1 port=${udpPort} sync=false t. ! queue ! fakesink sync=false`;
  const gst = spawn('gst-launch-1.0', ['-q', ...launch.split(/\s+/)], { stdio: 'ignore' });
  await sleep(2_000);
  const gstLoad = await cpuLoad([gst.pid!], WINDOW_MS);
  await stopChild(gst);
  console.log(`relay ${size}@30 H.264: module ${moduleLoad.toFixed(3)} CPU-s/s (viewer at ${fps.toFixed(1)} fps), gst-launch tee ${gstLoad.toFixed(3)} CPU-s/s`);
  console.log(`ratio module / gst-launch: ${(moduleLoad / gstLoad).toFixed(3)} (goal <= 1.10)`);
}

async function fanout(): Promise<void> {
  const size = process.env.FANOUT_SIZE ?? '1280x720';
  // shared: main pipeline -> appsink -> sample hub -> appsrc media (the module's way); direct: the module's RTSP
  // server serving the baseline's very launch line (isolates hosting GStreamer in Node from the relay).
  const mode = process.env.FANOUT_MODE ?? 'shared';
  const src = source(size);
  const rows: string[] = [];
  for (const n of VIEWER_COUNTS) {
    const results: Record<string, { load: number; minFps: number; medianFps: number }> = {};
    for (const kind of ['module', 'baseline'] as const) {
      const server =
        kind === 'module'
          ? mode === 'direct'
            ? await moduleServer(null, `( ${src} ! rtph264pay config-interval=-1 name=pay0 pt=96 )`)
            : await moduleServer(`${src} ! appsink name=video max-buffers=30 drop=true sync=false`, '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )')
          : await baselineServer(`( ${src} ! rtph264pay config-interval=-1 name=pay0 pt=96 )`);
      const clients = await viewers(server.url, n);
      await sleep(2_000);
      const from = performance.now();
      const before = server.pids.map((pid) => cpuSeconds([pid]));
      const load = await cpuLoad(server.pids, WINDOW_MS);
      const to = performance.now();
      if (kind === 'module') {
        const split = server.pids.map((pid, i) => ((cpuSeconds([pid]) - before[i]!) / ((to - from) / 1000)).toFixed(3));
        console.log(`  module ${n} viewers: control plane ${split[0]} + engine ${split[1]} CPU-s/s`);
      }
      const fps = clients.map((c) => c.fps(from, to));
      for (const c of clients) c.close();
      await server.stop();
      results[kind] = { load, minFps: Math.min(...fps), medianFps: median(fps) };
    }
    const m = results.module!;
    const b = results.baseline!;
    rows.push(
      `${String(n).padStart(4)} viewers: module ${m.load.toFixed(3)} CPU-s/s, fps min ${m.minFps.toFixed(1)} median ${m.medianFps.toFixed(1)} | ` +
        `gst-rtsp-server ${b.load.toFixed(3)} CPU-s/s, fps min ${b.minFps.toFixed(1)} median ${b.medianFps.toFixed(1)} | CPU ratio ${(m.load / b.load).toFixed(3)}`,
    );
  }
  console.log(`fan-out (${mode}), ${size}@30 H.264, RTP over RTSP/TCP, ${WINDOW_MS / 1000} s windows (goal: 100 viewers >= 29 fps, CPU ratio <= 1.15)`);
  for (const row of rows) console.log(row);
}

async function swapGap(): Promise<void> {
  const size = '640x360';
  const main = (pattern: string) => `${source(size, pattern)} ! appsink name=video max-buffers=30 drop=true sync=false`;
  const rtspPipeline = '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )';
  const server = await moduleServer(main('ball'), rtspPipeline);
  const [client] = await viewers(server.url, 1);
  await sleep(1_000);
  const gaps: number[] = [];
  const patterns = ['smpte', 'ball', 'snow', 'pinwheel', 'gamut'];
  for (let i = 0; i < SWAPS; i++) {
    const from = server.module.logs.length;
    const before = client!.frames.length;
    server.module.writeDesired({ pipeline: main(patterns[i % patterns.length]!), rtsp_pipeline: rtspPipeline, rtsp: { port: 0, address: '127.0.0.1' } });
    await server.module.waitForPipeline('main', 'playing', 20_000, from);
    await sleep(1_500);
    let gap = 0;
    for (let f = Math.max(before, 1); f < client!.frames.length; f++) gap = Math.max(gap, client!.frames[f]! - client!.frames[f - 1]!);
    gaps.push(gap);
  }
  const disconnects = client!.disconnected ? 1 : 0;
  client!.close();
  await server.stop();
  // Baseline: the frame interval of the same viewer without a swap (30 fps -> ~33 ms).
  console.log(`swap gap over ${SWAPS} swaps: median ${median(gaps).toFixed(0)} ms, max ${Math.max(...gaps).toFixed(0)} ms, disconnects ${disconnects} (goal <= 500 ms, 0); frame interval at 30 fps = 33 ms, ratio ${(median(gaps) / 33.3).toFixed(1)}`);
}

const only = process.argv[2];
if (!only || only === 'relay') await relay();
if (!only || only === 'fanout') await fanout();
if (!only || only === 'swap') await swapGap();
