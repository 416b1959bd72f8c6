/**
 * Timestamps at an RTSP viewer, each beside the same thing measured without the module's sample hub in the same run:
 *   jitter: the frame interval of the RTP timestamps a viewer gets (30 fps: 3000 ticks of 90 kHz, 33.333 ms), p99 of
 *           |interval - 1/fps|, in shared mode (main pipeline -> appsink -> hub -> appsrc -> /player), in shared mode
 *           relaying a camera (rtspsrc in the main pipeline), and in direct mode (rtsp_pipeline encodes itself)
 *           (goal: shared p99 <= 1 ms); the arrival-time jitter beside it, for scale.
 *   avsync: the A/V offset (audio edge - video edge, ms) two viewers present, for two sources whose picture and sound
 *           change at the same timestamps:
 *           - generated in the module (videotestsrc `flip=true` turns the picture over every 50 frames, audiotestsrc
 *             ticks at the same 1.667 s), the same encoders in every mode: direct (encoders and payloaders in
 *             rtsp_pipeline), shared through the sample hub (appsink -> appsrc) and shared through proxysink ->
 *             proxysrc; what shared adds to direct is the module's own share, with no camera's RTCP in between;
 *           - a camera relayed (bench/support/avSyncCamera.py: flash and beep): the camera itself, direct, shared.
 *           The viewers: ffmpeg (bench/support/ffmpegAvEdges.ts), which puts both streams on the sender's clock by the
 *           RTCP sender reports, as ffplay and VLC do, and GStreamer's playbin (bench/support/avSyncViewer.py), whose
 *           rtspsrc presents what the packets' arrival says and changes with how a viewer joins. The module should add
 *           nothing to direct mode's offset (goal: within a frame, ±33 ms).
 *           A sender report's time is the packet's timestamp plus the latency upstream of its RTP session (rtpsession's
 *           rtcp-sync-send-time, on by default): generated in direct mode that is 33.3 ms for the video (one frame of
 *           the live source) and 10 ms for the audio, so direct mode shows audio 24 to 30 ms late; through the hub
 *           both sessions start at a live appsrc (latency 0) and report the producer's timestamps as they are.
 * Env: WINDOW_S (10), RUNS (1).
 * Run: node dist/bench/timestamps.js [jitter|avsync]
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { median, percentile } from './cpu.js';
import { CameraSimulator } from '../test/support/cameraSimulator.js';
import { ffmpegAvEdges, type AvEdge as Edge } from './support/ffmpegAvEdges.js';
import { RtspClient } from './support/RtspClient.js';
import { freePort, sleep, startModule, stopChild } from './support/servers.js';

const WINDOW_MS = Number(process.env.WINDOW_S ?? 10) * 1000;
const RUNS = Number(process.env.RUNS ?? 1);
const SRC = 'videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1';
const SHARED_RTSP = '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )';
const FRAME_MS = 1000 / 30;
const fmt = (n: number, digits = 3) => n.toFixed(digits);

/** Deviations of consecutive intervals from one frame, in ms. */
function deviations(times: number[]): number[] {
  return times.slice(1).map((t, i) => Math.abs(t - times[i]! - FRAME_MS));
}

function describe(dev: number[]): string {
  return `p50 ${fmt(median(dev))} p99 ${fmt(percentile(dev, 0.99))} max ${fmt(Math.max(...dev))} ms`;
}

/** One viewer of `url` for WINDOW_MS: the RTP-timestamp and arrival intervals' deviations (first second skipped). */
async function watch(url: string): Promise<{ rtp: number[]; arrival: number[]; frames: number }> {
  const client = new RtspClient(url, { keepTimes: true });
  await client.start();
  await sleep(WINDOW_MS + 1_000);
  client.close();
  // RTP time wraps at 2^32: unwrap to ms.
  const rtp: number[] = [];
  let base = 0;
  for (const [i, t] of client.rtpTimes!.entries()) {
    if (i > 0 && t < client.rtpTimes![i - 1]! - 2 ** 31) base += 2 ** 32;
    rtp.push((base + t) / 90);
  }
  return { rtp: deviations(rtp.slice(30)), arrival: deviations(client.times!.slice(30)), frames: client.frames };
}

async function jitter(): Promise<void> {
  console.log(`frame interval jitter at one RTSP/TCP viewer, 640x360@30 H.264, ${WINDOW_MS / 1000} s (goal: shared p99 <= 1 ms)`);
  const camera = await CameraSimulator.start({ width: 640, height: 360, fps: 30 });
  try {
    const modes: [string, () => Record<string, unknown>][] = [
      ['shared (videotestsrc producer)', () => ({ pipeline: `${SRC} ! appsink name=video max-buffers=30 drop=true sync=false`, rtsp_pipeline: SHARED_RTSP })],
      ['shared (camera via rtspsrc)   ', () => ({ pipeline: `rtspsrc location=${camera.url()} protocols=tcp ! rtph264depay ! h264parse config-interval=-1 ! appsink name=video max-buffers=30 drop=true`, rtsp_pipeline: SHARED_RTSP })],
      ['direct                        ', () => ({ rtsp_pipeline: `( ${SRC} ! rtph264pay config-interval=-1 name=pay0 pt=96 )` })],
    ];
    for (let run = 1; run <= RUNS; run++) {
      for (const [name, desired] of modes) {
        const twin = desired();
        const server = await startModule({ ...twin, http_server: false });
        try {
          const { rtp, arrival, frames } = await watch(`${server.rtsp}/player`);
          console.log(`  ${name}: RTP timestamps ${describe(rtp)} | arrival ${describe(arrival)} | ${frames} frames`);
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    await camera.stop();
  }
}

type Viewer = 'ffmpeg' | 'gstreamer';
// GStreamer's first: its offset depends on joining a media that is already playing, ffmpeg's does not.
const VIEWERS: Viewer[] = ['gstreamer', 'ffmpeg'];
/** ffmpeg's edges before this are left out (before its first sender reports); it watches WINDOW_MS after it. */
const FFMPEG_SKIP_S = 6;

/** The edges the GStreamer viewer (bench/support/avSyncViewer.py: playbin, rtspsrc's lip-sync) presents in WINDOW_MS. */
async function gstreamerEdges(url: string): Promise<Edge[]> {
  const script = fileURLToPath(new URL('../../bench/support/avSyncViewer.py', import.meta.url));
  const viewer = spawn('/usr/bin/python3', [script, url], { stdio: ['pipe', 'pipe', 'inherit'] });
  const edges: Edge[] = [];
  createInterface({ input: viewer.stdout! }).on('line', (line) => {
    const parsed = JSON.parse(line) as Edge | { error: string };
    if ('error' in parsed) console.log(`  viewer: ${parsed.error}`);
    else edges.push(parsed);
  });
  await sleep(WINDOW_MS + 2_000);
  await stopChild(viewer);
  // Its first video edge can be the first frame's.
  const firstVideo = edges.findIndex((e) => e.kind === 'video');
  return firstVideo < 0 ? edges : edges.filter((_, i) => i !== firstVideo);
}

/**
 * The A/V offsets (ms) one viewer presents: each video edge with the audio edge of the same direction nearest to
 * it, or with the nearest audio edge of direction `audioEdge` (a tick's start: every flip of the picture has one).
 */
async function offsets(url: string, viewer: Viewer, audioEdge?: Edge['edge']): Promise<{ values: number[]; video: number; audio: number }> {
  const edges = viewer === 'ffmpeg' ? await ffmpegAvEdges(url, WINDOW_MS / 1000 + FFMPEG_SKIP_S, FFMPEG_SKIP_S) : await gstreamerEdges(url);
  const video = edges.filter((e) => e.kind === 'video');
  const audio = edges.filter((e) => e.kind === 'audio');
  const result: number[] = [];
  for (const v of video) {
    const nearest = audio.filter((a) => a.edge === (audioEdge ?? v.edge)).sort((a, b) => Math.abs(a.t - v.t) - Math.abs(b.t - v.t))[0];
    // Same-direction edges come every second at the camera and every 1.667 s generated: 450 ms is unambiguous.
    if (nearest && Math.abs(nearest.t - v.t) < 450e6) result.push((nearest.t - v.t) / 1e6);
  }
  return { values: result, video: video.length, audio: audio.length };
}

/** Every viewer's offsets of one mode, one line each; each viewer's median kept by mode for the comparisons. */
async function measure(name: string, url: string, byMode: Map<string, number[]>, audioEdge?: Edge['edge']): Promise<void> {
  for (const viewer of VIEWERS) {
    const result = await offsets(url, viewer, audioEdge);
    show(`${name} ${viewer.padEnd(9)}`, result);
    const key = `${name.trim()}|${viewer}`;
    if (result.values.length > 0) byMode.set(key, [...(byMode.get(key) ?? []), median(result.values)]);
  }
}

/** `a - b` for each viewer over the runs (medians of the per-run medians), with the per-run figures. */
function compare(a: string, b: string, byMode: Map<string, number[]>, goal: string): void {
  for (const viewer of VIEWERS) {
    const x = byMode.get(`${a}|${viewer}`) ?? [];
    const y = byMode.get(`${b}|${viewer}`) ?? [];
    if (x.length === 0 || y.length === 0) continue;
    console.log(`  ${a} - ${b}, ${viewer}: ${fmt(median(x) - median(y), 1)} ms over ${x.length} run(s) (per run, median: ${b} ${y.map((v) => v.toFixed(0)).join(' ')}; ${a} ${x.map((v) => v.toFixed(0)).join(' ')}) (${goal})`);
  }
}

/** Picture and sound that change together, made in the module: 50 frames at 30 fps = one tick interval. */
const FLIP_VIDEO =
  'videotestsrc is-live=true pattern=ball flip=true ! video/x-raw,width=640,height=360,framerate=30/1 ! ' +
  'x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1';
const TICK_AUDIO =
  'audiotestsrc is-live=true wave=ticks tick-interval=1666666667 samplesperbuffer=480 ! audio/x-raw,rate=48000,channels=1 ! ' +
  'audioconvert ! avenc_aac ! aacparse';
const PAY_VIDEO = 'rtph264pay config-interval=-1 name=pay0 pt=96';
const PAY_AUDIO = 'rtpmp4gpay name=pay1 pt=97';

/** One line of offsets, or why there are none. */
function show(name: string, { values, video, audio }: { values: number[]; video: number; audio: number }): void {
  console.log(`  ${name}: ${values.length === 0 ? `no pair of edges (${video} video, ${audio} audio edges)` : `median ${fmt(median(values), 1)} ms, min ${fmt(Math.min(...values), 1)}, max ${fmt(Math.max(...values), 1)} (${values.length} edges: ${values.map((v) => v.toFixed(0)).join(' ')})`}`);
}

async function avsyncGenerated(): Promise<void> {
  console.log(`A/V offset at an RTSP viewer, picture and sound generated in the module (the same encoders in every mode), ${WINDOW_MS / 1000} s`);
  const modes: [string, Record<string, unknown>][] = [
    ['direct                 ', { rtsp_pipeline: `( ${FLIP_VIDEO} ! ${PAY_VIDEO} ${TICK_AUDIO} ! ${PAY_AUDIO} )` }],
    [
      'shared, hub            ',
      {
        pipeline: `${FLIP_VIDEO} ! appsink name=video max-buffers=30 drop=true ${TICK_AUDIO} ! appsink name=audio max-buffers=30 drop=true`,
        rtsp_pipeline: `( appsrc name=videosrc ! h264parse ! ${PAY_VIDEO} appsrc name=audiosrc ! aacparse ! ${PAY_AUDIO} )`,
      },
    ],
    [
      'shared, proxysink      ',
      {
        pipeline: `${FLIP_VIDEO} ! proxysink name=video ${TICK_AUDIO} ! proxysink name=audio`,
        rtsp_pipeline: `( proxysrc name=videosrc ! h264parse ! ${PAY_VIDEO} proxysrc name=audiosrc ! aacparse ! ${PAY_AUDIO} )`,
      },
    ],
  ];
  const byMode = new Map<string, number[]>();
  for (let run = 1; run <= RUNS; run++) {
    for (const [name, desired] of modes) {
      const server = await startModule({ ...desired, http_server: false });
      try {
        await measure(name, `${server.rtsp}/player`, byMode, 'up');
      } finally {
        await server.stop();
      }
    }
  }
  for (const [name] of modes.slice(1)) compare(name.trim(), modes[0]![0].trim(), byMode, 'goal: within ±33 ms');
}

async function avsync(): Promise<void> {
  await avsyncGenerated();
  const port = await freePort();
  const script = fileURLToPath(new URL('../../bench/support/avSyncCamera.py', import.meta.url));
  const camera = spawn('/usr/bin/python3', [script, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: camera.stdout! }).on('line', (line) => line === 'ready' && resolve());
    camera.once('exit', (code) => reject(new Error(`avSyncCamera.py exited ${code}`)));
  });
  const cameraUrl = `rtsp://127.0.0.1:${port}/camera`;
  console.log(`A/V offset at an RTSP viewer of a relayed camera (audio edge - video edge; flash and beep share their timestamps at the camera), ${WINDOW_MS / 1000} s`);
  const byMode = new Map<string, number[]>();
  try {
    for (let run = 1; run <= RUNS; run++) {
      await measure('camera itself          ', cameraUrl, byMode);
      const direct = await startModule({
        rtsp_pipeline: `( rtspsrc location=${cameraUrl} protocols=tcp name=src src. ! rtph264depay ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 src. ! rtpmp4gdepay ! aacparse ! rtpmp4gpay name=pay1 pt=97 )`,
        http_server: false,
      });
      try {
        await measure('module, direct         ', `${direct.rtsp}/player`, byMode);
      } finally {
        await direct.stop();
      }
      const shared = await startModule({
        pipeline:
          `rtspsrc location=${cameraUrl} protocols=tcp name=src src. ! queue ! rtph264depay ! h264parse config-interval=-1 ! appsink name=video max-buffers=30 drop=true ` +
          'src. ! queue ! rtpmp4gdepay ! aacparse ! appsink name=audio max-buffers=30 drop=true',
        rtsp_pipeline: '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 appsrc name=audiosrc ! aacparse ! rtpmp4gpay name=pay1 pt=97 )',
        http_server: false,
      });
      try {
        await measure('module, shared (hub)   ', `${shared.rtsp}/player`, byMode);
      } finally {
        await shared.stop();
      }
    }
    compare('module, shared (hub)', 'module, direct', byMode, 'goal: within a frame, ±33 ms');
    compare('module, shared (hub)', 'camera itself', byMode, 'what the relay adds, direct as shared');
    compare('module, direct', 'camera itself', byMode, 'the same for direct mode');
  } finally {
    await stopChild(camera);
  }
}

const only = process.argv[2];
if (!only || only === 'jitter') await jitter();
if (!only || only === 'avsync') await avsync();
