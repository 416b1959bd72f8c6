/**
 * Start and swap times of the module against gst-launch-1.0 running the same pipeline, measured in the same run.
 *   start: process spawn -> the pipeline reports PLAYING (module: its log line; gst-launch: `-m` state-changed)
 *   swap:  twin file written -> the new pipeline reports PLAYING
 * Goals: start <= 1500 ms, swap <= 300 ms. Prints medians of RUNS runs.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { median } from './cpu.js';
import { parseDesired } from '../config/desired.js';
import { resolveDesired } from '../config/resolve.js';
import { ModuleProcess } from '../test/support/ModuleProcess.js';

const RUNS = Number(process.env.RUNS ?? 7);
const DEFAULT_TWIN = new URL('../../twins/default.json', import.meta.url);
// Expanded as the module expands it (the default twin writes HLS into its media folder, which the module creates).
const DEFAULT_CONFIG = resolveDesired(parseDesired(JSON.parse(readFileSync(DEFAULT_TWIN, 'utf8'))), process.env);
const PIPELINE = DEFAULT_CONFIG.pipelines[0]!.launch;
mkdirSync(DEFAULT_CONFIG.http.mediaRoot, { recursive: true });


/** gst-launch-1.0 -m: time from spawn to the pipeline's own state-changed -> PLAYING message. */
function gstLaunchStart(pipeline: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // gst-launch takes the description as argv words, as a shell would split it.
    const child = spawn('gst-launch-1.0', ['-m', ...pipeline.split(/\s+/)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('gst-launch-1.0 did not reach PLAYING in 15 s'));
    }, 15_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (/from element "pipeline0" \(state-changed\).*new-state=\(GstState\)playing/.test(line)) {
        const elapsed = performance.now() - t0;
        clearTimeout(timer);
        child.kill('SIGINT');
        child.on('exit', () => resolve(elapsed));
      }
    });
  });
}

async function moduleStartAndSwap(pipeline: string): Promise<{ start: number; swap: number }> {
  const t0 = performance.now();
  const module = new ModuleProcess({ desired: { pipeline }, env: { LOG_LEVEL: 'info' } });
  try {
    await module.waitForPipeline('main', 'playing');
    const start = performance.now() - t0;
    const from = module.logs.length;
    const t1 = performance.now();
    module.writeDesired({ pipeline: pipeline.replace('pattern=ball', 'pattern=smpte') });
    await module.waitForPipeline('main', 'playing', 20_000, from);
    const swap = performance.now() - t1;
    return { start, swap };
  } finally {
    await module.stop();
    rmSync(module.dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const gst: number[] = [];
  const start: number[] = [];
  const swap: number[] = [];
  // One warm-up of each so the page cache and plugin registry are warm for both alike.
  await gstLaunchStart(PIPELINE);
  await moduleStartAndSwap(PIPELINE);
  for (let i = 0; i < RUNS; i++) {
    gst.push(await gstLaunchStart(PIPELINE));
    const m = await moduleStartAndSwap(PIPELINE);
    start.push(m.start);
    swap.push(m.swap);
  }
  const row = (name: string, values: number[]) =>
    `${name.padEnd(40)} median ${median(values).toFixed(0).padStart(5)} ms  (min ${Math.min(...values).toFixed(0)}, max ${Math.max(...values).toFixed(0)})`;
  console.log(`startup bench: ${RUNS} runs, pipeline = default twin (${PIPELINE.slice(0, 60)}...)`);
  console.log(row('gst-launch-1.0 spawn -> PLAYING', gst));
  console.log(row('module spawn -> PLAYING', start));
  console.log(row('module twin change -> new PLAYING', swap));
  console.log(`ratio module start / gst-launch start: ${(median(start) / median(gst)).toFixed(2)}`);
  console.log(`ratio module swap / gst-launch start:  ${(median(swap) / median(gst)).toFixed(2)}`);
  console.log(`goal start <= 1500 ms: ${median(start) <= 1500 ? 'met' : 'MISSED'}; goal swap <= 300 ms: ${median(swap) <= 300 ? 'met' : 'MISSED'}`);
}

await main();
