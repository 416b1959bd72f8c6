/**
 * Video analysis: the module's analyzer path (engine tap -> socket -> worker process -> results) against the same
 * model in a bare standalone script on the same frames, in the same run.
 *   relay:    a 720p30 H.264 clip played in real time through `inference name=cam ! h264parse ! appsink name=video`
 *   analyzer: CenterNet at 320x320, `fps: 10`, onnxruntime-node (1 thread) or whatever `auto` picks here
 *   baseline: a child process that loads the same detector and analyses the frames the worker got (recorded by a
 *             second client of the tap's socket), paced at the same rate
 * Goals: >= 10 analysed fps while the relay keeps 30 fps; CPU(analyzer process) / CPU(standalone) <= 1.15.
 * Prints each run and the median and spread of RUNS runs (default 3) of SECONDS seconds (default 10); FPS (default 10)
 * asks the analyzer for more, to see where the machine tops out; RUNTIME=tfjs-wasm measures arm32v7's runtime here.
 */
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AnalyzerSupervisor } from '../actors/AnalyzerSupervisor.js';
import { CenterNetDetector } from '../analysis/centernet/CenterNetDetector.js';
import { GdpParser, parseRawVideoCaps } from '../analysis/gdp.js';
import type { Frame } from '../analysis/types.js';
import { parseAnalysisSettings, tapSpecOf, workerSpecOf } from '../config/analysis.js';
import { AnalysisEngine, type HarnessEvent } from '../test/support/analysisEngine.js';
import { clip720p30, clipSource } from '../test/support/analysisMedia.js';
import { cpuSeconds, median } from './cpu.js';

const RUNS = Number(process.env.RUNS ?? 3);
const SECONDS = Number(process.env.SECONDS ?? 10);
const FPS = Number(process.env.FPS ?? 10);
const SIZE = 320;
/** `onnxruntime`, `tfjs-wasm` (what arm32v7 runs) or `auto`. */
const RUNTIME = (process.env.RUNTIME ?? 'auto') as 'auto' | 'onnxruntime' | 'tfjs-wasm';

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** Frames as the standalone script reads them: width, height (u32 LE each), then the stride*height RGB bytes. */
function writeFrames(file: string, frames: Array<{ width: number; height: number; data: Buffer }>): void {
  const parts: Buffer[] = [];
  for (const f of frames) {
    const header = Buffer.alloc(8);
    header.writeUInt32LE(f.width, 0);
    header.writeUInt32LE(f.height, 4);
    parts.push(header, f.data);
  }
  writeFileSync(file, Buffer.concat(parts));
}

function readFrames(file: string): Frame[] {
  const bytes = readFileSync(file);
  const frames: Frame[] = [];
  for (let at = 0; at < bytes.length; ) {
    const width = bytes.readUInt32LE(at);
    const height = bytes.readUInt32LE(at + 4);
    const stride = Math.ceil((width * 3) / 4) * 4;
    frames.push({ camera: 'bench', sequence: frames.length + 1, receivedAt: Date.now(), pts: null, width, height, stride, data: bytes.subarray(at + 8, at + 8 + stride * height) });
    at += 8 + stride * height;
  }
  return frames;
}

/** The baseline: the detector alone on recorded frames, paced at `fps`; prints its CPU seconds (model load excluded). */
async function standalone(file: string, fps: number): Promise<void> {
  const frames = readFrames(file);
  const detector = await CenterNetDetector.create({ inputSize: SIZE, runtime: RUNTIME, threads: 1, threshold: 0.3, classes: null });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < frames.length; i++) {
    const due = t0 + (i * 1000) / fps;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await detector.analyze(frames[i]!);
  }
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({ cpu: (cpu.user + cpu.system) / 1e6, frames: frames.length, wall: (performance.now() - t0) / 1000, runtime: detector.runtime })}\n`);
}

interface RunResult {
  analysedFps: number;
  relayFps: number;
  p50: number;
  p95: number;
  analyzerCpu: number;
  standaloneCpu: number;
  engineCpu: number;
  frames: number;
  runtime: string;
}

async function oneRun(clip: string, dir: string, run: number): Promise<RunResult> {
  const [settings] = parseAnalysisSettings({ analyzers: { cam: { fps: FPS, threshold: 0.3, input_size: SIZE, runtime: RUNTIME } } }).analyzers;
  const engine = await AnalysisEngine.start();
  const supervisor = new AnalyzerSupervisor({ spec: workerSpecOf(settings!) });
  try {
    engine.send({ type: 'analysis', taps: [tapSpecOf(settings!)], decoder: 'auto' });
    engine.send({ type: 'start', pipeline: 'main', launch: `${clipSource(clip)} ! inference name=cam ! h264parse ! appsink name=video` });
    const tap = await engine.waitFor((e): e is Extract<HarnessEvent, { type: 'analysis-tap' }> => e.type === 'analysis-tap' && e.port !== null);
    supervisor.setSource(tap.port);
    supervisor.start();
    const [ready] = (await once(supervisor, 'ready')) as [{ pid: number; runtime: string }];
    // Warm-up: first frames, first inferences.
    await once(supervisor.observer, 'fps');
    await once(supervisor.observer, 'fps');

    // A second client of the tap records the frames the worker gets, for the baseline.
    const recorded: Array<{ width: number; height: number; data: Buffer }> = [];
    let recording = true;
    const parser = new GdpParser();
    let caps: ReturnType<typeof parseRawVideoCaps> = null;
    const recorder = connect({ host: '127.0.0.1', port: tap.port! });
    recorder.on('data', (chunk: Buffer) => {
      for (const p of parser.push(chunk)) {
        if (p.kind === 'caps') caps = parseRawVideoCaps(p.caps);
        else if (p.kind === 'buffer' && caps && recording) recorded.push({ width: caps.width, height: caps.height, data: Buffer.from(p.payload) });
      }
    });
    await once(recorder, 'connect');

    const latencies: number[] = [];
    let analysed = 0;
    const onResult = (r: { latencyMs: number }) => {
      analysed++;
      latencies.push(r.latencyMs);
    };
    const hubAt = engine.events.length;
    const cpuA0 = cpuSeconds([ready.pid]);
    const cpuE0 = cpuSeconds([engine.pid]);
    const t0 = performance.now();
    supervisor.on('result', onResult);
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    supervisor.off('result', onResult);
    const wall = (performance.now() - t0) / 1000;
    const analyzerCpu = cpuSeconds([ready.pid]) - cpuA0;
    const engineCpu = cpuSeconds([engine.pid]) - cpuE0;
    recording = false;
    recorder.destroy();
    const hubs = engine.events.slice(hubAt).filter((e): e is Extract<HarnessEvent, { type: 'hub' }> => e.type === 'hub');
    const first = hubs[0]!;
    const last = hubs[hubs.length - 1]!;
    const relayFps = ((last.streams.video!.buffers - first.streams.video!.buffers) * 1000) / (last.at - first.at);

    await supervisor.close();
    await engine.stop();
    // The baseline runs alone, after the engine is gone: same frames, same pace, the machine no busier.
    const file = join(dir, `frames-${run}.bin`);
    writeFrames(file, recorded.slice(0, analysed));
    const baseline = await new Promise<{ cpu: number; frames: number }>((resolve, reject) => {
      const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--standalone', file, String(analysed / wall)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { cpu: number; frames: number }) : reject(new Error(`standalone exited ${code}`))));
    });
    return {
      analysedFps: analysed / wall,
      relayFps,
      p50: median(latencies),
      p95: percentile(latencies, 95),
      analyzerCpu,
      standaloneCpu: baseline.cpu,
      engineCpu,
      frames: baseline.frames,
      runtime: ready.runtime,
    };
  } finally {
    await supervisor.close();
    await engine.stop();
  }
}

async function main(): Promise<void> {
  const clip = clip720p30(Math.max(20, SECONDS + 10));
  const dir = mkdtempSync(join(tmpdir(), 'analysis-bench-'));
  const results: RunResult[] = [];
  try {
    for (let run = 1; run <= RUNS; run++) {
      const r = await oneRun(clip, dir, run);
      results.push(r);
      console.log(
        `run ${run}: analysed ${r.analysedFps.toFixed(1)} fps, relay ${r.relayFps.toFixed(1)} fps, latency p50 ${r.p50.toFixed(1)} ms p95 ${r.p95.toFixed(1)} ms, ` +
          `CPU analyzer ${r.analyzerCpu.toFixed(2)} s / standalone ${r.standaloneCpu.toFixed(2)} s (${r.frames} frames) = ${(r.analyzerCpu / r.standaloneCpu).toFixed(2)}, engine ${(r.engineCpu / SECONDS * 100).toFixed(0)}% of a core [${r.runtime}]`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const row = (name: string, values: number[], digits: number, unit = '') =>
    `${name.padEnd(44)} median ${median(values).toFixed(digits).padStart(7)}${unit}  (min ${Math.min(...values).toFixed(digits)}, max ${Math.max(...values).toFixed(digits)}, spread ${(Math.max(...values) - Math.min(...values)).toFixed(digits)})`;
  const ratios = results.map((r) => r.analyzerCpu / r.standaloneCpu);
  console.log(`analysis bench: ${RUNS} runs of ${SECONDS} s, CenterNet ${SIZE}x${SIZE} at fps ${FPS} on a 720p30 H.264 relay`);
  console.log(row('analysed fps', results.map((r) => r.analysedFps), 1));
  console.log(row('relay fps (producing pipeline)', results.map((r) => r.relayFps), 1));
  console.log(row('inference latency p50', results.map((r) => r.p50), 1, ' ms'));
  console.log(row('inference latency p95', results.map((r) => r.p95), 1, ' ms'));
  console.log(row('engine CPU (relay + tap decode/scale), % core', results.map((r) => (r.engineCpu / SECONDS) * 100), 0));
  console.log(row('CPU analyzer process / standalone script', ratios, 2));
  console.log(`goal >= 10 analysed fps: ${median(results.map((r) => r.analysedFps)) >= 9.5 ? 'met' : 'MISSED'}; goal CPU ratio <= 1.15: ${median(ratios) <= 1.15 ? 'met' : 'MISSED'}`);
}

const at = process.argv.indexOf('--standalone');
if (at >= 0) await standalone(process.argv[at + 1]!, Number(process.argv[at + 2]));
else await main();
