/**
 * The camera simulator behaves like an Axis camera for the clients twins use: ffprobe, rtspsrc over UDP and
 * TCP, and the seed twin's pipeline verbatim.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';

import { CameraSimulator, CameraSimulatorStartError } from '../support/cameraSimulator.js';

const WIDTH = 640;
const HEIGHT = 360;
/** Bound on any one client run; a healthy one finishes in 1-3 s. */
const CLIENT_TIMEOUT_MS = 20_000;


/** What a client process did. */
interface ClientRun {
  /** Exit code; null when it died of a signal (e.g. ours, after `until` matched). */
  code: number | null;
  /** stdout and stderr interleaved as they arrived. */
  output: string;
  /** The output up to the moment `until` matched (all of it without `until`): what it printed while playing. */
  played: string;
  /** True when `until` matched and the process was ended by us. */
  matched: boolean;
}

/**
 * A client process whose output can be awaited. Waiting on output instead of sleeping keeps the tests fast
 * on a fast machine and correct on a slow one; every wait is bounded.
 */
class Client {
  /** stdout and stderr interleaved as they arrived. */
  output = '';
  /** Resolves with the exit code once the process has exited and its pipes are drained. */
  readonly exited: Promise<number | null>;
  /** Re-evaluated on every chunk of output. */
  readonly #waiters = new Set<() => void>();
  readonly #child;

  constructor(command: string, args: readonly string[]) {
    this.#child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (chunk: Buffer): void => {
      this.output += chunk.toString('utf8');
      for (const check of this.#waiters) check();
    };
    this.#child.stdout.on('data', onData);
    this.#child.stderr.on('data', onData);
    this.exited = new Promise((resolveExit, reject) => {
      this.#child.once('error', reject);
      this.#child.once('close', (code) => {
        for (const check of this.#waiters) check();
        resolveExit(code);
      });
    });
  }

  /** Resolves true once `predicate(output)` holds, false if the process exits first; rejects on timeout. */
  waitFor(predicate: (output: string) => boolean, timeoutMs = CLIENT_TIMEOUT_MS): Promise<boolean> {
    return new Promise((resolveWait, reject) => {
      const done = (result: boolean | Error): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (result instanceof Error) reject(result);
        else resolveWait(result);
      };
      const check = (): void => {
        if (predicate(this.output)) done(true);
        else if (this.#child.exitCode !== null || this.#child.signalCode !== null) done(false);
      };
      const timer = setTimeout(() => {
        this.kill('SIGKILL');
        done(new Error(`client did not get there within ${timeoutMs} ms; output tail:\n${this.output.slice(-4000)}`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /** Waits for exit, killing the process if it outlives `timeoutMs`. */
  async finish(timeoutMs = CLIENT_TIMEOUT_MS): Promise<number | null> {
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal: NodeJS.Signals): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill(signal);
  }
}

/** Runs a client to completion, or until `until(output)` holds (then SIGINTs it); bounded either way. */
async function runClient(
  command: string,
  args: readonly string[],
  { until }: { until?: (output: string) => boolean } = {},
): Promise<ClientRun> {
  const client = new Client(command, args);
  let matched = false;
  // What the client printed while it played, before we stopped it: rtspsrc stopped by SIGINT can report "Could not
  // write to resource." while it is torn down (seen in CI), which says nothing about playback.
  let played: string | null = null;
  if (until) {
    matched = await client.waitFor(until);
    played = client.output;
    client.kill('SIGINT');
  }
  const code = await client.finish();
  if (!until && code === null) throw new Error(`${command} was killed; output tail:\n${client.output.slice(-4000)}`);
  return { code, output: client.output, played: played ?? client.output, matched };
}

interface ProbedStream {
  codec_type: string;
  codec_name: string;
  width?: number;
  height?: number;
  profile?: string;
}

/** ffprobe over RTSP/TCP, as the brief's clients do. */
function ffprobe(url: string): Promise<ClientRun> {
  return runClient('ffprobe', ['-v', 'error', '-rtsp_transport', 'tcp', '-show_streams', '-of', 'json', url]);
}

function probedStreams(run: ClientRun): ProbedStream[] {
  assert.equal(run.code, 0, `ffprobe failed:\n${run.output}`);
  const start = run.output.indexOf('{');
  return (JSON.parse(run.output.slice(start)) as { streams: ProbedStream[] }).streams;
}

/** Lines gst-launch -v prints when the named fakesink receives a buffer (notifies may coalesce: "at least"). */
function buffersAt(output: string, sink: string): number {
  return output.split('\n').filter((line) => line.includes(`(${sink}:sink)`) && line.includes('last-message = chain')).length;
}

function reachedPlaying(output: string): boolean {
  return /from element "pipeline0" \(state-changed\).*new-state=\(GstState\)playing/.test(output);
}

/** The seed twin's `pipeline`, with its appsinks swapped for fakesinks that report what they get. */
function seedTwinPipeline(url: string): string[] {
  return [
    '-m', '-v',
    'rtspsrc', 'protocols=GST_RTSP_LOWER_TRANS_TCP', `location=${url}`, 'name=src',
    'src.', '!', 'queue', '!', 'rtph264depay', '!', 'h264parse', 'config-interval=-1', '!',
    'fakesink', 'name=video', 'silent=false',
    'src.', '!', 'rtpmp4gdepay', '!', 'aacparse', '!', 'fakesink', 'name=audio', 'silent=false',
  ];
}

const seedTwinIsPlaying = (output: string): boolean =>
  reachedPlaying(output) && buffersAt(output, 'video') >= 10 && buffersAt(output, 'audio') >= 10;

describe('camera simulator', { timeout: 120_000 }, () => {
  let camera: CameraSimulator;

  before(async () => {
    camera = await CameraSimulator.start({ user: 'root', password: 'secret', width: WIDTH, height: HEIGHT, fps: 30 });
  });

  after(async () => {
    await camera?.stop();
  });

  it('importing the helper does not load node-gtk into the test process', () => {
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((path) => path.includes('node-gtk'));
    assert.deepEqual(loaded, []);
  });

  it('listens on a free port it picked and builds Axis-style URLs with escaped credentials', () => {
    assert.ok(camera.port > 0);
    assert.equal(camera.url(), `rtsp://root:secret@127.0.0.1:${camera.port}/axis-media/media.amp`);
    assert.equal(camera.url('a b', 'p:/@'), `rtsp://a%20b:p%3A%2F%40@127.0.0.1:${camera.port}/axis-media/media.amp`);
    assert.equal(camera.url('', ''), `rtsp://127.0.0.1:${camera.port}/axis-media/media.amp`);
  });

  it('ffprobe over TCP with the right credentials sees one H.264 stream at the configured size and one AAC stream', { timeout: 30_000 }, async () => {
    const streams = probedStreams(await ffprobe(camera.url()));
    const video = streams.filter((s) => s.codec_type === 'video');
    const audio = streams.filter((s) => s.codec_type === 'audio');
    assert.equal(video.length, 1);
    assert.equal(audio.length, 1);
    assert.equal(video[0]!.codec_name, 'h264');
    assert.equal(video[0]!.profile, 'Constrained Baseline');
    assert.equal(video[0]!.width, WIDTH);
    assert.equal(video[0]!.height, HEIGHT);
    assert.equal(audio[0]!.codec_name, 'aac');
  });

  it('refuses a wrong password with 401 Unauthorized', { timeout: 30_000 }, async () => {
    const run = await ffprobe(camera.url('root', 'wrong'));
    assert.notEqual(run.code, 0);
    assert.match(run.output, /401 Unauthorized/);
  });

  it('refuses a client that sends no credentials with 401 Unauthorized', { timeout: 30_000 }, async () => {
    const run = await ffprobe(camera.url('', ''));
    assert.notEqual(run.code, 0);
    assert.match(run.output, /401 Unauthorized/);
  });

  it('rtspsrc over UDP decodes full-size frames', { timeout: 30_000 }, async () => {
    // I420: one full luma plane plus two quarter-size chroma planes.
    const frameBytes = (WIDTH * HEIGHT * 3) / 2;
    const decodedFrames = (output: string): number =>
      output.split('\n').filter((line) => line.includes(`(decoded:sink) (${frameBytes} bytes`)).length;
    // protocols=udp forbids rtspsrc's TCP fallback. The audio branch is linked too, so no pad is left
    // unlinked. The client ends by itself, not by a signal: each fakesink goes EOS after its num-buffers, and
    // once both have, the pipeline posts EOS and gst-launch exits 0. (Stopped by SIGINT, rtspsrc could report
    // "Could not write to resource." while being torn down, which says nothing about playback.) An error while
    // playing ends the run before that EOS: it is in the output checked below, and the exit code is not 0.
    const run = await runClient('gst-launch-1.0', [
      '-m', '-v', 'rtspsrc', 'name=src', `location=${camera.url()}`, 'protocols=udp',
      'src.', '!', 'rtph264depay', '!', 'h264parse', '!', 'avdec_h264', '!', 'fakesink', 'name=decoded', 'silent=false', 'num-buffers=60',
      'src.', '!', 'rtpmp4gdepay', '!', 'fakesink', 'name=audio', 'num-buffers=30',
    ]);
    const eos = run.output.indexOf('Got EOS from element "pipeline0"');
    assert.ok(eos !== -1, `the pipeline never reached EOS:\n${run.output.slice(-4000)}`);
    const playing = run.output.slice(0, eos);
    assert.ok(decodedFrames(playing) >= 30, `${decodedFrames(playing)} decoded frames before EOS:\n${playing.slice(-4000)}`);
    assert.doesNotMatch(playing, /ERROR/);
    assert.equal(run.code, 0, run.output.slice(-4000));
  });

  it("runs the seed twin's pipeline verbatim: PLAYING, with buffers on both the video and the audio branch", { timeout: 30_000 }, async () => {
    const run = await runClient('gst-launch-1.0', seedTwinPipeline(camera.url()), { until: seedTwinIsPlaying });
    assert.ok(run.matched, `pipeline never played both branches:\n${run.output.slice(-4000)}`);
    assert.doesNotMatch(run.played, /ERROR/);
  });

  it('serves several clients at once from the one shared media', { timeout: 30_000 }, async () => {
    const runs = await Promise.all([1, 2, 3].map(() =>
      runClient('gst-launch-1.0', seedTwinPipeline(camera.url()), { until: seedTwinIsPlaying })));
    for (const run of runs) assert.ok(run.matched, run.output.slice(-4000));
  });
});

describe('camera simulator process lifecycle', { timeout: 120_000 }, () => {
  it('comes back on the same port after being killed, and a new client plays again', { timeout: 60_000 }, async () => {
    const camera = await CameraSimulator.start();
    try {
      const port = camera.port;
      // A client is mid-stream when the camera vanishes: it sees the connection close (rtspsrc over TCP
      // reports that as a warning and EOS, not an error) instead of hanging.
      const orphan = new Client('gst-launch-1.0', seedTwinPipeline(camera.url()));
      assert.ok(await orphan.waitFor(seedTwinIsPlaying), orphan.output.slice(-4000));
      await camera.kill('SIGKILL');
      assert.ok(await orphan.waitFor((output) => /server closed the connection/.test(output)), orphan.output.slice(-4000));
      await orphan.finish();

      const refused = await ffprobe(camera.url());
      assert.notEqual(refused.code, 0);
      assert.match(refused.output, /Connection refused/);

      await camera.restart();
      assert.equal(camera.port, port);
      const run = await runClient('gst-launch-1.0', seedTwinPipeline(camera.url()), { until: seedTwinIsPlaying });
      assert.ok(run.matched, run.output.slice(-4000));
    } finally {
      await camera.stop();
    }
  });

  it('start rejects with the simulator stderr when the port is already taken', { timeout: 60_000 }, async () => {
    const first = await CameraSimulator.start();
    try {
      await assert.rejects(CameraSimulator.start({ port: first.port }), (err: unknown) => {
        assert.ok(err instanceof CameraSimulatorStartError);
        assert.match(err.message, /exited before ready/);
        assert.match(err.stderr, new RegExp(`could not listen on 127\\.0\\.0\\.1:${first.port}`));
        return true;
      });
    } finally {
      await first.stop();
    }
  });

  it('stop ends the process with SIGTERM and is idempotent', { timeout: 30_000 }, async () => {
    const camera = await CameraSimulator.start();
    const pid = camera.pid;
    assert.ok(pid);
    await camera.stop();
    await camera.stop();
    assert.equal(camera.pid, pid); // The handle remembers the process; the process itself is gone:
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  });
});
