import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { MAIN, ModuleProcess, waitForFileSize, type LogLine } from '../support/ModuleProcess.js';

const run = promisify(execFile);
const LIVE = 'videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! fakesink';

/** Every module started here, stopped in `after` even when a test fails half-way. */
const started: ModuleProcess[] = [];
function startModule(options: ConstructorParameters<typeof ModuleProcess>[0]): ModuleProcess {
  const module = new ModuleProcess(options);
  started.push(module);
  return module;
}
after(async () => {
  await Promise.all(started.map((m) => m.stop()));
  for (const m of started) rmSync(m.dir, { recursive: true, force: true });
});

function indexOf(module: ModuleProcess, line: LogLine): number {
  return module.logs.indexOf(line);
}

describe('running the twin pipeline', () => {
  it('runs the twin pipeline until PLAYING and reports it beside the twin file', async () => {
    const module = startModule({ desired: { pipeline: LIVE, $version: 3 } });
    const playing = await module.waitForPipeline('main', 'playing');
    assert.equal(playing.template, LIVE);
    // A new module, one desired document: every reported document counts.
    const reported = await module.waitForReported((r) => r.pipelines.main?.state === 'playing' && r.config.status === 'applied', { after: 0 });
    assert.equal(reported.config.appliedVersion, 3);
    assert.equal(reported.pipelines.main.restarts, 0);
    assert.equal(reported.pipelines.main.lastError, null);
    assert.equal(reported.engine.state, 'running');
  });

  it('ends a finite pipeline at EOS when on_eos is "stop"', async () => {
    const module = startModule({ desired: { pipeline: 'videotestsrc num-buffers=10 ! fakesink', on_eos: 'stop' } });
    await module.waitForPipeline('main', 'ended');
    const reported = await module.waitForReported((r) => r.pipelines.main?.state === 'ended', { after: 0 });
    assert.equal(reported.pipelines.main.restarts, 0);
  });

  it('restarts a finite pipeline after EOS by default, as a camera that hung up', async () => {
    const module = startModule({
      desired: { pipeline: 'videotestsrc num-buffers=5 ! fakesink', restart_policy: { initial_delay_ms: 100 } },
    });
    const backoff = await module.waitForPipeline('main', 'backoff');
    assert.equal(backoff.lastError, 'end of stream');
    const again = await module.waitForLog((l) => l.event === 'pipeline-state' && l.state === 'starting' && l.restarts === 1);
    assert.ok(indexOf(module, again) > indexOf(module, backoff));
  });

  it('restarts a failing element with growing delays', async () => {
    const module = startModule({
      desired: {
        pipeline: 'filesrc location=/nonexistent/input.h264 ! fakesink',
        restart_policy: { initial_delay_ms: 100, max_delay_ms: 2_000 },
      },
    });
    await module.waitForLog((l) => l.event === 'pipeline-state' && l.state === 'starting' && l.restarts === 3, 20_000);
    const transitions = module.logs.filter((l) => l.event === 'pipeline-state' && (l.state === 'backoff' || l.state === 'starting'));
    const delays: number[] = [];
    for (let i = 1; i < transitions.length; i++) {
      if (transitions[i - 1]!.state === 'backoff' && transitions[i]!.state === 'starting') {
        delays.push((transitions[i]!.time as number) - (transitions[i - 1]!.time as number));
      }
    }
    assert.equal(delays.length, 3, `three restarts: ${JSON.stringify(delays)}`);
    assert.ok(delays[0]! >= 100 && delays[1]! >= 200 && delays[2]! >= 400, `delays double: ${JSON.stringify(delays)}`);
    assert.ok(delays[0]! < delays[1]! && delays[1]! < delays[2]!, `delays grow: ${JSON.stringify(delays)}`);
    const backoff = transitions.find((l) => l.state === 'backoff')!;
    assert.match(String(backoff.lastError), /Resource not found|No such file|Could not open/i);
    const reported = await module.waitForReported((r) => r.pipelines.main?.restarts >= 3, { after: 0 });
    const { lastError } = reported.pipelines.main;
    assert.ok(lastError !== null, 'the last error is reported');
    assert.match(lastError, /Resource not found|No such file|Could not open/i);
  });
});

describe('hot swap from the twin file', () => {
  it('rejects invalid pipeline text with the parser message and keeps the old pipeline playing', async () => {
    const module = startModule({ desired: { pipeline: LIVE } });
    const playing = await module.waitForPipeline('main', 'playing');
    const after = module.reportedVersion();
    const bad = module.writeDesired({ pipeline: 'videotestsrc ! nosuchelement ! fakesink', $version: 2 });
    const rejected = await module.waitForLog((l) => l.event === 'config-rejected' && l.version === bad, 20_000, indexOf(module, playing));
    assert.match(rejected.msg, /main: no element "nosuchelement"/);
    const reported = await module.waitForReported((r) => r.config.rejectedVersion === bad, { after });
    assert.equal(reported.config.status, 'rejected');
    assert.ok(reported.config.error !== null, 'the reason is reported');
    assert.match(reported.config.error, /no element "nosuchelement"/);
    assert.equal(reported.pipelines.main?.state, 'playing');
    const touched = module.logs.slice(indexOf(module, playing) + 1).filter((l) => l.event === 'pipeline-state');
    assert.deepEqual(touched, [], 'the running pipeline was not touched');

    // Each rejection is waited for by its document's $version, then its reason is checked.
    const rejectedFor = (desired: Record<string, unknown>) => {
      const from = module.logs.length;
      const version = module.writeDesired(desired);
      return module.waitForLog((l) => l.event === 'config-rejected' && l.version === version, 20_000, from);
    };
    assert.match((await rejectedFor({ pipeline: 'videotestsrc ! ! fakesink' })).msg, /syntax error/);
    assert.match((await rejectedFor({ pipeline: 'videotestsrc ! fakesink', restart_policy: 'fast' })).msg, /restart_policy must be an object/);
    assert.match(
      (await rejectedFor({ pipeline: 'videotestsrc ! fakesink', pipelines: { cam2: '$MISSING_VAR ! fakesink' } })).msg,
      /environment variable MISSING_VAR is not set/,
    );
    assert.equal(module.logs.slice(indexOf(module, playing) + 1).filter((l) => l.event === 'pipeline-state').length, 0);
  });

  it('rejects a twin file that is not JSON and applies it once it is fixed', async () => {
    const module = startModule({ desired: { pipeline: LIVE } });
    await module.waitForPipeline('main', 'playing');
    const broken = module.logs.length;
    writeFileSync(module.twinPath, '{"properties": {"desired": {"pipeline": ');
    const rejected = await module.waitForLog((l) => l.event === 'config-rejected', 20_000, broken);
    assert.match(rejected.msg, /not valid JSON/);
    const from = module.logs.length;
    const smaller = LIVE.replace('320', '160');
    const version = module.writeDesired({ pipeline: smaller });
    await module.waitForLog((l) => l.event === 'config-applied' && l.version === version, 20_000, from);
    const playing = await module.waitForPipeline('main', 'playing', 20_000, from);
    assert.equal(playing.template, smaller);
  });

  it('swaps the pipeline when the twin file changes, and leaves unchanged pipelines alone', async () => {
    const cam2 = 'videotestsrc is-live=true pattern=snow ! fakesink';
    const module = startModule({ desired: { pipeline: LIVE, pipelines: { cam2 } } });
    await module.waitForPipeline('main', 'playing');
    const cam2Playing = await module.waitForPipeline('cam2', 'playing');
    const from = module.logs.length;
    const after = module.reportedVersion();
    const next = LIVE.replace('videotestsrc', 'videotestsrc pattern=ball');
    const version = module.writeDesired({ pipeline: next, pipelines: { cam2 }, $version: 7 });
    await module.waitForPipeline('main', 'stopped', 20_000, from);
    const swapped = await module.waitForPipeline('main', 'playing', 20_000, from);
    assert.equal(swapped.template, next);
    await module.waitForLog((l) => l.event === 'config-applied' && l.version === version, 20_000, from);
    const cam2Touched = module.logs.slice(indexOf(module, cam2Playing) + 1).filter((l) => l.pipeline === 'cam2' && l.event === 'pipeline-state');
    assert.deepEqual(cam2Touched, [], 'cam2 kept running');
    const reported = await module.waitForReported((r) => r.config.appliedVersion === version && r.pipelines.main?.state === 'playing', { after });
    assert.equal(reported.pipelines.main.pipeline, next);
  });

  it('coalesces a burst of twin changes: the last one runs and only one main pipeline ever plays', async () => {
    const module = startModule({ desired: { pipeline: LIVE } });
    await module.waitForPipeline('main', 'playing');
    const from = module.logs.length;
    const patterns = ['snow', 'ball', 'smpte', 'pinwheel', 'gamut'];
    for (const [i, pattern] of patterns.entries()) module.writeDesired({ pipeline: LIVE.replace('videotestsrc', `videotestsrc pattern=${pattern}`), $version: 10 + i });
    await module.waitForLog((l) => l.event === 'config-applied' && l.version === 14, 20_000, from);
    await module.waitForLog((l) => l.event === 'pipeline-state' && l.pipeline === 'main' && l.state === 'playing' && String(l.template).includes('gamut'), 20_000, from);
    // Between two "playing" lines of main there is always a "stopped": never two at once.
    let running = 1;
    for (const line of module.logs.slice(from)) {
      if (line.event !== 'pipeline-state' || line.pipeline !== 'main') continue;
      if (line.state === 'playing') running++;
      if (line.state === 'stopped') running--;
      assert.ok(running <= 1, 'two main pipelines were playing at once');
    }
  });
});

describe('environment variables and secrets', () => {
  it('expands variables into the pipeline and never shows their values', async () => {
    const secret = 'hunter2-Zq9-secret';
    const module = startModule({
      desired: {
        pipeline: 'videotestsrc num-buffers=3 pattern=${PATTERN:-ball} ! filesink location=/nonexistent-dir/${CAM_PASSWORD}/out.raw',
        pipelines: { cam2: 'videotestsrc is-live=true ! fakesink name=$SINK_NAME' },
      },
      env: { CAM_PASSWORD: secret, SINK_NAME: 'sink-from-env', GST_DEBUG: '2' },
    });
    const backoff = await module.waitForPipeline('main', 'backoff');
    // The error proves the value reached GStreamer, and shows the variable's name in its place.
    assert.match(String(backoff.lastError), /\/nonexistent-dir\/\$\{CAM_PASSWORD\}\/out\.raw/);
    await module.waitForPipeline('cam2', 'playing');
    const reported = await module.waitForReported((r) => typeof r.pipelines.main?.lastError === 'string' && r.pipelines.cam2?.state === 'playing', { after: 0 });
    await module.stop();
    assert.ok(module.output.some((line) => line.includes('${CAM_PASSWORD}')), 'the redacted form is logged');
    assert.ok(module.output.some((line) => line.includes('gstreamer')), 'GStreamer output (GST_DEBUG) passes through');
    for (const line of module.output) assert.ok(!line.includes(secret), `secret in output: ${line}`);
    assert.ok(!JSON.stringify(reported).includes(secret), 'secret in reported properties');
    assert.match(JSON.stringify(module.reported()), /\$\{CAM_PASSWORD\}/);
  });
});

describe('media engine supervision and shutdown', () => {
  it('keeps the control plane running when the engine is killed with SIGSEGV, restarts it and replays the config', async () => {
    const module = startModule({ desired: { pipeline: LIVE } });
    await module.waitForPipeline('main', 'playing');
    const ready = await module.waitForLog((l) => l.event === 'engine-ready');
    const from = module.logs.length;
    const after = module.reportedVersion();
    process.kill(ready.pid as number, 'SIGSEGV');
    const died = await module.waitForLog((l) => l.event === 'engine-died', 20_000, from);
    assert.equal(died.reason, 'killed by signal SIGSEGV');
    const back = await module.waitForLog((l) => l.event === 'engine-ready' && l.pid !== ready.pid, 20_000, indexOf(module, died));
    await module.waitForPipeline('main', 'playing', 20_000, indexOf(module, back));
    const reported = await module.waitForReported((r) => r.engine.restarts === 1 && r.pipelines.main?.state === 'playing', { after });
    const { lastError } = reported.engine;
    assert.ok(lastError !== null, "the engine's last error is reported");
    assert.match(lastError, /died: killed by signal SIGSEGV/);
    assert.equal(module.child.exitCode, null, 'control plane still running');
  });

  it('kills a hung engine (it stops answering), reports it "hung", and recovers like after a crash', async () => {
    const module = startModule({ desired: { pipeline: LIVE }, env: { ENGINE_HANG_TIMEOUT_MS: '3000' } });
    await module.waitForPipeline('main', 'playing');
    const ready = await module.waitForLog((l) => l.event === 'engine-ready');
    const from = module.logs.length;
    const after = module.reportedVersion();
    // SIGSTOP: the process stays, deaf, as a deadlocked main thread would.
    process.kill(ready.pid as number, 'SIGSTOP');
    const died = await module.waitForLog((l) => l.event === 'engine-died', 20_000, from);
    assert.equal(died.reason, 'hung (no answer for 6000 ms)');
    assert.equal(died.cause, 'hung');
    const back = await module.waitForLog((l) => l.event === 'engine-ready' && l.pid !== ready.pid, 20_000, indexOf(module, died));
    await module.waitForPipeline('main', 'playing', 20_000, indexOf(module, back));
    const reported = await module.waitForReported((r) => r.engine.restarts === 1 && r.pipelines.main?.state === 'playing', { after });
    assert.equal(reported.engine.lastError, 'died: hung (no answer for 6000 ms)');
  });

  it('does not kill a healthy engine when the control plane itself stalls (SIGSTOP 11 s, then SIGCONT)', async () => {
    const module = startModule({ desired: { pipeline: LIVE } });
    await module.waitForPipeline('main', 'playing');
    await module.waitForLog((l) => l.event === 'engine-ready');
    const from = module.logs.length;
    // Longer than the hang timeout (10 s): the control plane's timers are all overdue when it resumes.
    module.child.kill('SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, 11_000));
    module.child.kill('SIGCONT');
    // Its timers run first: the watchdog finds the engine silent and pings it; the messages the engine sent
    // meanwhile are read right after, and the ping is answered.
    const silent = await module.waitForLog((l) => l.event === 'engine-silent', 20_000, from);
    await module.waitForLog((l) => l.event === 'engine-answered', 20_000, indexOf(module, silent));
    assert.deepEqual(module.logs.slice(from).filter((l) => l.event === 'engine-died' || l.event === 'engine-ready'), [], 'the engine was neither killed nor restarted');
    assert.equal(module.child.exitCode, null);
  });

  it('finalises mp4mux and splitmuxsink recordings on SIGTERM and exits 0', async () => {
    const module = startModule({ desired: {} });
    const mp4 = join(module.dir, 'recording.mp4');
    const split = join(module.dir, 'split00.mp4');
    const from = module.logs.length;
    const encode = 'videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! h264parse';
    module.writeDesired({
      pipelines: {
        recorder: `${encode} ! mp4mux ! filesink location=${mp4}`,
        splitter: `${encode} ! splitmuxsink location=${join(module.dir, 'split%02d.mp4')} max-size-time=60000000000`,
      },
    });
    await module.waitForPipeline('recorder', 'playing', 20_000, from);
    await module.waitForPipeline('splitter', 'playing', 20_000, from);
    // Two x264 encoders on a loaded 2-core machine: a generous bound.
    await waitForFileSize(mp4, 20_000, 30_000);
    await waitForFileSize(split, 20_000, 30_000);
    const exit = await module.stop();
    assert.deepEqual(exit, { code: 0, signal: null });
    for (const file of [mp4, split]) {
      const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height:format=duration', '-of', 'json', file]);
      const probe = JSON.parse(stdout) as { streams: Array<{ codec_name: string; width: number }>; format: { duration: string } };
      assert.equal(probe.streams[0]?.codec_name, 'h264', file);
      assert.equal(probe.streams[0]?.width, 320, file);
      assert.ok(Number(probe.format.duration) > 0, `${file} has a duration`);
    }
    assert.ok(module.logs.some((l) => l.pipeline === 'recorder' && l.state === 'stopped'));
  });
});

describe('gst-iotedge --check', () => {
  const check = async (desired: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => {
    const dir = mkdtempSync(join(tmpdir(), 'gst-iotedge-check-'));
    const twin = join(dir, 'twin.json');
    writeFileSync(twin, JSON.stringify({ properties: { desired } }));
    try {
      const { stdout, stderr } = await run(process.execPath, [MAIN, '--check', twin], {
        env: { ...process.env, ...env },
      });
      return { code: 0, out: stdout + stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: e.stdout + e.stderr };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('accepts a twin whose pipelines all parse', async () => {
    const result = await check({ pipeline: LIVE, rtsp_pipeline: '( appsrc name=videosrc ! h264parse ! rtph264pay name=pay0 pt=96 )' });
    assert.equal(result.code, 0, result.out);
    assert.match(result.out, /✓ main: parses/);
    assert.match(result.out, /✓ rtsp_pipeline: parses/);
  });

  it('refuses a pipeline GStreamer cannot parse, with the parser message', async () => {
    const result = await check({ pipeline: 'videotestsrc ! x264enc no-such-prop=1 ! fakesink' });
    assert.equal(result.code, 1);
    assert.match(result.out, /✗ main: no property "no-such-prop" in element "x264enc/);
  });

  it('refuses an unset variable, naming it, and never prints a set one', async () => {
    const missing = await check({ pipeline: 'rtspsrc location=rtsp://$CAM_USER:$CAM_PASS@127.0.0.1/x ! fakesink' }, { CAM_USER: 'bob' });
    assert.equal(missing.code, 1);
    assert.match(missing.out, /environment variable CAM_PASS is not set/);
    const bad = await check({ pipeline: 'videotestsrc ! nosuch location=$CAM_PASS' }, { CAM_PASS: 'pa55-word-x' });
    assert.equal(bad.code, 1);
    assert.doesNotMatch(bad.out, /pa55-word-x/);
  });
});
