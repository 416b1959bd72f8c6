/**
 * Many cameras on one device: N camera stand-ins (720p H.264 at 2 Mbit/s, a pre-encoded loop served by one
 * gst-rtsp-server with N mounts, so the cameras cost no encoding) each relayed to one RTSP viewer through the
 * module's shared path (N named pipelines `rtspsrc ! rtph264depay ! h264parse ! appsink name=camI`, N mounts
 * `appsrc name=camIsrc ! h264parse ! rtph264pay`), against one plain gst-rtsp-server process (python3-gi) doing the
 * same relays (`rtspsrc ! rtph264depay ! h264parse ! rtph264pay` per mount), measured in the same run.
 * Prints, per N: CPU of the module's two processes and of the baseline, their ratio (goal <= 1.15 at 16), every
 * viewer's fps (goal >= 29), and how many cameras fit before a viewer drops below 29 fps. The cameras' and the
 * viewers' processes are measured apart.
 * Paired (the default): the module and the baseline relay the same N cameras at the same time, each to its own
 * viewers, and each window measures both, so a change in the machine's speed (this VM's varies: the cameras'
 * process, the same work in every window, took 0.14 to 0.19 CPU-s/s from one minute to the next) counts the same
 * on both sides of the ratio; the ratio is the median of WINDOWS windows. `PAIRED=0` measures them one after the
 * other, alone on the machine, which is what "how many fit" needs (paired, the baseline's load is beside them).
 * The plain server runs in a session of its own, as the engine does (`spawnBaseline`): sharing the benchmark's session
 * (and so its sched_autogroup) with the cameras and viewers, it was woken later and batched more packets per
 * wake-up, which read as the module costing 1.26-1.37 times as much; in its own session, 1.16.
 * Env: CAMERAS (4,8,16,24), SIZE (1280x720), BITRATE (2000 kbit/s), WINDOW_S (10), WINDOWS (3, paired), PAIRED (1),
 *      RUNS (1), BASELINE_QUEUE (1: a
 *      `queue` in each baseline relay, the module's thread hop per frame, to tell the hop's cost), LINK (appsink: the
 *      seed's appsink/appsrc, handed over by the plugin's `iotedgehub` in C; js: the same through the JS hub,
 *      `IOTEDGE_HUB=js`; proxysink: `proxysink name=camI` -> `proxysrc name=camIsrc`, the newer spelling),
 *      BASELINE (plain; split: the plain server laid out as the module is, a pipeline per camera into proxysink and
 *      a mount `proxysrc ! h264parse ! rtph264pay`, to tell the cost of that layout from the module's own).
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
const PAIRED = process.env.PAIRED !== '0';
const WINDOWS = Number(process.env.WINDOWS ?? 3);
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

/** A server relaying N cameras: its processes, its mounts' URLs, and what to check after a measurement. */
interface Relays {
  pids: number[];
  urls: string[];
  /** A line on relays that restarted while measured (a viewer without frames), or null. */
  restarts(): string | null;
  stop(): Promise<void>;
}

async function moduleRelays(cameraBase: string, n: number): Promise<Relays> {
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
  const from = server.module.logs.length;
  return {
    pids: server.pids(),
    urls: names(n).map((cam) => `${server.rtsp}/${cam}`),
    restarts: () => {
      const left = server.module.logs.slice(from).filter((l) => l.event === 'pipeline-state' && l.state !== 'playing');
      return left.length > 0 ? `module pipelines leaving PLAYING while measured: ${left.map((l) => `${String(l.pipeline)} ${String(l.state)} ${String(l.lastError ?? '')}`).join('; ')}` : null;
    },
    stop: () => server.stop(),
  };
}

async function baselineRelays(cameraBase: string, n: number): Promise<Relays> {
  // BASELINE_QUEUE=1: a queue before the payloader gives the plain server the module's one thread hop per frame.
  const hop = process.env.BASELINE_QUEUE === '1' ? 'queue ! ' : '';
  const source = (cam: string) => `rtspsrc location=${cameraBase}/${cam} protocols=tcp latency=200 ! rtph264depay ! h264parse config-interval=-1`;
  // BASELINE=split: the plain server laid out as the module is (a pipeline per camera into proxysink, a mount from
  // proxysrc with its own parser), to tell the layout's cost from the module's own.
  const split = process.env.BASELINE === 'split';
  const relay = (cam: string) =>
    split ? `( proxysrc name=${cam}src ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )` : `( ${source(cam)} ! ${hop}rtph264pay config-interval=-1 name=pay0 pt=96 )`;
  const pipelines = split ? Object.fromEntries(names(n).map((cam) => [cam, `${source(cam)} ! proxysink name=${cam}`])) : {};
  const server = await baselineRtspServer(`( ${source('cam0')} ! rtph264pay name=pay0 pt=96 )`, Object.fromEntries(names(n).map((cam) => [cam, relay(cam)])), pipelines);
  return { pids: [server.pid], urls: names(n).map((cam) => `${server.base}/${cam}`), restarts: () => null, stop: () => server.stop() };
}

/**
 * Measures the servers at once, over `windows` windows: each server's viewers in a client process of their own.
 * Per window and server: CPU of its processes, its viewers' fps; the cameras' process is the same for all.
 */
async function measure(servers: Relays[], cameraPid: number, windows: number): Promise<Measured[][]> {
  const viewers = servers.map(() => RtspClients.start(1));
  try {
    for (const [i, server] of servers.entries()) await viewers[i]!.openEach(server.urls, 'tcp');
    await sleep(SETTLE_MS);
    const out: Measured[][] = [];
    for (let w = 0; w < windows; w++) {
      const pids = [...servers.flatMap((s) => s.pids), cameraPid, ...viewers.flatMap((v) => v.pids)];
      const [cpu, ...fps] = await Promise.all([cpuLoads(pids, WINDOW_MS), ...viewers.map((v) => v.fps(WINDOW_MS))]);
      let at = 0;
      const serverLoads = servers.map((s) => {
        const each = cpu.each.slice(at, at + s.pids.length);
        at += s.pids.length;
        return each;
      });
      const cameras = cpu.each[at++]!;
      out.push(
        servers.map((_, i) => {
          const clients = cpu.each.slice(at, at + viewers[i]!.pids.length).reduce((a, b) => a + b, 0);
          at += viewers[i]!.pids.length;
          return { load: serverLoads[i]!.reduce((a, b) => a + b, 0), each: serverLoads[i]!, cameras, clients, fps: fps[i]!.fps, disconnected: fps[i]!.disconnected };
        }),
      );
    }
    return out;
  } finally {
    await Promise.all(viewers.map((v) => v.stop()));
  }
}

async function sequential(cameraBase: string, cameraPid: number, n: number): Promise<{ m: Measured; b: Measured }> {
  const module = await moduleRelays(cameraBase, n);
  let m: Measured;
  try {
    m = (await measure([module], cameraPid, 1))[0]![0]!;
    const restarts = module.restarts();
    if (restarts) console.log(`      ${restarts}`);
  } finally {
    await module.stop();
  }
  const baseline = await baselineRelays(cameraBase, n);
  try {
    return { m, b: (await measure([baseline], cameraPid, 1))[0]![0]! };
  } finally {
    await baseline.stop();
  }
}

/** Both relaying at once; one line per window, and the window with the median ratio as the result. */
async function paired(cameraBase: string, cameraPid: number, n: number): Promise<{ m: Measured; b: Measured }> {
  const module = await moduleRelays(cameraBase, n);
  try {
    const baseline = await baselineRelays(cameraBase, n);
    try {
      const windows = await measure([module, baseline], cameraPid, WINDOWS);
      const restarts = module.restarts();
      if (restarts) console.log(`      ${restarts}`);
      const ratios = windows.map(([m, b]) => m!.load / b!.load);
      for (const [w, [m, b]] of windows.entries()) {
        console.log(`      window ${w + 1}: module ${fmt(m!.load)} (control plane ${fmt(m!.each[0]!)} + engine ${fmt(m!.each[1]!)}) | plain ${fmt(b!.load)} CPU-s/s | ratio ${fmt(ratios[w]!)} | cameras ${fmt(m!.cameras)} CPU-s/s (serving both)`);
      }
      const mid = ratios.indexOf(median(ratios));
      return { m: windows[mid]![0]!, b: windows[mid]![1]! };
    } finally {
      await baseline.stop();
    }
  } finally {
    await module.stop();
  }
}

const file = preEncodedCamera(SIZE, BITRATE);
const most = Math.max(...COUNTS);
// Paired, each camera has two viewers (the module's relay and the plain server's).
const cameras = await baselineRtspServer(loopedCameraLaunch(file), Object.fromEntries(names(most).map((cam) => [cam, loopedCameraLaunch(file)])));
console.log(
  `cameras: ${COUNTS.join('/')} stand-ins of ${SIZE}@30 H.264 ${BITRATE} kbit/s, one RTSP/TCP viewer each, module's link ${LINK}, ` +
    `${PAIRED ? `module and plain server side by side, ${WINDOWS} windows` : 'module, then plain server'} of ${WINDOW_MS / 1000} s, ${RUNS} run(s)`,
);
try {
  const ratios = new Map<number, number[]>();
  for (let run = 1; run <= RUNS; run++) {
    let fits = 0;
    let broken = false;
    for (const n of COUNTS) {
      const { m, b } = PAIRED ? await paired(cameras.base, cameras.pid, n) : await sequential(cameras.base, cameras.pid, n);
      const ratio = m.load / b.load;
      ratios.set(n, [...(ratios.get(n) ?? []), ratio]);
      console.log(
        `${String(n).padStart(3)} cameras: module ${fmt(m.load)} CPU-s/s (control plane ${fmt(m.each[0]!)} + engine ${fmt(m.each[1]!)}), fps min ${fmt(Math.min(...m.fps), 1)} median ${fmt(median(m.fps), 1)}` +
          `${m.disconnected ? `, ${m.disconnected} disconnected` : ''} | plain gst-rtsp-server ${fmt(b.load)} CPU-s/s, fps min ${fmt(Math.min(...b.fps), 1)} median ${fmt(median(b.fps), 1)}` +
          `${b.disconnected ? `, ${b.disconnected} disconnected` : ''} | CPU ratio ${fmt(ratio)}${PAIRED ? ' (median window)' : ''} | cameras ${fmt(m.cameras)} / ${fmt(b.cameras)}, viewers ${fmt(m.clients)} / ${fmt(b.clients)} CPU-s/s`,
      );
      const slow = m.fps.flatMap((f, i) => (f < 29 ? [`cam${i} ${fmt(f, 1)} fps`] : []));
      if (slow.length > 0) console.log(`      module viewers below 29 fps: ${slow.join(', ')}`);
      broken ||= Math.min(...m.fps) < 29 || m.disconnected > 0;
      if (!broken) fits = n;
    }
    console.log(`run ${run}: every viewer >= 29 fps up to ${fits || 'none'} of ${COUNTS.join('/')} cameras${PAIRED ? ' (with the plain server relaying beside; PAIRED=0 for the module alone)' : ''}`);
  }
  for (const [n, values] of ratios) {
    const goal = n === 16 ? ' (goal <= 1.15)' : '';
    console.log(`CPU ratio at ${n} cameras: ${values.map((v) => fmt(v)).join(', ')}${values.length > 1 ? `, spread ±${fmt(spread(values) * 100, 1)}%` : ''}${goal}`);
  }
} finally {
  await cameras.stop();
}
