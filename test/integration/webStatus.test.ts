import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import type { StatusDocument } from '../../actors/ControlPlane.js';
import { ModuleProcess } from '../support/ModuleProcess.js';

const run = promisify(execFile);
const LIVE = 'videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast ! h264parse ! appsink name=video max-buffers=30 drop=true sync=false';
const FAILING = 'filesrc location=/nonexistent/camera.h264 ! fakesink';
const SECRET = 'metrics-S3cret-value';

const mediaRoot = mkdtempSync(join(tmpdir(), 'gst-iotedge-media-'));
const settings = {
  http: { port: 0, address: '127.0.0.1', media_root: mediaRoot },
  metrics: { port: 0, address: '127.0.0.1' },
  rtsp: { port: 0, address: '127.0.0.1' },
  restart_policy: { initial_delay_ms: 100, max_delay_ms: 400 },
};
/** The desired `$version` the module starts with. */
const INITIAL_VERSION = 5;
let module: ModuleProcess;
let web: string;
let metricsUrl: string;
let browser: Browser | null = null;

before(async () => {
  module = new ModuleProcess({
    desired: { ...settings, pipeline: LIVE, pipelines: { secretive: `videotestsrc is-live=true ! fakesink name=$SINK` }, $version: INITIAL_VERSION },
    env: { SINK: SECRET, IOTEDGE_MODULEID: 'gst-iotedge', IOTEDGE_DEVICEID: 'edge-1', IOTEDGE_IOTHUBHOSTNAME: 'hub.example' },
  });
  const http = await module.waitForLog((l) => l.event === 'http-listening');
  const metrics = await module.waitForLog((l) => l.event === 'metrics-listening');
  web = `http://127.0.0.1:${http.port as number}`;
  metricsUrl = `http://127.0.0.1:${metrics.port as number}/metrics`;
  await module.waitForPipeline('main', 'playing');
});
after(async () => {
  await browser?.close();
  await module.stop();
  rmSync(module.dir, { recursive: true, force: true });
  rmSync(mediaRoot, { recursive: true, force: true });
});

/**
 * A page predicate (a string: this file is compiled without DOM types): the status page shows the document of
 * desired `$version` `version`, and `condition` holds on it. Each event re-renders the whole page from one status
 * document, so both come from the same document.
 */
function pageShows(version: number, condition: string): string {
  return `document.getElementById('config-version')?.textContent === '(applied $version ${version})' && (${condition})`;
}

function sample(text: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return null;
}

describe('status API, metrics and status page', () => {
  it('serves the status document at /api/status, secrets masked', async () => {
    const response = await fetch(`${web}/api/status`);
    assert.equal(response.status, 200);
    const status = (await response.json()) as StatusDocument;
    // before() waited for main to play: the document says so, for the initial desired version.
    assert.equal(status.config.appliedVersion, INITIAL_VERSION);
    assert.equal(status.pipelines.main?.state, 'playing');
    assert.equal(status.config.status, 'applied');
    assert.ok(status.rtsp && status.engine.state === 'running');
    assert.ok(!JSON.stringify(status).includes(SECRET));
  });

  it('lets the control plane sleep while nothing changes: its event-loop lag histogram samples every 100 ms, not 10', async () => {
    // prom-client's default 10 ms woke the control plane's thread about 100 times a second (1% of a core, idle).
    const pid = module.child.pid!;
    const wakeups = () => Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8'))![1]);
    const before = wakeups();
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const perSecond = (wakeups() - before) / ((performance.now() - t0) / 1000);
    // 10 a second for the histogram, plus the engine's stats each second and a live pipeline's events.
    assert.ok(perSecond < 40, `control plane's thread woke ${perSecond.toFixed(1)} times a second`);
    const text = await (await fetch(metricsUrl)).text();
    assert.match(text, /^gst_iotedge_nodejs_eventloop_lag_p99_seconds\{[^}]*\} [0-9.e+-]+$/m);
  });

  it('exposes Prometheus metrics that promtool accepts, on :8000/metrics and on the metrics port', async () => {
    const text = await (await fetch(metricsUrl)).text();
    const again = await (await fetch(`${web}/metrics`)).text();
    assert.match(again, /gst_iotedge_pipeline_state/);
    const file = join(module.dir, 'metrics.txt');
    writeFileSync(file, text);
    const { stdout, stderr } = await run('sh', ['-c', `promtool check metrics < ${file}`]).catch((e: { stdout: string; stderr: string; code: number }) => {
      assert.fail(`promtool refused the metrics: ${e.stdout}${e.stderr}`);
    });
    assert.doesNotMatch(stdout + stderr, /error/i);
    const labels = { pipeline: 'main', state: 'playing', iothub: 'hub.example', edge_device: 'edge-1', module_name: 'gst-iotedge' };
    assert.equal(sample(text, 'gst_iotedge_pipeline_state', labels), 1);
    assert.equal(sample(text, 'gst_iotedge_pipeline_state', { pipeline: 'main', state: 'backoff' }), 0);
    assert.equal(sample(text, 'gst_iotedge_engine_up'), 1);
    assert.ok((sample(text, 'gst_iotedge_process_cpu_seconds_total') ?? -1) >= 0, 'default process metrics');
    assert.ok(!text.includes(SECRET));
  });

  it('moves the counters as buffers flow and as a pipeline fails and restarts', async () => {
    const first = await (await fetch(metricsUrl)).text();
    const buffers = sample(first, 'gst_iotedge_stream_buffers_total', { stream: 'video' }) ?? 0;
    // The engine reports its counters every second; HTTP has no event to wait on, so scrape until they move.
    const deadline = Date.now() + 20_000;
    let moved = buffers;
    while (moved <= buffers && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      moved = sample(await (await fetch(metricsUrl)).text(), 'gst_iotedge_stream_buffers_total', { stream: 'video' }) ?? 0;
    }
    assert.ok(moved > buffers, `video buffers counted: ${buffers} -> ${moved}`);
    // The engine's own memory (its stats brought the counts above), not the control plane's process metrics.
    const scraped = await (await fetch(metricsUrl)).text();
    const engineRss = sample(scraped, 'gst_iotedge_engine_memory_bytes', { area: 'rss' }) ?? 0;
    assert.ok(engineRss > 20 * 2 ** 20, `engine resident memory: ${engineRss}`);
    assert.notEqual(engineRss, sample(scraped, 'gst_iotedge_process_resident_memory_bytes'));
    assert.ok((sample(scraped, 'gst_iotedge_engine_memory_bytes', { area: 'heap' }) ?? 0) > 0, 'engine heap in use');
    const from = module.logs.length;
    const version = module.writeDesired({ ...settings, pipeline: FAILING });
    const applied = await module.waitForLog((l) => l.event === 'config-applied' && l.version === version, 20_000, from);
    await module.waitForLog((l) => l.event === 'pipeline-state' && l.pipeline === 'main' && l.state === 'starting' && (l.restarts as number) >= 2, 20_000, module.logs.indexOf(applied));
    const second = await (await fetch(metricsUrl)).text();
    assert.ok((sample(second, 'gst_iotedge_pipeline_errors_total', { pipeline: 'main' }) ?? 0) >= 2, 'errors counted');
    assert.ok((sample(second, 'gst_iotedge_pipeline_restarts_total', { pipeline: 'main' }) ?? 0) >= 2, 'restarts counted');
    assert.equal(sample(second, 'gst_iotedge_twin_updates_total', { result: 'applied' }), 2);
    assert.equal(sample(second, 'gst_iotedge_pipeline_state', { pipeline: 'secretive', state: 'playing' }), null, 'a removed pipeline has no series');
    assert.ok((sample(second, 'gst_iotedge_http_requests_total', { route: '/metrics', status: '200' }) ?? 0) >= 1, 'HTTP requests counted');
  });

  it('shows each pipeline and follows twin changes live on the status page', async () => {
    const after = module.reportedVersion();
    const live = module.writeDesired({ ...settings, pipeline: LIVE });
    await module.waitForReported((r) => r.config.appliedVersion === live && r.pipelines.main?.state === 'playing', { after });
    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(`${web}/`);
    await page.waitForFunction(pageShows(live, `document.querySelector('tr[data-pipeline="main"] .state-playing') !== null`), null, { timeout: 30_000 });
    const failing = module.writeDesired({ ...settings, pipeline: FAILING });
    await page.waitForFunction(
      pageShows(failing, `document.querySelector('tr[data-pipeline="main"] .state-backoff, tr[data-pipeline="main"] .state-starting') !== null`),
      null,
      { timeout: 30_000 },
    );
    await page.waitForFunction(
      pageShows(failing, `/not found|No such file|Could not open/i.test(document.querySelector('tr[data-pipeline="main"] .error')?.textContent ?? '')`),
      null,
      { timeout: 30_000 },
    );
    await page.close();
  });

  it('turns the web server off with http_server: false and keeps the metrics port', async () => {
    const from = module.logs.length;
    module.writeDesired({ ...settings, pipeline: LIVE, http_server: false });
    await module.waitForLog((l) => l.event === 'http-off', 20_000, from);
    await assert.rejects(fetch(`${web}/api/status`));
    const text = await (await fetch(metricsUrl)).text();
    assert.match(text, /gst_iotedge_pipeline_state/);
  });
});

describe('HLS from the module\'s own pipeline', () => {
  it('plays in hls.html what the twin pipeline writes with hlssink2 into the media folder', async () => {
    const hlsRoot = mkdtempSync(join(tmpdir(), 'gst-iotedge-hls-'));
    const hls = new ModuleProcess({
      desired: {
        ...settings,
        http: { port: 0, address: '127.0.0.1', media_root: hlsRoot },
        pipeline: `videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 ! hlssink2 location=${hlsRoot}/segment%05d.ts playlist-location=${hlsRoot}/playlist.m3u8 target-duration=1 max-files=10`,
      },
    });
    try {
      const http = await hls.waitForLog((l) => l.event === 'http-listening');
      await hls.waitForPipeline('main', 'playing');
      browser ??= await launchChromium();
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${http.port as number}/wwwroot/hls.html?src=/media/playlist.m3u8`);
      const currentTime = "document.getElementById('video').currentTime";
      await page.waitForFunction(`${currentTime} > 0`, null, { timeout: 30_000 });
      const start = (await page.evaluate(currentTime)) as number;
      await page.waitForFunction(`${currentTime} > ${start + 2}`, null, { timeout: 30_000 });
      await page.close();
    } finally {
      await hls.stop();
      rmSync(hls.dir, { recursive: true, force: true });
      rmSync(hlsRoot, { recursive: true, force: true });
    }
  });
});
