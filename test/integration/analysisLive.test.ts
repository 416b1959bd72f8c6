import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { clip720p30, clipSource } from '../support/analysisMedia.js';
import { ModuleProcess } from '../support/ModuleProcess.js';
import { RtspViewer } from '../support/RtspViewer.js';

/** A sample's value in Prometheus text (first series whose labels include `labels`), or null. */
function sample(text: string, name: string, labels: Record<string, string>): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return null;
}

/** Buffers through the main pipeline's `video` appsink and frames the analyzer analysed, so far, with the time. */
interface Counts {
  readonly at: number;
  readonly buffers: number;
  readonly analysed: number;
}

describe('an analyzer at 5 fps on a 720p30 camera in the module', () => {
  let module: ModuleProcess;
  let viewer: RtspViewer;
  let base: string;
  /** The reported `$version` when the analyzer was ready. */
  let readyVersion: number;
  const counts = async (): Promise<Counts> => {
    const text = await (await fetch(`${base}/metrics`)).text();
    return {
      at: performance.now(),
      buffers: sample(text, 'gst_iotedge_stream_buffers_total', { stream: 'video' }) ?? 0,
      analysed: sample(text, 'gst_iotedge_analysis_frames_total', { analyzer: 'people' }) ?? 0,
    };
  };
  /**
   * Counts just after the engine's next per-second report reached the metrics (polled every 50 ms): a window between
   * two such moments measures rates to a few percent, where one between arbitrary moments could be a second off.
   */
  const freshCounts = async (): Promise<Counts> => {
    const first = await counts();
    for (;;) {
      await sleep(50);
      const next = await counts();
      if (next.buffers !== first.buffers) return next;
    }
  };
  const rates = (from: Counts, to: Counts) => {
    const seconds = (to.at - from.at) / 1000;
    return { pipeline: (to.buffers - from.buffers) / seconds, analysed: (to.analysed - from.analysed) / seconds };
  };
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  before(async () => {
    module = new ModuleProcess({
      desired: {
        http: { port: 0, address: '127.0.0.1', media_root: '/tmp' },
        metrics: { port: null },
        rtsp: { port: 0, address: '127.0.0.1' },
        // A minute of 720p30 H.264 played in real time, as a camera sends it; the test is over well before its end.
        pipeline: `${clipSource(clip720p30(60))} ! inference name=people ! h264parse ! appsink name=video`,
        rtsp_pipeline: '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )',
        analyzers: { people: { fps: 5, threshold: 0.3 } },
      },
    });
    const http = await module.waitForLog((l) => l.event === 'http-listening', 30_000);
    base = `http://127.0.0.1:${http.port as number}`;
    const rtsp = await module.waitForLog((l) => l.event === 'rtsp-listening' && typeof l.port === 'number', 30_000);
    await module.waitForPipeline('main', 'playing', 30_000);
    await module.waitForLog((l) => l.event === 'analyzer-ready', 60_000);
    readyVersion = module.reportedVersion();
    viewer = new RtspViewer({ url: `rtsp://127.0.0.1:${rtsp.port as number}/player`, transport: 'tcp' });
    await viewer.waitForFrames(30, 30_000);
  });
  after(async () => {
    await viewer?.stop();
    await module?.stop();
    if (module) rmSync(module.dir, { recursive: true, force: true });
  });

  it('analyses 5 frames a second while the pipeline and an RTSP viewer keep 30', async (t) => {
    // Once the analyzer's first second has been counted: steady state.
    await module.waitForReported((r) => (r.analysis.people?.fps ?? 0) > 0, { after: readyVersion, timeoutMs: 20_000 });
    const from = await freshCounts();
    const frames = viewer.frames.length;
    await sleep(3_800);
    const to = await freshCounts();
    const { pipeline, analysed } = rates(from, to);
    const viewerFps = ((viewer.frames.length - frames) * 1000) / (to.at - from.at);
    t.diagnostic(`analysed ${analysed.toFixed(2)} fps, pipeline ${pipeline.toFixed(2)} fps, viewer ${viewerFps.toFixed(2)} fps`);
    assert.ok(analysed >= 4 && analysed <= 6, `analysed ${analysed.toFixed(1)} fps`);
    assert.ok(Math.abs(pipeline - 30) <= 2, `pipeline at ${pipeline.toFixed(1)} fps`);
    assert.ok(Math.abs(viewerFps - 30) <= 3, `viewer at ${viewerFps.toFixed(1)} fps`);
  });

  it('restarts a killed analyzer process while the pipeline and the viewer never notice', async (t) => {
    const { pid } = module.reported().properties.reported.analysis.people!;
    assert.ok(pid, 'the analyzer\'s process id is reported');
    const from = module.logs.length;
    const reportedBefore = module.reportedVersion();
    const before = await freshCounts();
    const viewerFrom = viewer.frames.length;
    process.kill(pid, 'SIGKILL');
    const died = await module.waitForLog((l) => l.event === 'analyzer-died' && l.analyzer === 'people', 20_000, from);
    assert.match(died.msg, /died: killed by signal SIGKILL/);
    const ready = await module.waitForLog((l) => l.event === 'analyzer-ready' && l.analyzer === 'people', 60_000, from);
    assert.notEqual(ready.pid, pid);
    // Analysing again: three more frames than at the kill.
    const deadline = Date.now() + 20_000;
    let now = await counts();
    while (now.analysed < before.analysed + 3 && Date.now() < deadline) {
      await sleep(250);
      now = await counts();
    }
    assert.ok(now.analysed >= before.analysed + 3, 'the new process analyses');
    // A window of at least four seconds from the kill on, ending at an engine report.
    await sleep(Math.max(0, before.at + 3_800 - performance.now()));
    now = await freshCounts();
    const { pipeline } = rates(before, now);
    const viewerFps = ((viewer.frames.length - viewerFrom) * 1000) / (now.at - before.at);
    t.diagnostic(`across the restart: pipeline ${pipeline.toFixed(2)} fps, viewer ${viewerFps.toFixed(2)} fps, longest gap ${viewer.maxGap(viewerFrom).toFixed(0)} ms`);
    assert.ok(Math.abs(pipeline - 30) <= 2, `pipeline at ${pipeline.toFixed(1)} fps across the restart`);
    assert.ok(Math.abs(viewerFps - 30) <= 3, `viewer at ${viewerFps.toFixed(1)} fps across the restart`);
    assert.ok(viewer.maxGap(viewerFrom) < 500, `longest gap at the viewer ${viewer.maxGap(viewerFrom).toFixed(0)} ms`);
    assert.deepEqual(module.logs.slice(from).filter((l) => l.event === 'pipeline-state'), [], 'no pipeline restarted');
    const r = await module.waitForReported((r) => r.analysis.people?.state === 'running' && r.analysis.people.restarts >= 1, { after: reportedBefore });
    assert.match(r.analysis.people!.lastError ?? '', /SIGKILL/);
    assert.equal(r.pipelines.main?.restarts, 0);
  });
});
