import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAnalysisSettings, tapSpecOf } from '../../config/analysis.js';
import { AnalysisEngine, PLUGIN_DIR } from '../support/analysisEngine.js';
import { CameraSimulator } from '../support/cameraSimulator.js';

const env = { ...process.env, GST_PLUGIN_PATH: PLUGIN_DIR };

/** gst-launch-1.0 -e until `file` has `minBytes`, then Ctrl-C: EOS finalises the mp4 (bounded). */
async function record(launch: string, files: string[], minBytes = 100_000): Promise<void> {
  const child = spawn('gst-launch-1.0', ['-e', ...launch.split(' ')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  const size = (f: string) => {
    try {
      return statSync(f).size;
    } catch {
      return 0;
    }
  };
  while (files.some((f) => size(f) < minBytes)) {
    if (Date.now() > deadline || child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const code = await exited;
  clearTimeout(timer);
  assert.equal(code, 0, `gst-launch-1.0 failed: ${stderr}`);
}

/** SHA-1 of the H.264 elementary stream of an mp4 (container timestamps and boxes left out). */
function streamHash(file: string): { hash: string; bytes: number } {
  const es = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v:0', '-c', 'copy', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', '-'], { maxBuffer: 256 * 1024 * 1024 });
  return { hash: createHash('sha1').update(es).digest('hex'), bytes: es.length };
}

function probe(file: string): { codec: string; frames: number } {
  const out = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,nb_read_frames', '-of', 'json', file], { encoding: 'utf8' });
  const stream = (JSON.parse(out) as { streams: Array<{ codec_name: string; nb_read_frames: string }> }).streams[0]!;
  return { codec: stream.codec_name, frames: Number(stream.nb_read_frames) };
}

describe('the seed\'s `inference` element', () => {
  let camera: CameraSimulator;
  let dir: string;

  before(async () => {
    camera = await CameraSimulator.start({ width: 640, height: 360, fps: 30 });
    dir = mkdtempSync(join(tmpdir(), 'inference-'));
  });
  after(async () => {
    await camera?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is registered from the module\'s plugin folder as a pass-through transform', () => {
    const text = execFileSync('gst-inspect-1.0', ['inference'], { env, encoding: 'utf8' });
    assert.match(text, /GstBaseTransform/);
    assert.match(text, /Filename\s+.*libgstiotedgeinference\.so/);
  });

  it('runs the seed\'s example pipeline verbatim in gst-launch-1.0 and writes a playable mp4', async () => {
    const file = join(dir, 'a.mp4');
    await record(`rtspsrc location=${camera.url()} ! rtph264depay ! inference ! h264parse ! mp4mux ! filesink location=${file}`, [file]);
    const { codec, frames } = probe(file);
    assert.equal(codec, 'h264');
    assert.ok(frames >= 10, `${frames} frames`);
  });

  it('leaves the stream byte-identical to the same pipeline without it', async () => {
    const a = join(dir, 'with.mp4');
    const b = join(dir, 'without.mp4');
    // One source, two branches: both see the same buffers, one through `inference`.
    await record(
      `rtspsrc location=${camera.url()} ! rtph264depay ! tee name=t ` +
        `t. ! queue ! inference ! h264parse ! mp4mux ! filesink location=${a} ` +
        `t. ! queue ! h264parse ! mp4mux ! filesink location=${b}`,
      [a, b],
    );
    const withIt = streamHash(a);
    const without = streamHash(b);
    assert.ok(withIt.bytes > 50_000, `${withIt.bytes} bytes of H.264`);
    assert.equal(withIt.hash, without.hash);
  });

  it('leaves the stream byte-identical in the engine while an analyzer taps it', async () => {
    const engine = await AnalysisEngine.start();
    try {
      const [analyzer] = parseAnalysisSettings({ analyzers: { cam: { fps: 5 } } }).analyzers;
      engine.send({ type: 'analysis', taps: [tapSpecOf(analyzer!)], decoder: 'auto' });
      const a = join(dir, 'engine-with.mp4');
      const b = join(dir, 'engine-without.mp4');
      engine.send({
        type: 'start',
        pipeline: 'main',
        launch:
          `rtspsrc location=${camera.url()} ! rtph264depay ! tee name=t ` +
          `t. ! queue ! inference name=cam ! h264parse ! mp4mux ! filesink location=${a} ` +
          `t. ! queue ! h264parse ! mp4mux ! filesink location=${b}`,
      });
      await engine.waitFor((e) => e.type === 'state' && e.state === 'playing');
      // The tap is really fed: its decoder was plugged (it looks only once frames flow).
      await engine.waitFor((e) => e.type === 'analysis-tap' && e.decoder !== null);
      const from = engine.events.length;
      await new Promise((r) => setTimeout(r, 1_500));
      engine.send({ type: 'stop', pipeline: 'main' });
      const stopped = await engine.waitFor((e) => e.type === 'stopped', 10_000, from);
      assert.deepEqual(stopped, { type: 'stopped', pipeline: 'main', run: 1, eos: true }, 'EOS went through the tap branch');
      assert.equal(streamHash(a).hash, streamHash(b).hash);
      assert.ok(probe(a).frames >= 10);
    } finally {
      await engine.stop();
    }
  });

  it('lets EOS through a named element no analyzer reads, so a graceful stop ends at once', async () => {
    const engine = await AnalysisEngine.start();
    try {
      engine.send({ type: 'start', pipeline: 'main', launch: 'videotestsrc is-live=true ! video/x-raw,framerate=30/1 ! inference name=idle ! fakesink' });
      await engine.waitFor((e) => e.type === 'state' && e.state === 'playing');
      const t0 = Date.now();
      engine.send({ type: 'stop', pipeline: 'main' });
      const stopped = await engine.waitFor((e) => e.type === 'stopped', 10_000);
      assert.equal((stopped as { eos: boolean }).eos, true);
      assert.ok(Date.now() - t0 < 1_500, `stopped after ${Date.now() - t0} ms (the stop timeout is 3000)`);
    } finally {
      await engine.stop();
    }
  });
});
