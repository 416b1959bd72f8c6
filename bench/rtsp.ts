/**
 * RTSP benchmarks, each against a baseline measured in the same run:
 *   relay:   module relaying H.264 main pipeline -> shared RTSP media -> 1 viewer, CPU seconds, vs one
 *            gst-launch-1.0 process doing the same encode with a tee to an RTP payloader (goal <= 1.10);
 *   fan-out: N light RTSP viewers (100, 500, 1000; RTP over TCP and over UDP, bench/support/RtspClient.ts: no
 *            decoding, in worker processes whose CPU is printed too) of one stream: every viewer's frame rate and
 *            server CPU, vs a plain gst-rtsp-server (python3-gi) serving the same launch line (goal: 500 viewers
 *            >= 29 fps, CPU ratio <= 1.10), and how many viewers fit before either goal breaks;
 *   swap:    the frame gap a connected viewer sees during main-pipeline swaps (goal <= 500 ms, 0 disconnects).
 * Env: RELAY_SIZE (1920x1080), FANOUT_SIZE (1280x720), FANOUT_BITRATE (4000 kbit/s), FANOUT_PATTERN (ball; snow
 *      makes it use the whole bitrate), FANOUT_MODE (shared|direct),
 *      WINDOW_S (8), VIEWERS (100,500,1000), TRANSPORTS (tcp,udp), CLIENT_PROCS (1), SWAPS (5).
 * Run: node dist/bench/rtsp.js [relay|fanout|swap]
 */
import { cpuLoads, median } from './cpu.js';
import type { ModuleProcess } from '../test/support/ModuleProcess.js';
import { RtspTcpClient } from '../test/support/RtspTcpClient.js';
import type { RtspTransport } from './support/RtspClient.js';
import { RtspClients } from './support/RtspClients.js';
import { baselineRtspServer, freePort, h264Source, sleep, spawnBaseline, startModule, stopChild } from './support/servers.js';

const WINDOW_MS = Number(process.env.WINDOW_S ?? 8) * 1000;
const VIEWER_COUNTS = (process.env.VIEWERS ?? '100,500,1000').split(',').map(Number);
const TRANSPORTS = (process.env.TRANSPORTS ?? 'tcp,udp').split(',') as RtspTransport[];
const CLIENT_PROCS = Number(process.env.CLIENT_PROCS ?? 1);
const fmt = (n: number, digits = 3) => n.toFixed(digits);
const SWAPS = Number(process.env.SWAPS ?? 5);

const source = h264Source;

/** CPU seconds per second of the processes over the window. */
async function cpuLoad(pids: number[], windowMs: number): Promise<number> {
  return (await cpuLoads(pids, windowMs)).total;
}

interface Server {
  url: string;
  pids: number[];
  stop(): Promise<void>;
}

async function moduleServer(main: string | null, rtspPipeline: string): Promise<Server & { module: ModuleProcess }> {
  const server = await startModule({ ...(main ? { pipeline: main } : {}), rtsp_pipeline: rtspPipeline, http_server: false });
  return { module: server.module, url: `${server.rtsp}/player`, pids: server.pids(), stop: server.stop };
}

async function baselineServer(launch: string): Promise<Server> {
  const server = await baselineRtspServer(launch);
  return { url: server.url, pids: [server.pid], stop: server.stop };
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
  const gst = spawnBaseline('gst-launch-1.0', ['-q', ...launch.split(/\s+/)], { stdio: 'ignore' });
  await sleep(2_000);
  const gstLoad = await cpuLoad([gst.pid!], WINDOW_MS);
  await stopChild(gst);
  console.log(`relay ${size}@30 H.264: module ${moduleLoad.toFixed(3)} CPU-s/s (viewer at ${fps.toFixed(1)} fps), gst-launch tee ${gstLoad.toFixed(3)} CPU-s/s`);
  console.log(`ratio module / gst-launch: ${(moduleLoad / gstLoad).toFixed(3)} (goal <= 1.10)`);
}

/** One server at one count of viewers: its CPU, the viewers' process CPU, every viewer's fps. */
interface FanoutResult {
  load: number;
  split: number[];
  clients: number;
  minFps: number;
  medianFps: number;
  medianMbps: number;
  disconnected: number;
  /** Why a viewer could not be set up (the others were measured), or null. */
  refused: string | null;
  viewers: number;
}

async function fanoutOnce(kind: 'module' | 'baseline', mode: string, src: string, n: number, transport: RtspTransport): Promise<FanoutResult> {
  const server =
    kind === 'module'
      ? mode === 'direct'
        ? await moduleServer(null, `( ${src} ! rtph264pay config-interval=-1 name=pay0 pt=96 )`)
        : await moduleServer(`${src} ! appsink name=video max-buffers=30 drop=true sync=false`, '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )')
      : await baselineServer(`( ${src} ! rtph264pay config-interval=-1 name=pay0 pt=96 )`);
  const clients = RtspClients.start(CLIENT_PROCS);
  try {
    // A server that cannot set up the next viewer within 30 s has reached its limit: measure what it holds then.
    const refused = await clients.open(server.url, n, transport).then(
      () => null,
      (error: Error) => error.message,
    );
    // Viewers that joined last catch up on a backlog for a while (more than 30 fps counted): let them.
    await sleep(2_000 + 10 * n);
    const [cpu, fps] = await Promise.all([cpuLoads([...server.pids, ...clients.pids], WINDOW_MS), clients.fps(WINDOW_MS)]);
    const split = cpu.each.slice(0, server.pids.length);
    return {
      load: split.reduce((a, b) => a + b, 0),
      split,
      clients: cpu.each.slice(server.pids.length).reduce((a, b) => a + b, 0),
      minFps: Math.min(...fps.fps),
      medianFps: median(fps.fps),
      medianMbps: median(fps.mbps),
      disconnected: fps.disconnected,
      refused,
      viewers: clients.viewers,
    };
  } finally {
    await clients.stop();
    await server.stop();
  }
}

async function fanout(): Promise<void> {
  const size = process.env.FANOUT_SIZE ?? '1280x720';
  const bitrate = Number(process.env.FANOUT_BITRATE ?? 4000);
  // shared: main pipeline -> appsink -> sample hub -> appsrc media (the module's way); direct: the module's RTSP
  // server serving the baseline's very launch line (isolates hosting GStreamer in Node from the relay).
  const mode = process.env.FANOUT_MODE ?? 'shared';
  // The ball on black needs far less than `bitrate` (a 720p viewer gets about 0.2 Mbit/s); FANOUT_PATTERN=snow
  // makes the encoder spend all of it, as a busy camera picture would.
  const pattern = process.env.FANOUT_PATTERN ?? 'ball';
  const src = source(size, pattern, bitrate);
  console.log(
    `fan-out (${mode}), ${size}@30 H.264 (${pattern}, at most ${bitrate} kbit/s), ${WINDOW_MS / 1000} s windows, viewers in ${CLIENT_PROCS} process(es) ` +
      `(goal at 500: every viewer >= 29 fps, CPU ratio <= 1.10)`,
  );
  for (const transport of TRANSPORTS) {
    const fits = { fps: 0, ratio: 0 };
    let broken = { fps: false, ratio: false };
    for (const n of VIEWER_COUNTS) {
      const m = await fanoutOnce('module', mode, src, n, transport);
      const b = await fanoutOnce('baseline', mode, src, n, transport);
      const ratio = m.load / b.load;
      for (const [name, r] of [['module', m], ['gst-rtsp-server', b]] as const) {
        if (r.refused) console.log(`  ${name}: only ${r.viewers} of ${n} viewers played (${r.refused}); measured with those`);
      }
      console.log(
        `${transport.toUpperCase()} ${String(n).padStart(4)} viewers: module ${fmt(m.load)} CPU-s/s (control plane ${fmt(m.split[0]!)} + engine ${fmt(m.split[1]!)}), ` +
          `fps min ${fmt(m.minFps, 1)} median ${fmt(m.medianFps, 1)} (${fmt(m.medianMbps, 2)} Mbit/s)${m.disconnected ? `, ${m.disconnected} disconnected` : ''} | ` +
          `gst-rtsp-server ${fmt(b.load)} CPU-s/s, fps min ${fmt(b.minFps, 1)} median ${fmt(b.medianFps, 1)} (${fmt(b.medianMbps, 2)} Mbit/s)${b.disconnected ? `, ${b.disconnected} disconnected` : ''} | ` +
          `CPU ratio ${fmt(ratio)} | viewers' processes ${fmt(m.clients)} / ${fmt(b.clients)} CPU-s/s`,
      );
      broken = { fps: broken.fps || m.minFps < 29 || m.disconnected > 0 || m.refused !== null, ratio: broken.ratio || ratio > 1.1 };
      if (!broken.fps) fits.fps = n;
      if (!broken.ratio) fits.ratio = n;
    }
    console.log(`${transport.toUpperCase()}: every viewer >= 29 fps up to ${fits.fps || 'none'} of ${VIEWER_COUNTS.join('/')} viewers; CPU ratio <= 1.10 up to ${fits.ratio || 'none'}`);
  }
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
    server.module.writeDesired({ pipeline: main(patterns[i % patterns.length]!), rtsp_pipeline: rtspPipeline, rtsp: { port: 0, address: '127.0.0.1' }, http_server: false, metrics: { port: null } });
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
