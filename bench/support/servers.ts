import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ModuleProcess } from '../../test/support/ModuleProcess.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A live 30 fps H.264 test source of `size` (`1280x720`), key frame every second, SPS/PPS in band. */
export function h264Source(size: string, pattern = 'ball', bitrate = 4000): string {
  const [w, h] = size.split('x');
  return `videotestsrc is-live=true pattern=${pattern} ! video/x-raw,width=${w},height=${h},framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=${bitrate} ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** SIGINT, and the exit waited for (SIGKILL after 5 s). */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(kill);
}

/** The module as benchmarks run it, with the addresses it listens on and its two processes. */
export interface BenchModule {
  readonly module: ModuleProcess;
  /** `rtsp://127.0.0.1:<port>` (no path), when RTSP is on. */
  readonly rtsp: string | null;
  /** `http://127.0.0.1:<port>`, when the web server is on. */
  readonly http: string | null;
  /** Control plane, then engine. */
  readonly pids: () => number[];
  stop(): Promise<void>;
}

/**
 * Starts the module on `desired` (RTSP and HTTP on free loopback ports unless the document says otherwise, no
 * metrics server) and waits for the engine and, when there is one, the main pipeline to play.
 */
export async function startModule(desired: Record<string, unknown>, options: { pipelines?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<BenchModule> {
  const module = new ModuleProcess({
    desired: {
      rtsp: { port: 0, address: '127.0.0.1' },
      http: { port: 0, address: '127.0.0.1', media_root: '/tmp/gst-iotedge-media' },
      metrics: { port: null },
      ...desired,
    },
    env: { LOG_LEVEL: 'info', ...options.env },
  });
  try {
    const wantsRtsp = 'rtsp_pipeline' in desired || (desired.rtsp as { mounts?: unknown } | undefined)?.mounts !== undefined;
    const wantsHttp = desired.http_server !== false;
    const rtsp = wantsRtsp ? await module.waitForLog((l) => l.event === 'rtsp-listening', 30_000) : null;
    const http = wantsHttp ? await module.waitForLog((l) => l.event === 'http-listening', 30_000) : null;
    await module.waitForLog((l) => l.event === 'engine-ready', 30_000);
    for (const name of options.pipelines ?? ('pipeline' in desired ? ['main'] : [])) await module.waitForPipeline(name, 'playing', 30_000);
    return {
      module,
      rtsp: rtsp ? `rtsp://127.0.0.1:${rtsp.port as number}` : null,
      http: http ? `http://127.0.0.1:${http.port as number}` : null,
      // The engine's pid as of now: a restarted engine has a new one.
      pids: () => [module.child.pid!, module.logs.filter((l) => l.event === 'engine-ready').at(-1)!.pid as number],
      stop: async () => {
        await module.stop();
        rmSync(module.dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await module.stop();
    rmSync(module.dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Starts a baseline process (a plain GStreamer server or gst-launch-1.0 measured against the module) in its own
 * session, as the module's engine runs (engineChildActor forks it detached). Where the kernel groups processes by
 * session for CPU fairness (sched_autogroup, for processes outside a CPU cgroup: this VM, a desktop; not a
 * container), a process left in the benchmark's session shares one group with the cameras and the viewers, and
 * one in a session of its own is woken sooner: its threads take a packet per wake-up instead of a few, which costs
 * more. The same node-gtk relay of 16 cameras cost 1.085 times as much in its own session as in the benchmark's,
 * side by side; the module's engine against that copy, both in their own sessions: 1.000. Killed if the benchmark
 * exits without stopping it (a detached child would outlive it).
 */
export function spawnBaseline(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, { ...options, detached: true });
  const orphan = () => child.kill('SIGKILL');
  process.once('exit', orphan);
  child.once('exit', () => process.off('exit', orphan));
  return child;
}

/** A plain gst-rtsp-server (python3-gi) serving `launch` at /player: the baseline of the RTSP benchmarks. */
export async function baselineRtspServer(
  launch: string,
  mounts: Record<string, string> = {},
  /** Named pipelines run beside the server; a mount's `proxysrc name=<x>src` is fed from their `proxysink name=<x>`. */
  pipelines: Record<string, string> = {},
): Promise<{ url: string; base: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const script = fileURLToPath(new URL('../../../bench/rtspBaselineServer.py', import.meta.url));
  const extra = Object.entries(mounts).flatMap(([path, line]) => [path, line]);
  const child = spawnBaseline('/usr/bin/python3', [script, String(port), launch, ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BASELINE_PIPELINES: JSON.stringify(pipelines) },
  });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => line === 'ready' && resolve());
    child.once('exit', (code) => reject(new Error(`baseline server exited ${code}`)));
  });
  const base = `rtsp://127.0.0.1:${port}`;
  return { url: `${base}/player`, base, pid: child.pid!, stop: () => stopChild(child) };
}

/**
 * A 2 s loop of H.264 (byte-stream, a key frame a second) of `size` at `bitrate` kbit/s, encoded once and kept in
 * the temporary folder: cameras served from it cost a file read and a payloader each, not an encoder. Noise
 * (videotestsrc's snow) makes x264 spend the whole bitrate, as a busy camera picture does.
 */
export function preEncodedCamera(size: string, bitrate: number): string {
  const dir = join(tmpdir(), 'gst-iotedge-bench');
  const file = join(dir, `camera-${size}-${bitrate}.h264`);
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const [w, h] = size.split('x');
  const launch = `videotestsrc pattern=snow num-buffers=60 ! video/x-raw,width=${w},height=${h},framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=${bitrate} ! video/x-h264,profile=constrained-baseline,stream-format=byte-stream ! h264parse ! filesink location=${file}.part`;
  const result = spawnSync('gst-launch-1.0', ['-q', ...launch.split(' ')], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`encoding ${file} failed`);
  renameSync(`${file}.part`, file);
  return file;
}

/** The launch line of a camera served from {@link preEncodedCamera}'s file, looped for ever at 30 fps. */
export function loopedCameraLaunch(file: string): string {
  return `( multifilesrc location=${file} loop=true caps=video/x-h264,stream-format=byte-stream,framerate=30/1 ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )`;
}
