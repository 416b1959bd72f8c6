import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CameraSimulator } from '../support/cameraSimulator.js';
import { ModuleProcess } from '../support/ModuleProcess.js';
import { RtspViewer } from '../support/RtspViewer.js';

const run = promisify(execFile);

// The seed's examples, verbatim but for the camera's port (in $IP).
const SEED_MAIN =
  'rtspsrc protocols=GST_RTSP_LOWER_TRANS_TCP location=rtsp://$USER:$PASSWORD@$IP/axis-media/media.amp name=src src. ! queue ! rtph264depay ! h264parse config-interval=-1 ! appsink name=video max-buffers=30 drop=true src. ! rtpmp4gdepay ! aacparse ! appsink name=audio drop=true max-buffers=30';
const SEED_DIRECT =
  "( rtspsrc protocols=GST_RTSP_LOWER_TRANS_TCP location='rtsp://$USER:$PASSWORD@$IP/axis-media/media.amp' latency=200 name=src src. ! queue ! rtph264depay ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 src. ! rtpmp4gdepay ! aacparse ! rtpmp4apay name=pay1 pt=97 )";
const SEED_SHARED = '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )';
const SHARED_AV =
  '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 appsrc name=audiosrc ! aacparse ! rtpmp4apay name=pay1 pt=97 )';
const TEST_SOURCE = (pattern: string) =>
  `videotestsrc is-live=true pattern=${pattern} ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 ! appsink name=video max-buffers=30 drop=true sync=false`;
const LOOPBACK = { port: 0, address: '127.0.0.1' };

let camera: CameraSimulator;
const modules: ModuleProcess[] = [];
const viewers: RtspViewer[] = [];

before(async () => {
  camera = await CameraSimulator.start({ user: 'viewer', password: 'cam-S3cret' });
});
after(async () => {
  await Promise.all(viewers.map((v) => v.stop()));
  await Promise.all(modules.map((m) => m.stop()));
  await camera.stop();
  for (const m of modules) rmSync(m.dir, { recursive: true, force: true });
});

async function startModule(desired: Record<string, unknown>): Promise<{ module: ModuleProcess; url: string }> {
  const module = new ModuleProcess({
    desired: { rtsp: LOOPBACK, restart_policy: { initial_delay_ms: 200, max_delay_ms: 1_000 }, ...desired },
    env: { USER: camera.user, PASSWORD: camera.password, IP: `127.0.0.1:${camera.port}` },
  });
  modules.push(module);
  const listening = await module.waitForLog((l) => l.event === 'rtsp-listening');
  return { module, url: `rtsp://127.0.0.1:${listening.port as number}/player` };
}

function viewer(url: string, transport: 'tcp' | 'udp'): RtspViewer {
  const v = new RtspViewer({ url, transport });
  viewers.push(v);
  return v;
}

async function probe(url: string): Promise<Array<{ codec_name: string; width?: number; height?: number }>> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-rtsp_transport', 'tcp', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', url], {
    timeout: 20_000,
  });
  return (JSON.parse(stdout) as { streams: Array<{ codec_name: string; width?: number; height?: number }> }).streams;
}

describe('RTSP at /player', () => {
  it('serves the seed\'s direct rtsp_pipeline (camera -> payloaders) to ffprobe over TCP, video and audio', async () => {
    const { module, url } = await startModule({ pipeline: SEED_MAIN, rtsp_pipeline: SEED_DIRECT });
    await module.waitForPipeline('main', 'playing');
    const streams = await probe(url);
    const video = streams.find((s) => s.codec_name === 'h264');
    assert.ok(video, JSON.stringify(streams));
    assert.equal(video.width, 640);
    assert.equal(video.height, 360);
    assert.ok(streams.some((s) => s.codec_name === 'aac'), JSON.stringify(streams));
    await module.stop();
  });

  it('feeds the seed\'s shared rtsp_pipeline (appsrc videosrc) from the main pipeline\'s appsink to ffprobe and to rtspsrc over UDP', async () => {
    const { module, url } = await startModule({ pipeline: SEED_MAIN, rtsp_pipeline: SHARED_AV });
    await module.waitForPipeline('main', 'playing');
    const streams = await probe(url);
    assert.deepEqual(
      streams.map((s) => s.codec_name).sort(),
      ['aac', 'h264'],
    );
    assert.equal(streams.find((s) => s.codec_name === 'h264')?.width, 640);
    const udp = viewer(url, 'udp');
    await udp.waitForFrames(30);
    await udp.stop();
    await module.stop();
  });

  it('hands the shared streams over in C (iotedgehub), and the JS fallback (IOTEDGE_HUB=js) serves the same A/V mount', async () => {
    for (const hub of ['native', 'js'] as const) {
      const module = new ModuleProcess({
        desired: { rtsp: LOOPBACK, pipeline: SEED_MAIN, rtsp_pipeline: SHARED_AV },
        env: { USER: camera.user, PASSWORD: camera.password, IP: `127.0.0.1:${camera.port}`, ...(hub === 'js' ? { IOTEDGE_HUB: 'js' } : {}) },
      });
      modules.push(module);
      const said = await module.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('sample hub: '));
      assert.equal(said.msg, hub === 'native' ? 'sample hub: in C (iotedgehub)' : 'sample hub: in JS (the iotedgehub plugin is not loaded, or IOTEDGE_HUB=js)');
      const listening = await module.waitForLog((l) => l.event === 'rtsp-listening');
      await module.waitForPipeline('main', 'playing');
      const url = `rtsp://127.0.0.1:${listening.port as number}/player`;
      assert.deepEqual((await probe(url)).map((s) => s.codec_name).sort(), ['aac', 'h264'], hub);
      const tcp = viewer(url, 'tcp');
      await tcp.waitForFrames(30);
      await tcp.stop();
      await module.stop();
    }
  });

  it('also accepts the newer proxysink name=video -> proxysrc name=videosrc spelling, for every viewer in turn', async () => {
    // Video and audio: with two proxysrcs the second viewer's media got no sticky events (caps), failed to preroll
    // and every viewer after the first was refused with 503.
    const { module, url } = await startModule({
      pipeline:
        TEST_SOURCE('ball').replace('appsink name=video max-buffers=30 drop=true sync=false', 'proxysink name=video') +
        ' audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=1 ! audioconvert ! avenc_aac ! aacparse ! proxysink name=audio',
      rtsp_pipeline:
        '( proxysrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 proxysrc name=audiosrc ! aacparse ! rtpmp4apay name=pay1 pt=97 )',
    });
    await module.waitForPipeline('main', 'playing');
    for (const transport of ['tcp', 'udp', 'tcp'] as const) {
      const one = viewer(url, transport);
      await one.waitForFrames(30);
      await one.stop();
    }
    assert.deepEqual((await probe(url)).map((s) => s.codec_name).sort(), ['aac', 'h264']);
    await module.stop();
  });

  it('serves two viewers at once from one media and reports the viewer count of each mount', async () => {
    const { module, url } = await startModule({
      pipeline: TEST_SOURCE('ball'),
      rtsp_pipeline: SEED_SHARED,
      rtsp: { ...LOOPBACK, mounts: { second: SEED_SHARED } },
    });
    await module.waitForPipeline('main', 'playing');
    const beforeViewers = module.reportedVersion();
    const a = viewer(url, 'tcp');
    const b = viewer(url, 'udp');
    const c = viewer(url.replace(/\/player$/, '/second'), 'tcp');
    await Promise.all([a.waitForFrames(30), b.waitForFrames(30), c.waitForFrames(30)]);
    const reported = await module.waitForReported((r) => r.rtsp.mounts['/player']?.viewers === 2 && r.rtsp.mounts['/second']?.viewers === 1, {
      after: beforeViewers,
    });
    const { port } = reported.rtsp;
    assert.ok(port !== null && port > 0, `port ${port}`);
    const beforeLeaving = module.reportedVersion();
    await Promise.all([a.stop(), b.stop(), c.stop()]);
    const gone = await module.waitForReported((r) => r.rtsp.mounts['/player']?.viewers === 0 && r.rtsp.mounts['/second']?.viewers === 0, {
      after: beforeLeaving,
    });
    // Counted once a second from the media's RTP sessions, times the viewers watching then.
    const { bytesSent } = gone.rtsp.mounts['/player'];
    assert.ok(bytesSent > 1_000, `bytes sent: ${bytesSent}`);
    await module.stop();
  });

  it('keeps a connected viewer playing across a hot swap of the main pipeline', async () => {
    const { module, url } = await startModule({ pipeline: TEST_SOURCE('ball'), rtsp_pipeline: SEED_SHARED });
    await module.waitForPipeline('main', 'playing');
    const v = viewer(url, 'tcp');
    await v.waitForFrames(30);
    const from = module.logs.length;
    const beforeSwap = v.frames.length;
    module.writeDesired({ rtsp: LOOPBACK, pipeline: TEST_SOURCE('smpte'), rtsp_pipeline: SEED_SHARED });
    const swapped = await module.waitForPipeline('main', 'playing', 20_000, from);
    assert.equal(swapped.template, TEST_SOURCE('smpte'));
    // Frames decoded after the new pipeline plays, so the gap below spans the whole swap.
    await v.waitForFrames(30, 20_000, v.frames.length);
    const gap = v.maxGap(beforeSwap - 1);
    assert.ok(v.running, 'the viewer was not disconnected');
    assert.ok(gap < 2_000, `frame gap across the swap: ${gap.toFixed(0)} ms`);
    console.log(`# swap gap seen by an RTSP viewer: ${gap.toFixed(0)} ms`);
    await v.stop();
    await module.stop();
  });

  it('restarts the main pipeline when the camera drops, and the viewer resumes when it is back', async () => {
    const { module, url } = await startModule({ pipeline: SEED_MAIN, rtsp_pipeline: SEED_SHARED });
    await module.waitForPipeline('main', 'playing');
    const v = viewer(url, 'tcp');
    await v.waitForFrames(30);
    const from = module.logs.length;
    await camera.kill('SIGKILL');
    await module.waitForPipeline('main', 'backoff', 20_000, from);
    await camera.restart();
    await module.waitForPipeline('main', 'playing', 30_000, from);
    // Frames decoded after main plays again: not ones still queued from before the camera dropped.
    await v.waitForFrames(30, 30_000, v.frames.length);
    assert.ok(v.running, 'the viewer stayed connected through the camera drop');
    await v.stop();
    await module.stop();
  });

  it('waits for a camera that stays down, says which (masked) in the status, and plays again moments after it is back', async () => {
    const module = new ModuleProcess({
      desired: { rtsp: LOOPBACK, pipeline: SEED_MAIN, rtsp_pipeline: SEED_SHARED },
      env: { USER: camera.user, PASSWORD: camera.password, IP: `127.0.0.1:${camera.port}` },
    });
    modules.push(module);
    await module.waitForPipeline('main', 'playing');
    const from = module.logs.length;
    const after = module.reportedVersion();
    await camera.kill('SIGKILL');
    const waiting = await module.waitForPipeline('main', 'waiting-for-source', 30_000, from);
    // Userinfo masked, and every value that came from the environment shown as its variable.
    const masked = 'rtsp://***@${IP}/axis-media/media.amp';
    assert.equal(waiting.waitingFor, masked);
    const reported = await module.waitForReported((r) => r.pipelines.main?.state === 'waiting-for-source', { after });
    assert.equal(reported.pipelines.main?.waitingFor?.source, masked);
    // An outage long enough for the doubling delay to reach 8 s (restarts 500 ms, 1 s, 2 s, 4 s apart).
    await module.waitForLog((l) => l.event === 'pipeline-state' && l.pipeline === 'main' && l.state === 'starting' && (l.restarts as number) >= 4, 30_000, from);
    await module.waitForPipeline('main', 'waiting-for-source', 30_000, module.logs.length - 1);
    const back = module.logs.length;
    await camera.restart();
    const cameraBack = Date.now();
    await module.waitForPipeline('main', 'playing', 30_000, back);
    const recoveryMs = Date.now() - cameraBack;
    console.log(`# camera back to main playing: ${recoveryMs} ms (the backoff delay was 8000 ms)`);
    // The probe started it, not the 8 s delay; a loaded machine gets a wide margin.
    assert.ok(recoveryMs < 5_000, `playing ${recoveryMs} ms after the camera was back`);
    assert.ok(!JSON.stringify(module.reported()).includes(camera.password), 'the camera password is never reported');
    await module.stop();
  });

  it('serves extra mounts from the rtsp settings', async () => {
    const { module, url } = await startModule({
      pipeline: TEST_SOURCE('ball'),
      rtsp: { ...LOOPBACK, mounts: { cam2: '( videotestsrc is-live=true ! video/x-raw,width=160,height=120 ! x264enc tune=zerolatency speed-preset=ultrafast ! rtph264pay name=pay0 pt=96 )' } },
    });
    await module.waitForPipeline('main', 'playing');
    const streams = await probe(url.replace('/player', '/cam2'));
    assert.equal(streams[0]?.width, 160);
    await module.stop();
  });

  it('remounts when rtsp_pipeline itself changes and closes the old sessions', async () => {
    const { module, url } = await startModule({ pipeline: TEST_SOURCE('ball'), rtsp_pipeline: SEED_SHARED });
    await module.waitForPipeline('main', 'playing');
    const v = viewer(url, 'tcp');
    await v.waitForFrames(10);
    const from = module.logs.length;
    const version = module.writeDesired({
      rtsp: LOOPBACK,
      pipeline: TEST_SOURCE('ball'),
      rtsp_pipeline: '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=1 name=pay0 pt=96 )',
    });
    await module.waitForLog((l) => l.event === 'config-applied' && l.version === version, 20_000, from);
    const code = await v.exited;
    assert.notEqual(code, null, 'the old session was closed');
    const again = viewer(url, 'tcp');
    await again.waitForFrames(10);
    assert.equal(module.logs.slice(from).filter((l) => l.event === 'pipeline-state' && l.pipeline === 'main').length, 0, 'main untouched');
    await again.stop();
    await module.stop();
  });
});
