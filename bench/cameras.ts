/**
 * Many cameras on one device: N camera stand-ins (720p H.264 at 2 Mbit/s, a pre-encoded loop served by one
 * gst-rtsp-server with N mounts, so the cameras cost no encoding) each relayed to one RTSP viewer through the
 * module's shared path (N named pipelines `rtspsrc ! rtph264depay ! h264parse ! appsink name=camI`, N mounts
 * `appsrc name=camIsrc ! h264parse ! rtph264pay`), against one plain gst-rtsp-server process (python3-gi) doing the
 * same relays (`rtspsrc ! rtph264depay ! h264parse ! rtph264pay` per mount), measured in the same run.
 * Prints, per N: CPU of the module's two processes and of the baseline, their ratio (goal <= 1.15 at 16), every
 * viewer's fps (goal >= 29), and how many cameras fit before a viewer drops below 29 fps. The cameras' and the
 * viewers' processes are measured apart.
 * Env: CAMERAS (4,8,16,24), SIZE (1280x720), BITRATE (2000 kbit/s), WINDOW_S (10), RUNS (1), BASELINE_QUEUE (1: a
 *      `queue` in each baseline relay, the module's thread hop per frame, to tell the hop's cost), LINK (appsink: the
 *      seed's appsink/appsrc, handed over by the plugin's `iotedgehub` in C; js: the same through the JS hub,
 *      `IOTEDGE_HUB=js`; proxysink: `proxysink name=camI` -> `proxysrc name=camIsrc`, the newer spelling).
 * Run: node dist/bench/cameras.js
 */
import { cpuLoads, median, spread } from './cpu.js';
import { RtspClients } from './support/RtspClients.js';
import { baselineRtspServer, loopedCameraLaunch, preEncodedCamera, sleep, startModule } from './support/servers.js';

const COUNTS = (process.env.CAMERAS ?? '4,8,16,24').split(',').map(Number);
const SIZE = process.env.SIZE ?? '1280x720';
const BITRATE = Number(process.env.BITRATE ?? 2000);
const WINDOW_MS = Number(process.env.WINDOW_S ?? 10) * 1000;
const RUNS = Number(process.env.RUNS ?? 1);
const LINK = process.env.LINK ?? 'appsink';
/** Pipelines, their rtspsrc and the viewers settle before a window. */
const SETTLE_MS = 3_000;
const fmt = (n: number, digits = 3) => n.toFixed(digits);
const names = (n: number) => Array.from({ length: n }, (_, i) => `cam${i}`);

interface Measured {
  load: number;
  each: number[];
  clients: number;
  cameras: number;
  fps: number[];
  disconnected: number;
}

async function measure(serverPids: number[], cameraPid: number, urls: string[]): Promise<Measured> {
  const viewers = RtspClients.start(1);
  try {
    await viewers.openEach(urls, 'tcp');
    await sleep(SETTLE_MS);
    const [cpu, fps] = await Promise.all([cpuLoads([...serverPids, cameraPid, ...viewers.pids], WINDOW_MS), viewers.fps(WINDOW_MS)]);
    const each = cpu.each.slice(0, serverPids.length);
    return {
      load: each.reduce((a, b) => a + b, 0),
      each,
      cameras: cpu.each[serverPids.length]!,
      clients: cpu.each.slice(serverPids.length + 1).reduce((a, b) => a + b, 0),
      fps: fps.fps,
      disconnected: fps.disconnected,
    };
  } finally {
    await viewers.stop();
  }
}

async function moduleRelays(cameraBase: string, cameraPid: number, n: number): Promise<Measured> {
  // appsink -> sample hub -> appsrc (buffer references handed over in C, or through the engine's JS thread with
  // LINK=js), or proxysink -> proxysrc (buffers handed over inside GStreamer).
  const [sink, src] = LINK === 'proxysink' ? ['proxysink', 'proxysrc'] : ['appsink', 'appsrc'];
  const sinkProps = LINK === 'proxysink' ? '' : ' max-buffers=30 drop=true sync=false';
  const pipelines = Object.fromEntries(
    names(n).map((cam) => [cam, `rtspsrc location=${cameraBase}/${cam} protocols=tcp ! rtph264depay ! h264parse config-interval=-1 ! ${sink} name=${cam}${sinkProps}`]),
  );
  const mounts = Object.fromEntries(names(n).map((cam) => [cam, `( ${src} name=${cam}src ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )`]));
  const env = LINK === 'js' ? { IOTEDGE_HUB: 'js' } : {};
  const server = await startModule({ pipelines, rtsp: { port: 0, address: '127.0.0.1', mounts }, http_server: false }, { pipelines: names(n), env });
  try {
    const from = server.module.logs.length;
    const result = await measure(server.pids(), cameraPid, names(n).map((cam) => `${server.rtsp}/${cam}`));
    // A relay that restarted while measured explains a viewer without frames.
    const restarts = server.module.logs.slice(from).filter((l) => l.event === 'pipeline-state' && l.state !== 'playing');
    if (restarts.length > 0) console.log(`      module pipelines leaving PLAYING while measured: ${restarts.map((l) => `${String(l.pipeline)} ${String(l.state)} ${String(l.lastError ?? '')}`).join('; ')}`);
    return result;
  } finally {
    await server.stop();
  }
}

async function baselineRelays(cameraBase: string, cameraPid: number, n: number): Promise<Measured> {
  // BASELINE_QUEUE=1: a queue before the payloader gives the plain server the module's one thread hop per frame.
  const hop = process.env.BASELINE_QUEUE === '1' ? 'queue ! ' : '';
  const relay = (cam: string) => `( rtspsrc location=${cameraBase}/${cam} protocols=tcp latency=200 ! rtph264depay ! h264parse config-interval=-1 ! ${hop}rtph264pay config-interval=-1 name=pay0 pt=96 )`;
  const server = await baselineRtspServer(relay('cam0'), Object.fromEntries(names(n).map((cam) => [cam, relay(cam)])));
  try {
    return await measure([server.pid], cameraPid, names(n).map((cam) => `${server.base}/${cam}`));
  } finally {
    await server.stop();
  }
}

const file = preEncodedCamera(SIZE, BITRATE);
const most = Math.max(...COUNTS);
const cameras = await baselineRtspServer(loopedCameraLaunch(file), Object.fromEntries(names(most).map((cam) => [cam, loopedCameraLaunch(file)])));
console.log(`cameras: ${COUNTS.join('/')} stand-ins of ${SIZE}@30 H.264 ${BITRATE} kbit/s, one RTSP/TCP viewer each, module's link ${LINK}, ${WINDOW_MS / 1000} s windows, ${RUNS} run(s)`);
try {
  const ratios = new Map<number, number[]>();
  for (let run = 1; run <= RUNS; run++) {
    let fits = 0;
    let broken = false;
    for (const n of COUNTS) {
      const m = await moduleRelays(cameras.base, cameras.pid, n);
      const b = await baselineRelays(cameras.base, cameras.pid, n);
      const ratio = m.load / b.load;
      ratios.set(n, [...(ratios.get(n) ?? []), ratio]);
      console.log(
        `${String(n).padStart(3)} cameras: module ${fmt(m.load)} CPU-s/s (control plane ${fmt(m.each[0]!)} + engine ${fmt(m.each[1]!)}), fps min ${fmt(Math.min(...m.fps), 1)} median ${fmt(median(m.fps), 1)}` +
          `${m.disconnected ? `, ${m.disconnected} disconnected` : ''} | plain gst-rtsp-server ${fmt(b.load)} CPU-s/s, fps min ${fmt(Math.min(...b.fps), 1)} median ${fmt(median(b.fps), 1)}` +
          `${b.disconnected ? `, ${b.disconnected} disconnected` : ''} | CPU ratio ${fmt(ratio)} | cameras ${fmt(m.cameras)} / ${fmt(b.cameras)}, viewers ${fmt(m.clients)} / ${fmt(b.clients)} CPU-s/s`,
      );
      const slow = m.fps.flatMap((f, i) => (f < 29 ? [`cam${i} ${fmt(f, 1)} fps`] : []));
      if (slow.length > 0) console.log(`      module viewers below 29 fps: ${slow.join(', ')}`);
      broken ||= Math.min(...m.fps) < 29 || m.disconnected > 0;
      if (!broken) fits = n;
    }
    console.log(`run ${run}: every viewer >= 29 fps up to ${fits || 'none'} of ${COUNTS.join('/')} cameras`);
  }
  for (const [n, values] of ratios) {
    const goal = n === 16 ? ' (goal <= 1.15)' : '';
    console.log(`CPU ratio at ${n} cameras: ${values.map((v) => fmt(v)).join(', ')}${values.length > 1 ? `, spread ±${fmt(spread(values) * 100, 1)}%` : ''}${goal}`);
  }
} finally {
  await cameras.stop();
}
