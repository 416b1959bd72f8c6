import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { DetectionEvent } from '../../analysis/types.js';
import { photoSource } from '../support/analysisMedia.js';
import { CAMERA_MOUNT, CameraSimulator } from '../support/cameraSimulator.js';
import { IotHubEmulator, type RecordedEvent } from '../support/iotHubEmulator.js';
import { MAIN, ModuleProcess, waitForFileSize, type ReportedDocument } from '../support/ModuleProcess.js';

const run = promisify(execFile);
const DEVICE = 'edge-analysis';
const MODULE = 'gst';
const LOOPBACK = {
  http: { port: 0, address: '127.0.0.1', media_root: '/tmp' },
  metrics: { port: null },
  rtsp: { port: 0, address: '127.0.0.1' },
};

const modules: ModuleProcess[] = [];
const dirs: string[] = [];
after(async () => {
  await Promise.all(modules.map((m) => m.stop()));
  for (const dir of [...dirs, ...modules.map((m) => m.dir)]) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** A sample's value in Prometheus text (first series whose labels include `labels`), or null. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return null;
}

async function webBase(module: ModuleProcess): Promise<string> {
  const http = await module.waitForLog((l) => l.event === 'http-listening', 30_000);
  return `http://127.0.0.1:${http.port as number}`;
}

describe('a detection through the whole module: photo in, IoT Hub message, status and metrics out', () => {
  let hub: IotHubEmulator;
  let module: ModuleProcess;
  let base: string;
  let initialReported: number;
  const reported = (predicate: (r: ReportedDocument) => boolean, after: number, timeoutMs = 30_000) =>
    hub.waitForReported<ReportedDocument>(DEVICE, MODULE, predicate, { after, timeoutMs });

  before(async () => {
    hub = await IotHubEmulator.create();
    hub.addModule(DEVICE, MODULE);
    hub.setDesired(DEVICE, MODULE, {
      ...LOOPBACK,
      // Not /tmp: IoT Hub mode's state folder is in it, and a media root must not serve it.
      http: { ...LOOPBACK.http, media_root: tempDir('gst-iotedge-media-') },
      pipeline: `${photoSource('astronaut')} ! inference name=people ! fakesink`,
      analyzers: { people: { model: 'coco', classes: ['person', 'car'], fps: 2, threshold: 0.5 } },
    });
    initialReported = hub.reportedVersion(DEVICE, MODULE);
    module = new ModuleProcess({
      desired: {},
      twinFile: false,
      env: { REPORT_INTERVAL_MS: '100', EdgeHubConnectionString: hub.connectionString(DEVICE, MODULE), EdgeModuleCACertificateFile: hub.caCertPath, STATE_DIR: tempDir('gst-iotedge-state-') },
    });
    modules.push(module);
    base = await webBase(module);
  });
  after(async () => {
    await module?.stop();
    await hub?.close();
  });

  it('sends the astronaut as a person on the output "inference", one flat message per object', async () => {
    const event = await hub.waitForEvent((e: RecordedEvent) => e.outputName === 'inference', 60_000);
    const body = JSON.parse(event.body.toString()) as DetectionEvent;
    assert.deepEqual(Object.keys(body).sort(), ['analyzer', 'camera', 'class', 'dropped', 'height', 'score', 'timestamp', 'type', 'width', 'x', 'y']);
    assert.equal(body.type, 'detection');
    assert.equal(body.camera, 'people');
    assert.equal(body.class, 'person');
    assert.ok(body.score >= 0.5, `score ${body.score}`);
    // The astronaut fills the picture: a box from near the left edge, most of its width and height.
    assert.ok(body.x < 0.15 && body.width > 0.5 && body.height > 0.7, JSON.stringify(body));
    assert.ok(Math.abs(Date.parse(body.timestamp) - Date.now()) < 60_000, body.timestamp);
    assert.equal(event.properties.type, 'detection');
    assert.equal(event.properties.class, 'person');
    assert.match(event.properties['$.ct'] ?? '', /application\/json/);
  });

  it('reports the analyzer in the status document: running, its runtime, frames per second', async () => {
    const r = await reported((r) => r.analysis?.people?.state === 'running' && r.analysis.people.fps > 0, initialReported);
    const people = r.analysis.people!;
    assert.equal(people.source, 'element people');
    assert.equal(people.runtime, 'onnxruntime');
    assert.equal(people.restarts, 0);
    // A null in reported properties deletes the key: the hub holds no lastError at all.
    assert.equal(people.lastError ?? null, null);
    assert.ok(people.fps >= 1 && people.fps <= 3, `${people.fps} fps`);
    assert.equal(r.pipelines.main?.state, 'playing');
  });

  it('counts detections by class, analysed frames and inference time in /metrics', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    const labels = { analyzer: 'people', class: 'person' };
    assert.ok((sample(text, 'gst_iotedge_analysis_detections_total', labels) ?? 0) >= 1, 'detections of persons');
    assert.ok((sample(text, 'gst_iotedge_analysis_frames_total', { analyzer: 'people' }) ?? 0) >= 1, 'analysed frames');
    const count = sample(text, 'gst_iotedge_analysis_inference_seconds_count', { analyzer: 'people' }) ?? 0;
    const sum = sample(text, 'gst_iotedge_analysis_inference_seconds_sum', { analyzer: 'people' }) ?? 0;
    assert.ok(count >= 1 && sum / count < 1, `mean inference ${(sum / count).toFixed(3)} s over ${count} frames`);
    assert.notEqual(sample(text, 'gst_iotedge_analysis_fps', { analyzer: 'people' }), null);
  });
});

describe('the seed\'s `inference` example pipeline in the module', () => {
  let camera: CameraSimulator;
  let dir: string;
  before(async () => {
    camera = await CameraSimulator.start({ width: 640, height: 360, fps: 30 });
    dir = tempDir('gst-iotedge-inference-');
  });
  after(async () => {
    await camera?.stop();
  });

  /** The seed's text, with its variables for the camera and the media folder. */
  const SEED = 'rtspsrc location=rtsp://$USER:$PASSWORD@$IP/axis-media/media.amp ! rtph264depay ! inference ! h264parse ! mp4mux ! filesink location=$MEDIA_PATH/a.mp4';
  const env = () => {
    const url = new URL(camera.url());
    assert.equal(url.pathname, CAMERA_MOUNT);
    return { USER: decodeURIComponent(url.username), PASSWORD: decodeURIComponent(url.password), IP: url.host, MEDIA_PATH: dir };
  };

  it('passes --check (GStreamer finds the module\'s plugin)', async () => {
    const twin = join(dir, 'check.json');
    writeFileSync(twin, JSON.stringify({ properties: { desired: { pipeline: SEED } } }));
    const { stdout } = await run(process.execPath, [MAIN, '--check', twin], { env: { ...process.env, ...env() } });
    assert.match(stdout, /✓ main: parses/);
    assert.match(stdout, /: valid$/m);
  });

  it('records a playable mp4, finalised by a graceful stop', async () => {
    const module = new ModuleProcess({ desired: { ...LOOPBACK, pipeline: SEED }, env: env() });
    modules.push(module);
    await module.waitForPipeline('main', 'playing', 30_000);
    const file = join(dir, 'a.mp4');
    await waitForFileSize(file, 200_000, 30_000);
    const { code } = await module.stop();
    assert.equal(code, 0);
    const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'json', file]);
    const stream = (JSON.parse(stdout) as { streams: Array<{ codec_name: string; width: number; height: number; nb_read_frames: string }> }).streams[0]!;
    assert.equal(stream.codec_name, 'h264');
    assert.equal(`${stream.width}x${stream.height}`, '640x360');
    assert.ok(Number(stream.nb_read_frames) >= 30, `${stream.nb_read_frames} frames`);
    assert.ok(statSync(file).size >= 200_000);
  });
});

describe('bad analysis settings in the twin file', () => {
  let module: ModuleProcess;
  /** The document that runs: every bad one below is this plus one mistake. */
  const GOOD = {
    ...LOOPBACK,
    pipeline: 'videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=10/1 ! inference name=people ! fakesink',
    analyzers: { people: { classes: ['person'], fps: 1 } },
  };
  let goodVersion: number;
  let pid: number;

  before(async () => {
    module = new ModuleProcess({ desired: GOOD });
    modules.push(module);
    goodVersion = 1;
    const r = await module.waitForReported((r) => r.config.appliedVersion === goodVersion && r.analysis?.people?.state === 'running' && r.pipelines.main?.state === 'playing', { after: 0, timeoutMs: 30_000 });
    pid = r.analysis.people!.pid!;
  });

  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an unknown model', { people: { model: 'yolo' } }, /^analyzers\.people\.model must be "coco" \(the built-in detector\), got "yolo"$/],
    ['an unknown class', { people: { classes: ['person', 'unicorn'] } }, /^analyzers\.people\.classes: "unicorn" is not a COCO class/],
    ['a negative fps', { people: { fps: -1 } }, /^analyzers\.people\.fps must be above 0 \(frames analysed per second, 0\.01 to 60\), got -1$/],
    ['a plugin path that does not load', { people: {}, door: { stream: 'video', module: '/nonexistent/door.js' } }, /^analyzers\.door\.module "\/nonexistent\/door\.js" does not load: /],
  ];
  for (const [what, analyzers, reason] of cases) {
    it(`rejects ${what} with the reason, and the last good config keeps running`, async () => {
      const from = module.logs.length;
      const after = module.reportedVersion();
      const version = module.writeDesired({ ...GOOD, analyzers });
      const r = await module.waitForReported((r) => r.config.rejectedVersion === version, { after, timeoutMs: 30_000 });
      assert.equal(r.config.status, 'rejected');
      assert.match(r.config.error ?? '', reason);
      assert.equal(r.config.appliedVersion, goodVersion);
      assert.equal(r.pipelines.main?.state, 'playing');
      assert.equal(r.analysis.people?.state, 'running');
      assert.equal(r.analysis.people?.pid, pid, 'the same analyzer process');
      assert.equal(r.analysis.door, undefined);
      const rejected = module.logs.slice(from).find((l) => l.event === 'config-rejected');
      assert.ok(rejected, 'the rejection is logged');
      assert.match(rejected.msg, reason.source.startsWith('^') ? new RegExp(reason.source.slice(1)) : reason);
      assert.equal(module.logs.slice(from).filter((l) => l.event === 'pipeline-state' || l.event === 'analyzer-stopping').length, 0);
    });
  }
});
