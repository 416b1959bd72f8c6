/**
 * What TLS costs, each against its plain baseline measured in the same run, RUNS rounds taken in turns (plain,
 * then TLS) so a noisy neighbour hits both alike; each figure is the median with its spread (min-max).
 *   rtsps:  VIEWERS RTSP/TCP viewers of one shared stream (the main pipeline's appsink -> the RTSP media) over
 *           rtsp:// and over rtsps:// of the same module (the RTSPS server shares the mount points): the module's
 *           CPU (control plane + engine), and the same less what the encode costs with no viewer (goal: CPU ratio
 *           RTSPS/RTSP <= 1.3). Beside it, the same for a plain gst-rtsp-server (python3-gi, both servers on one
 *           set of mount points, the encode in the media): what RTSPS costs in GStreamer itself.
 *   https:  a 1 MiB .m4s fetched by CONNECTIONS keep-alive connections for SECONDS over http:// and https:// of
 *           the module's web server (one port, both): requests/s and the server's CPU per request.
 * The picture is noise (PATTERN snow) at BITRATE kbit/s, so each viewer gets a real stream's bytes to encrypt.
 * Env: VIEWERS (50), SIZE (640x360), PATTERN (snow), BITRATE (2000), RTP_MTU (the payloaders' mtu, default theirs: 1400),
 * WINDOW_S (5), RUNS (3), CONNECTIONS (8), SECONDS (3).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSelfSigned } from '../certs/selfSigned.js';
import { cpuSeconds, median } from './cpu.js';
import { spawnBaseline } from './support/servers.js';
import { ModuleProcess } from '../test/support/ModuleProcess.js';
import { RtspTcpClient } from '../test/support/RtspTcpClient.js';

const VIEWERS = Number(process.env.VIEWERS ?? 50);
const SIZE = process.env.SIZE ?? '640x360';
const PATTERN = process.env.PATTERN ?? 'snow';
const BITRATE = Number(process.env.BITRATE ?? 2000);
/** RTP packets per TLS record: each packet is written (and encrypted) on its own. */
const MTU = process.env.RTP_MTU ? ` mtu=${Number(process.env.RTP_MTU)}` : '';
const WINDOW_MS = Number(process.env.WINDOW_S ?? 5) * 1000;
const RUNS = Number(process.env.RUNS ?? 3);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 8);
const SECONDS = Number(process.env.SECONDS ?? 3);
const SEGMENT_BYTES = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `median (min-max)` of a list, with `digits` decimals. */
function spread(values: number[], digits = 3): string {
  return `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)})`;
}

/** CPU seconds per second of the processes over `windowMs`. */
async function cpuLoad(pids: number[], windowMs: number): Promise<number> {
  const c0 = cpuSeconds(pids);
  const t0 = performance.now();
  await sleep(windowMs);
  return (cpuSeconds(pids) - c0) / ((performance.now() - t0) / 1000);
}

/** `n` viewers of `url`, connecting `batch` at a time. */
async function viewers(url: string, n: number, batch: number): Promise<RtspTcpClient[]> {
  // The first alone: gst-rtsp-server 1.22 can abort when several clients arrive while a shared media prepares.
  const first = new RtspTcpClient(url);
  await first.start(20_000);
  const clients = [first];
  for (let i = 1; i < n; i += batch) {
    const batch_ = Array.from({ length: Math.min(batch, n - i) }, () => new RtspTcpClient(url));
    await Promise.all(batch_.map((c) => c.start(20_000)));
    clients.push(...batch_);
  }
  return clients;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** gst-rtsp-server in python3-gi, plain and RTSPS on the same mount points (bench/rtspBaselineServer.py). */
async function baselineServer(launch: string, pem: string): Promise<{ child: ChildProcess; urls: { plain: string; tls: string } }> {
  const [port, tlsPort] = [await freePort(), await freePort()];
  const script = fileURLToPath(new URL('../../bench/rtspBaselineServer.py', import.meta.url));
  const child = spawnBaseline('/usr/bin/python3', [script, String(port), launch, '--tls', String(tlsPort), pem], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => line === 'ready' && resolve());
    child.on('exit', (code) => reject(new Error(`baseline server exited ${code}`)));
  });
  return { child, urls: { plain: `rtsp://127.0.0.1:${port}/player`, tls: `rtsps://127.0.0.1:${tlsPort}/player` } };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  await exited;
}

/** One measurement: VIEWERS viewers of `url`, the processes' CPU, the bytes they got, the slowest one's frame rate. */
async function fanout(url: string, pids: number[], what: string, batch = 10): Promise<{ load: number; mbps: number; fps: number }> {
  const clients = await viewers(url, VIEWERS, batch).catch((error: unknown) => {
    throw new Error(`${what} (${url}): ${(error as Error).message}`);
  });
  await sleep(2_000);
  const from = performance.now();
  const bytes = clients.reduce((sum, c) => sum + c.bytes, 0);
  const load = await cpuLoad(pids, WINDOW_MS);
  const to = performance.now();
  const result = {
    load,
    mbps: ((clients.reduce((sum, c) => sum + c.bytes, 0) - bytes) * 8) / ((to - from) / 1000) / 1e6,
    fps: Math.min(...clients.map((c) => c.fps(from, to))),
  };
  for (const c of clients) c.close();
  // The shared media goes once its last viewer has: the next measurement starts from the same place.
  await sleep(1_000);
  return result;
}

async function rtsps(): Promise<void> {
  const [w, h] = SIZE.split('x');
  const encode = `videotestsrc is-live=true pattern=${PATTERN} ! video/x-raw,width=${w},height=${h},framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=${BITRATE} ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1`;
  const dir = mkdtempSync(join(tmpdir(), 'tls-bench-'));
  const cert = await generateSelfSigned({ commonName: 'localhost', altNames: ['127.0.0.1'] });
  writeFileSync(join(dir, 'server.pem'), cert.certificatePem + cert.privateKeyPem);
  const baselineLaunch = `( ${encode} ! rtph264pay config-interval=-1 name=pay0 pt=96${MTU} )`;
  const module = new ModuleProcess({
    desired: {
      pipeline: `${encode} ! appsink name=video max-buffers=30 drop=true sync=false`,
      rtsp_pipeline: `( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96${MTU} )`,
      rtsp: { port: 0, address: '127.0.0.1', tls_port: 0 },
      http: { port: 0, address: '127.0.0.1' },
      metrics: { port: null },
      tls: { source: 'self-signed' },
    },
    env: { LOG_LEVEL: 'info' },
  });
  try {
    const listening = await module.waitForLog((l) => l.event === 'rtsp-listening');
    const ready = await module.waitForLog((l) => l.event === 'engine-ready');
    await module.waitForPipeline('main', 'playing');
    const pids = [module.child.pid!, ready.pid as number];
    const urls = { plain: `rtsp://127.0.0.1:${listening.port as number}/player`, tls: `rtsps://127.0.0.1:${listening.tlsPort as number}/player` };
    type Row = { load: number; mbps: number; fps: number };
    const idle: number[] = [];
    const rows = { module: { plain: [] as Row[], tls: [] as Row[] }, baseline: { plain: [] as Row[], tls: [] as Row[] } };
    for (let run = 0; run < RUNS; run++) {
      idle.push(await cpuLoad(pids, WINDOW_MS));
      for (const kind of ['plain', 'tls'] as const) rows.module[kind].push(await fanout(urls[kind], pids, `module ${kind}`));
      // A fresh server each time (gst-rtsp-server 1.22 can abort on a client that comes while the last shared media
      // goes), and viewers one at a time (the python3-gi server stalls on TLS handshakes that arrive together; the
      // module takes them 10 at once).
      for (const kind of ['plain', 'tls'] as const) {
        const baseline = await baselineServer(baselineLaunch, join(dir, 'server.pem'));
        try {
          rows.baseline[kind].push(await fanout(baseline.urls[kind], [baseline.child.pid!], `gst-rtsp-server ${kind}`, 1));
        } finally {
          await stopChild(baseline.child);
        }
      }
    }
    console.log(`RTSPS fan-out: ${VIEWERS} viewers of ${SIZE}@30 H.264 (${PATTERN}, ${BITRATE} kbit/s; one shared media), RTP over RTSP/TCP, ${RUNS} runs of ${WINDOW_MS / 1000} s; median (min-max)`);
    console.log(`  module, no viewer (the encode): ${spread(idle)} CPU-s/s`);
    for (const who of ['module', 'baseline'] as const) {
      for (const kind of ['plain', 'tls'] as const) {
        const r = rows[who][kind];
        const serving = who === 'module' ? `; serving ${spread(r.map((x, i) => x.load - idle[i]!))} CPU-s/s` : '';
        console.log(
          `  ${(who === 'module' ? 'module' : 'gst-rtsp-server').padEnd(15)} ${kind === 'plain' ? 'rtsp:// ' : 'rtsps://'} ${spread(r.map((x) => x.load))} CPU-s/s, viewers get ${spread(r.map((x) => x.mbps), 0)} Mbit/s, slowest ${spread(r.map((x) => x.fps), 1)} fps${serving}`,
        );
      }
    }
    const ratios = rows.module.tls.map((t, i) => t.load / rows.module.plain[i]!.load);
    const servingRatios = rows.module.tls.map((t, i) => (t.load - idle[i]!) / (rows.module.plain[i]!.load - idle[i]!));
    const baselineRatios = rows.baseline.tls.map((t, i) => t.load / rows.baseline.plain[i]!.load);
    const ratio = median(ratios);
    console.log(`  CPU ratio RTSPS/RTSP, module: ${spread(ratios)} (goal <= 1.3: ${ratio <= 1.3 ? 'met' : 'MISSED'}); serving only (less the encode): ${spread(servingRatios, 2)}`);
    console.log(`  CPU ratio RTSPS/RTSP, gst-rtsp-server itself: ${spread(baselineRatios)}`);
  } catch (error) {
    // Say what the module said about it: a benchmark that stops without a reason helps nobody.
    for (const line of module.logs.filter((l) => l.level >= 40).slice(-20)) console.error(`module: ${line.msg}`);
    throw error;
  } finally {
    await module.stop();
    rmSync(module.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One ranged GET of the whole segment; resolves to the status and the body length. */
function get(url: URL, agent: HttpAgent | HttpsAgent): Promise<{ status: number; length: number }> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { agent, headers: { range: `bytes=0-${SEGMENT_BYTES - 1}` } }, (res) => {
      let length = 0;
      res.on('data', (chunk: Buffer) => (length += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, length }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** CONNECTIONS keep-alive loops for SECONDS: requests per second, and the server's CPU seconds per request. */
async function loadOnce(url: URL, serverPid: number): Promise<{ perSecond: number; cpuPerRequest: number }> {
  const agent = url.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, maxSockets: CONNECTIONS, rejectUnauthorized: false }) : new HttpAgent({ keepAlive: true, maxSockets: CONNECTIONS });
  const stopAt = performance.now() + SECONDS * 1000;
  let requests = 0;
  const c0 = cpuSeconds([serverPid]);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < stopAt) {
        const { status, length } = await get(url, agent);
        if (status !== 206 || length !== SEGMENT_BYTES) throw new Error(`${url.protocol} answered ${status} with ${length} bytes`);
        requests++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds([serverPid]) - c0;
  agent.destroy();
  return { perSecond: requests / seconds, cpuPerRequest: cpu / requests };
}

/** The module's web server with TLS beside HTTP on one port, in a child process (this file with `serve`). */
function startServer(mediaRoot: string): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(import.meta.filename, ['serve', mediaRoot], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('message', (port) => resolve({ child, port: port as number }));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

async function https(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tls-bench-'));
  mkdirSync(join(dir, 'media'));
  writeFileSync(join(dir, 'media', 'segment.m4s'), randomBytes(SEGMENT_BYTES));
  const { child, port } = await startServer(join(dir, 'media'));
  try {
    const urls = { plain: new URL(`http://127.0.0.1:${port}/media/segment.m4s`), tls: new URL(`https://127.0.0.1:${port}/media/segment.m4s`) };
    for (const url of Object.values(urls)) await loadOnce(url, child.pid!); // warm-up: JIT, memory cache, TLS sessions
    const results = { plain: [] as Array<{ perSecond: number; cpuPerRequest: number }>, tls: [] as Array<{ perSecond: number; cpuPerRequest: number }> };
    for (let run = 0; run < RUNS; run++) for (const kind of ['plain', 'tls'] as const) results[kind].push(await loadOnce(urls[kind], child.pid!));
    console.log(`HTTPS segment serving: 1 MiB .m4s (memory cache), ${CONNECTIONS} keep-alive connections, ${RUNS} runs of ${SECONDS} s, one port for both; median (min-max)`);
    for (const kind of ['plain', 'tls'] as const) {
      const r = results[kind];
      console.log(
        `  ${kind === 'plain' ? 'http:// ' : 'https://'} ${spread(r.map((x) => x.perSecond), 0)} req/s, ${spread(r.map((x) => (x.perSecond * SEGMENT_BYTES) / 1e6), 0)} MB/s, server ${spread(r.map((x) => x.cpuPerRequest * 1000), 2)} CPU-ms/request`,
      );
    }
    const throughput = results.tls.map((t, i) => t.perSecond / results.plain[i]!.perSecond);
    const cost = results.tls.map((t, i) => t.cpuPerRequest / results.plain[i]!.cpuPerRequest);
    console.log(`  HTTPS/HTTP: throughput ${spread(throughput, 2)}, server CPU per request ${spread(cost, 2)} (the load generator shares the 2 cores and decrypts too)`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'serve') {
  const { createWebApp } = await import('../web/app.js');
  const { addTls } = await import('../web/plainAndTls.js');
  const app = createWebApp({ mediaRoot: process.argv[3]!, logger: false });
  addTls(app, await generateSelfSigned({ commonName: 'localhost', altNames: ['127.0.0.1'] }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  process.send!((app.server.address() as { port: number }).port);
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
} else {
  const only = process.argv[2];
  if (!only || only === 'rtsps') await rtsps();
  if (!only || only === 'https') await https();
}
