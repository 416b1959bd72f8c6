/**
 * Segment serving: the module's web server against Debian's nginx, serving the same folder on 127.0.0.1,
 * measured in the same run with the same load generator.
 *   load:  GET of a 1 MiB .m4s with `Range: bytes=0-1048575`, CONNECTIONS keep-alive connections for SECONDS
 *          per round (wrk when installed; else a Node loop, also capped at REQUESTS per round).
 *   rounds: ROUNDS rounds, each server once per round in turn, so a noisy neighbour hits all alike;
 *          the median round of each is printed.
 *   goal:  module req/s >= 0.8 x nginx req/s, against the faster of two nginx set-ups:
 *          `sendfile on` (the usual config) and `sendfile off` with 1 MiB output buffers (faster on loopback).
 * The module runs in its own process, as in production, so the load generator never shares its event loop.
 * nginx gets one worker (NGINX_WORKERS to change it): the module is one event loop, and this compares
 * the serving path, not the core count.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWebApp } from '../web/app.js';

const SECONDS = Number(process.env.SECONDS ?? 3);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 8);
const REQUESTS = Number(process.env.REQUESTS ?? 20_000);
const NGINX_WORKERS = process.env.NGINX_WORKERS ?? '1';
const SIZE = 1024 * 1024;
const RANGE = `bytes=0-${SIZE - 1}`;
const FILE = 'segment.m4s';

interface Result {
  requests: number;
  seconds: number;
  bytes: number;
}

/** One server under test: where to fetch the segment, and its rounds. */
interface Target {
  name: string;
  port: number;
  path: string;
  results: Result[];
}

/** A free loopback port (nginx needs one named in its config). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** One ranged GET; resolves to the status and the body length. */
function get(port: number, path: string, agent: Agent): Promise<{ status: number; length: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers: { range: RANGE } }, (res) => {
      let length = 0;
      res.on('data', (chunk: Buffer) => (length += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, length }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves once the target answers the segment with 206 and all its bytes (servers start asynchronously). */
async function waitUntilServing(target: Target): Promise<void> {
  const deadline = Date.now() + 10_000;
  const agent = new Agent({ keepAlive: false });
  for (;;) {
    try {
      const { status, length } = await get(target.port, target.path, agent);
      if (status !== 206 || length !== SIZE) throw new Error(`${target.name} answered ${status} with ${length} bytes, not 206 with ${SIZE}`);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** wrk with one thread (the machine may have two cores, shared with the server), parsed from its summary. */
function loadWithWrk(target: Target): Result {
  const out = spawnSync(
    'wrk',
    ['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '-H', `Range: ${RANGE}`, `http://127.0.0.1:${target.port}${target.path}`],
    { encoding: 'utf8', timeout: (SECONDS + 20) * 1000 },
  );
  const match = /(\d+) requests in ([\d.]+)(m?s), ([\d.]+)([KMG]?B) read/.exec(out.stdout);
  if (out.status !== 0 || !match) throw new Error(`wrk failed: ${out.stderr || out.stdout}`);
  if (/Non-2xx or 3xx responses/.test(out.stdout)) throw new Error(`wrk saw errors from ${target.name}:\n${out.stdout}`);
  const unit = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[match[5] as 'B' | 'KB' | 'MB' | 'GB'];
  return { requests: Number(match[1]), seconds: Number(match[2]) / (match[3] === 'ms' ? 1000 : 1), bytes: Number(match[4]) * unit };
}

/** The fallback meter: CONNECTIONS keep-alive loops, stopped by SECONDS or REQUESTS, whichever comes first. */
async function loadWithNode(target: Target): Promise<Result> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const stopAt = performance.now() + SECONDS * 1000;
  let requests = 0;
  let bytes = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < stopAt && requests < REQUESTS) {
        requests++;
        const { status, length } = await get(target.port, target.path, agent);
        if (status !== 206) throw new Error(`${target.name} answered ${status}`);
        bytes += length;
      }
    }),
  );
  agent.destroy();
  return { requests, seconds: (performance.now() - t0) / 1000, bytes };
}

/** nginx with two locations over the same folder: the usual sendfile set-up and a buffered one. */
async function startNginx(dir: string, port: number): Promise<ChildProcess> {
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off;
worker_processes ${NGINX_WORKERS};
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  types { video/iso.segment m4s; }
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location /media/ { alias ${dir}/media/; sendfile on; tcp_nopush on; }
    location /buffered/ { alias ${dir}/media/; sendfile off; output_buffers 2 1m; }
  }
}
`,
  );
  // -e: the start-up log goes to stderr, not to /var/log/nginx (which a non-root user cannot open).
  const nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], { stdio: ['ignore', 'inherit', 'inherit'] });
  nginx.on('error', (error) => console.error(`nginx: ${error.message}`));
  return nginx;
}

/** The module's web server in a child process (this file with `serve`); resolves to its port. */
function startModule(mediaRoot: string, cacheBytes: number | undefined): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(import.meta.filename, ['serve', mediaRoot, String(cacheBytes ?? '')], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('message', (port) => resolve({ child, port: port as number }));
    child.once('exit', (code) => reject(new Error(`module server exited with ${code}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

function median(results: Result[]): Result {
  return [...results].sort((a, b) => a.requests / a.seconds - b.requests / b.seconds)[Math.floor(results.length / 2)]!;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'segment-bench-'));
  // nginx's workers run as nobody when started by root: they must be able to read the folder.
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'media'), { mode: 0o755 });
  writeFileSync(join(dir, 'media', FILE), randomBytes(SIZE), { mode: 0o644 });
  const children: ChildProcess[] = [];
  try {
    const meter = spawnSync('wrk', ['--version']).error === undefined ? 'wrk' : 'node http loop';
    const cached = await startModule(join(dir, 'media'), undefined);
    const uncached = await startModule(join(dir, 'media'), 0);
    const nginxPort = await freePort();
    children.push(cached.child, uncached.child, await startNginx(dir, nginxPort));
    const version = spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '');
    const targets: Target[] = [
      { name: 'module (default memory cache)', port: cached.port, path: `/media/${FILE}`, results: [] },
      { name: 'module (mediaCacheBytes: 0)', port: uncached.port, path: `/media/${FILE}`, results: [] },
      { name: `${version} sendfile on`, port: nginxPort, path: `/media/${FILE}`, results: [] },
      { name: `${version} sendfile off, 2x1m buffers`, port: nginxPort, path: `/buffered/${FILE}`, results: [] },
    ];
    const load = (target: Target) => (meter === 'wrk' ? Promise.resolve(loadWithWrk(target)) : loadWithNode(target));
    for (const target of targets) {
      await waitUntilServing(target);
      await load(target); // warm-up: JIT, page cache, memory cache
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of targets) target.results.push(await load(target));
    }

    const perSecond = (r: Result) => r.requests / r.seconds;
    const [module, moduleUncached, ...nginx] = targets.map((t) => ({ name: t.name, result: median(t.results) }));
    const bestNginx = nginx.reduce((a, b) => (perSecond(b.result) > perSecond(a.result) ? b : a));
    console.log(
      `segment serving: 1 MiB .m4s, Range ${RANGE}, ${CONNECTIONS} keep-alive connections, median of ${ROUNDS} rounds of ${SECONDS} s, ` +
        `meter: ${meter}, nginx workers: ${NGINX_WORKERS}`,
    );
    for (const { name, result } of [module!, moduleUncached!, ...nginx]) {
      console.log(
        `${name.padEnd(40)} ${perSecond(result).toFixed(0).padStart(6)} req/s ${(result.bytes / result.seconds / 1e6).toFixed(0).padStart(6)} MB/s`,
      );
    }
    const ratio = perSecond(module!.result) / perSecond(bestNginx.result);
    console.log(`ratio module/best nginx: ${ratio.toFixed(2)} (goal >= 0.8: ${ratio >= 0.8 ? 'met' : 'MISSED'})`);
    console.log(`ratio module without cache/best nginx: ${(perSecond(moduleUncached!.result) / perSecond(bestNginx.result)).toFixed(2)}`);
  } finally {
    await Promise.all(children.map(stop));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'serve') {
  const cacheBytes = process.argv[4] ? Number(process.argv[4]) : undefined;
  const { app } = await startWebApp({ host: '127.0.0.1', port: 0, mediaRoot: process.argv[3]!, mediaCacheBytes: cacheBytes, logger: false });
  process.send!((app.server.address() as { port: number }).port);
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
} else {
  await main();
}
