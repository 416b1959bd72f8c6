/**
 * Soak: the module runs the seed's kind of twin (a camera stand-in with H.264 + AAC and Basic auth, through rtspsrc
 * into the sample hub, served on /player and to shared-mode WebRTC) for SOAK_MINUTES with 10 light RTSP/TCP
 * viewers (bench/support/RtspClient.ts) and 5 light WebRTC viewers (bench/support/webrtcReceivers.py) connected, a
 * main-pipeline swap every 5 minutes and a camera drop (SIGKILL, 5 s out, back) every 10 minutes.
 *
 * Prints a line a minute (RSS, fds, threads of the control plane and the engine; viewers' fps), then: RSS growth of
 * each process from the first 10 minutes on (from a third of the run on, for runs under 30 minutes): the median of
 * the 5 minutes after that vs the median of the last 5 (goal < 5%),
 * fds and threads at that point and at the end (goal: flat), errors in the module's log (goal 0; those within 30 s of
 * a camera drop are counted apart), engine restarts, and viewers the module disconnected.
 *
 * Env: SOAK_MINUTES (60), SWAP_EVERY_S (300), DROP_EVERY_S (600), DROP_S (5), SOAK_RTSP_VIEWERS (10), SOAK_WEBRTC_VIEWERS (5).
 * Run: npm run soak   (SOAK_MINUTES=3 npm run soak for a check that it works)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { CameraSimulator } from '../test/support/cameraSimulator.js';
import { median } from './cpu.js';
import { RtspClients } from './support/RtspClients.js';
import { sleep, startModule } from './support/servers.js';
import { WebRtcReceivers } from './support/WebRtcReceivers.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 60);
const SWAP_EVERY_MS = Number(process.env.SWAP_EVERY_S ?? 300) * 1000;
const DROP_EVERY_MS = Number(process.env.DROP_EVERY_S ?? 600) * 1000;
const DROP_MS = Number(process.env.DROP_S ?? 5) * 1000;
/** Viewers (10 and 5 by default); fewer, or none, tell which path a growth comes from. */
const RTSP_VIEWERS = Number(process.env.SOAK_RTSP_VIEWERS ?? 10);
const WEBRTC_VIEWERS = Number(process.env.SOAK_WEBRTC_VIEWERS ?? 5);
const SAMPLE_MS = 10_000;
/** Growth is measured from here on: the first 10 minutes (caches, pools, JIT) are not a leak. */
const BASELINE_MS = Math.min(10 * 60_000, (MINUTES * 60_000) / 3);
/** Readings compared at each end (medians). */
const GROWTH_WINDOW_MS = 5 * 60_000;

/** One reading of a process. */
interface Sample {
  at: number;
  rssKb: number;
  /** Of the RSS, anonymous memory (malloc's heap and mmaps, V8's heap): what a leak grows. The rest is mostly pages
   * of mapped files (node's binary, libraries), which grow as code runs for the first time and are not a leak. */
  anonKb: number;
  fds: number;
  threads: number;
}

async function engineHeapMb(http: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const value = /_engine_memory_bytes\{[^}]*area="heap"[^}]*\} (\d+)/.exec(text)?.[1];
  return value ? Number(value) / 2 ** 20 : Number.NaN;
}

/** A frame rate, or '-' with no viewers of that kind. */
const fps = (value: number) => (Number.isFinite(value) ? value.toFixed(1) : '-');

function sample(pid: number, at: number): Sample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { at, rssKb: field('VmRSS'), anonKb: field('RssAnon'), fds: readdirSync(`/proc/${pid}/fd`).length, threads: field('Threads') };
}

const main = (latency: number) =>
  `rtspsrc protocols=GST_RTSP_LOWER_TRANS_TCP location=rtsp://$USER:$PASSWORD@$IP/axis-media/media.amp latency=${latency} name=src ` +
  'src. ! queue ! rtph264depay ! h264parse config-interval=-1 ! appsink name=video max-buffers=30 drop=true ' +
  'src. ! queue ! rtpmp4gdepay ! aacparse ! appsink name=audio drop=true max-buffers=30';
const RTSP_PIPELINE = '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )';
const desired = (latency: number) => ({
  pipeline: main(latency),
  rtsp_pipeline: RTSP_PIPELINE,
  rtsp: { port: 0, address: '127.0.0.1' },
  http: { port: 0, address: '127.0.0.1', media_root: '/tmp/gst-iotedge-media' },
  metrics: { port: null },
  webrtc: { mode: 'shared' },
});

const camera = await CameraSimulator.start({ user: 'viewer', password: 'soak-S3cret', width: 640, height: 360, fps: 30 });
// The control plane as the images run it (ENV MALLOC_ARENA_MAX=2); the engine gets it from the control plane anyway.
const env = { USER: camera.user, PASSWORD: camera.password, IP: `127.0.0.1:${camera.port}`, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' };
const server = await startModule(desired(200), { env });
const rtsp = RtspClients.start(1);
const webrtc = await WebRtcReceivers.start();
console.log(`soak: ${MINUTES} min, ${RTSP_VIEWERS} RTSP + ${WEBRTC_VIEWERS} WebRTC viewers, a swap every ${SWAP_EVERY_MS / 1000} s, a camera drop every ${DROP_EVERY_MS / 1000} s (${DROP_MS / 1000} s out)`);
const samples: { control: Sample; engine: Sample }[] = [];
/** Wall-clock times (ms) of the camera drops, the clock of the module's log lines (`time`). */
const drops: number[] = [];
/** The engine's V8 heap in use each minute (MB), from /metrics: tells JS objects from native memory. */
const heaps: { at: number; mb: number }[] = [];
let swaps = 0;
const startLog = server.module.logs.length;
try {
  if (RTSP_VIEWERS > 0) await rtsp.open(`${server.rtsp}/player`, RTSP_VIEWERS, 'tcp');
  const webrtcIds = WEBRTC_VIEWERS > 0 ? await webrtc.open(`${server.http!.replace(/^http/, 'ws')}/ws`, WEBRTC_VIEWERS, { batch: WEBRTC_VIEWERS, timeoutMs: 60_000 }) : [];
  const t0 = performance.now();
  const end = t0 + MINUTES * 60_000;
  let nextSwap = t0 + SWAP_EVERY_MS;
  let nextDrop = t0 + DROP_EVERY_MS;
  let nextSample = t0;
  let nextLine = t0 + 60_000;
  let lastCounts = { rtsp: await rtsp.counts(), webrtc: await webrtc.counts(), at: performance.now() };
  let version = 0;
  while (performance.now() < end) {
    const now = performance.now();
    if (now >= nextSample) {
      const [control, engine] = server.pids();
      samples.push({ control: sample(control!, now - t0), engine: sample(engine!, now - t0) });
      nextSample += SAMPLE_MS;
    }
    if (now >= nextSwap) {
      // A changed main pipeline: the module swaps it while the viewers stay.
      const from = server.module.logs.length;
      server.module.writeDesired(desired(++version % 2 === 1 ? 300 : 200));
      await server.module.waitForPipeline('main', 'playing', 30_000, from).catch(() => console.log('  swap: main not playing again within 30 s'));
      swaps++;
      nextSwap += SWAP_EVERY_MS;
    }
    if (now >= nextDrop) {
      drops.push(Date.now());
      await camera.kill('SIGKILL');
      await sleep(DROP_MS);
      await camera.restart();
      nextDrop += DROP_EVERY_MS;
    }
    if (now >= nextLine) {
      const counts = { rtsp: await rtsp.counts(), webrtc: await webrtc.counts(), at: performance.now() };
      const seconds = (counts.at - lastCounts.at) / 1000;
      const rtspFps = (counts.rtsp.frames[0] ?? []).map((f, i) => (f - lastCounts.rtsp.frames[0]![i]!) / seconds);
      const webrtcFps = webrtcIds.map((id) => ((counts.webrtc.counts[id] ?? 0) - (lastCounts.webrtc.counts[id] ?? 0)) / (counts.webrtc.at - lastCounts.webrtc.at));
      lastCounts = counts;
      const last = samples.at(-1)!;
      const heap = await engineHeapMb(server.http!);
      heaps.push({ at: now - t0, mb: heap });
      console.log(
        `  ${((now - t0) / 60_000).toFixed(0).padStart(3)} min: control plane ${(last.control.rssKb / 1024).toFixed(1)} MB (anon ${(last.control.anonKb / 1024).toFixed(1)}) ${last.control.fds} fds ${last.control.threads} threads | ` +
          `engine ${(last.engine.rssKb / 1024).toFixed(1)} MB (anon ${(last.engine.anonKb / 1024).toFixed(1)}, JS heap ${heap.toFixed(1)}) ${last.engine.fds} fds ${last.engine.threads} threads | ` +
          `fps over the minute: RTSP min ${fps(Math.min(...rtspFps))} median ${rtspFps.length ? fps(median(rtspFps)) : '-'}, WebRTC min ${fps(Math.min(...webrtcFps))}`,
      );
      nextLine += 60_000;
    }
    await sleep(500);
  }
  const logs = server.module.logs.slice(startLog);
  const errors = logs.filter((l) => l.level >= 50);
  const nearDrop = (line: Record<string, unknown>) => drops.some((d) => typeof line.time === 'number' && line.time >= d - 1_000 && line.time <= d + DROP_MS + 30_000);
  const unexpected = errors.filter((l) => !nearDrop(l));
  const engineRestarts = logs.filter((l) => l.event === 'engine-died' || l.event === 'engine-failed-to-start' || l.event === 'engine-hung').length;
  const counts = await rtsp.counts();
  const base = samples.find((s) => s.control.at >= BASELINE_MS) ?? samples[0]!;
  const last = samples.at(-1)!;
  // RSS moves by ±10% from one reading to the next (allocator pools given back or not): growth compares the median
  // of the readings in the GROWTH_WINDOW_MS after the baseline with the median of the last GROWTH_WINDOW_MS.
  const window = Math.min(GROWTH_WINDOW_MS, (last.control.at - base.control.at) / 2);
  const early = samples.filter((s) => s.control.at >= base.control.at && s.control.at < base.control.at + window);
  const late = samples.filter((s) => s.control.at > last.control.at - window);
  const growth = (pick: (s: { control: Sample; engine: Sample }) => Sample, key: 'rssKb' | 'anonKb' = 'rssKb') => {
    const from = median(early.map((s) => pick(s)[key]));
    const to = median(late.map((s) => pick(s)[key]));
    const range = (list: typeof samples) => `${(Math.min(...list.map((s) => pick(s)[key])) / 1024).toFixed(0)}-${(Math.max(...list.map((s) => pick(s)[key])) / 1024).toFixed(0)}`;
    return `${(((to - from) / from) * 100).toFixed(1)}% (median ${(from / 1024).toFixed(1)} MB [${range(early)}] -> ${(to / 1024).toFixed(1)} MB [${range(late)}])`;
  };
  const flat = (pick: (s: { control: Sample; engine: Sample }) => Sample, key: 'fds' | 'threads') =>
    `${pick(samples[0]!)[key]} at start, ${pick(base)[key]} at ${(base.control.at / 60_000).toFixed(0)} min, ${pick(last)[key]} at the end, max ${Math.max(...samples.map((s) => pick(s)[key]))}`;
  console.log(`\nsoak over ${MINUTES} min: ${swaps} swaps, ${drops.length} camera drops`);
  console.log(`RSS growth, the ${(window / 60_000).toFixed(0)} minutes from minute ${(base.control.at / 60_000).toFixed(0)} vs the last ${(window / 60_000).toFixed(0)} (goal < 5%): control plane ${growth((s) => s.control)}, engine ${growth((s) => s.engine)}`);
  console.log(`  anonymous memory alone (RssAnon: heaps and mmaps, not pages of mapped files): control plane ${growth((s) => s.control, 'anonKb')}, engine ${growth((s) => s.engine, 'anonKb')}`);
  console.log(`engine JS heap (MB): ${(heaps.find((h) => h.at >= base.control.at) ?? heaps.at(-1))?.mb.toFixed(1)} at the baseline, ${heaps.at(-1)?.mb.toFixed(1)} at the end, max ${Math.max(...heaps.map((h) => h.mb)).toFixed(1)}`);
  console.log(`fds (goal flat): control plane ${flat((s) => s.control, 'fds')}; engine ${flat((s) => s.engine, 'fds')}`);
  console.log(`threads (goal flat): control plane ${flat((s) => s.control, 'threads')}; engine ${flat((s) => s.engine, 'threads')}`);
  console.log(`errors in the module's log (goal 0): ${unexpected.length}, and ${errors.length - unexpected.length} within 30 s of a camera drop; engine restarts ${engineRestarts}`);
  for (const line of [...new Set(unexpected.map((l) => l.msg))].slice(0, 5)) console.log(`  error: ${line.slice(0, 200)}`);
  for (const line of [...new Set(errors.filter(nearDrop).map((l) => l.msg))].slice(0, 3)) console.log(`  at a camera drop: ${line.slice(0, 200)}`);
  console.log(`viewers disconnected by the module: RTSP ${counts.disconnected}/${RTSP_VIEWERS}, WebRTC ${webrtc.closedByModule().length}/${WEBRTC_VIEWERS}; WebRTC receiver errors ${webrtc.errors.length}`);
} finally {
  await webrtc.stop();
  await rtsp.stop();
  await server.stop();
  await camera.stop();
}
