/**
 * RTSP auth and RTSPS in a child process that loads node-gtk (the test process never does):
 *
 * - `server` mode: a plain RTSP server and an RTSPS server sharing one RTSPMountPoints (mounts `/public` and
 *   `/private`, test-pattern H.264), auth applied with media/rtspAuth.ts; JSON lines on stdin change it live
 *   (`{"type":"auth","spec":...,"methods":...}`), JSON lines on stdout report (`listening`, `applied`, `error`).
 * - `client` mode: GStreamer `rtspsrc` clients run one after the other (so node-gtk loads once for all of them),
 *   each until its first RTP buffer or an error, optionally validating RTSPS against a CA file through
 *   `tls-database` (which gst-launch cannot set); one JSON result per line.
 *
 * `node dist/test/support/rtspAuthHarness.js server|client '<json>'`; tests use {@link RtspAuthServer} and
 * {@link runRtspsrc}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { RtspAuthSpec } from '../../ipc/protocol.js';

/** Cheap H.264 test pattern, one shared media per mount. */
const LAUNCH =
  '( videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=15/1 ! ' +
  'x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! rtph264pay name=pay0 pt=96 config-interval=-1 )';
export const MOUNTS = ['/public', '/private'] as const;

type Methods = 'basic' | 'digest' | 'both';

/** Server start options. */
export interface ServerOptions {
  readonly spec: RtspAuthSpec | null;
  readonly methods?: Methods;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

type ServerEvent =
  | { type: 'listening'; port: number; tlsPort: number }
  | { type: 'applied'; seq: number }
  | { type: 'error'; error: string };

/** One rtspsrc attempt. */
export interface RtspsrcCheck {
  readonly url: string;
  readonly user?: string;
  readonly password?: string;
  /** PEM CA file to validate an rtsps:// server against (tls-database). */
  readonly caFile?: string;
}

/** How an rtspsrc attempt ended: `played` once an RTP buffer arrived, else the GStreamer error. */
export interface RtspsrcResult {
  readonly url: string;
  readonly played: boolean;
  readonly error: string | null;
}

/** The test side of `server` mode. */
export class RtspAuthServer {
  readonly #child: ChildProcess;
  readonly #events: ServerEvent[] = [];
  readonly #waiters = new Set<() => void>();
  /** stderr lines, for failure messages. */
  readonly stderr: string[] = [];
  port = 0;
  tlsPort = 0;
  #seq = 0;

  private constructor(child: ChildProcess) {
    this.#child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.#events.push(JSON.parse(line) as ServerEvent);
      } catch {
        this.stderr.push(line);
      }
      for (const w of this.#waiters) w();
    });
    createInterface({ input: child.stderr! }).on('line', (line) => this.stderr.push(line));
    child.on('exit', () => {
      for (const w of this.#waiters) w();
    });
  }

  static async start(options: ServerOptions): Promise<RtspAuthServer> {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'server', JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const server = new RtspAuthServer(child);
    const listening = await server.#wait((e): e is Extract<ServerEvent, { type: 'listening' }> => e.type === 'listening', 20_000);
    server.port = listening.port;
    server.tlsPort = listening.tlsPort;
    return server;
  }

  /** Applies new auth settings live; resolves once the server has them. */
  async setAuth(spec: RtspAuthSpec | null, methods?: Methods): Promise<void> {
    const seq = ++this.#seq;
    this.#child.stdin!.write(`${JSON.stringify({ type: 'auth', seq, spec, methods })}\n`);
    await this.#wait((e): e is Extract<ServerEvent, { type: 'applied' }> => e.type === 'applied' && e.seq === seq, 10_000);
  }

  /** Errors the server reported (auth objects it could not build, say). */
  get errors(): string[] {
    return this.#events.flatMap((e) => (e.type === 'error' ? [e.error] : []));
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.kill('SIGTERM');
    await exited;
  }

  #wait<T extends ServerEvent>(match: (e: ServerEvent) => e is T, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`RTSP auth harness: no answer in ${timeoutMs} ms\n${this.stderr.slice(-20).join('\n')}`)), timeoutMs);
      const check = () => {
        const found = this.#events.find(match);
        if (found) done(null, found);
        else if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
          done(new Error(`RTSP auth harness exited (${this.#child.exitCode ?? this.#child.signalCode})\n${this.stderr.slice(-20).join('\n')}`));
        }
      };
      const done = (err: Error | null, value?: T) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (err) reject(err);
        else resolve(value!);
      };
      this.#waiters.add(check);
      check();
    });
  }
}

/** Runs rtspsrc clients one after the other in one node-gtk child; each gives up after `timeoutMs`. */
export function runRtspsrc(checks: readonly RtspsrcCheck[], timeoutMs = 8000): Promise<RtspsrcResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'client', JSON.stringify({ checks, timeoutMs })], { stdio: ['ignore', 'pipe', 'pipe'] });
    const results: RtspsrcResult[] = [];
    const stderr: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        results.push(JSON.parse(line) as RtspsrcResult);
      } catch {
        stderr.push(line);
      }
    });
    createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
    child.on('exit', (code) => {
      if (results.length === checks.length) resolve(results);
      else reject(new Error(`rtspsrc client exited ${code} after ${results.length}/${checks.length} checks\n${stderr.slice(-20).join('\n')}`));
    });
  });
}

async function serve(options: ServerOptions): Promise<void> {
  const { gi, GLib, Gst } = await import('../../media/gst.js');
  const { applyRtspAuth } = await import('../../media/rtspAuth.js');
  const GstRtspServer = gi.require('GstRtspServer', '1.0');
  Gst.init(null);
  const say = (event: ServerEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);

  const mounts = GstRtspServer.RTSPMountPoints.new();
  const factories = new Map<string, InstanceType<typeof GstRtspServer.RTSPMediaFactory>>();
  for (const path of MOUNTS) {
    const factory = GstRtspServer.RTSPMediaFactory.new();
    factory.setLaunch(LAUNCH);
    factory.setShared(true);
    mounts.addFactory(path, factory);
    factories.set(path, factory);
  }
  const listen = () => {
    const server = GstRtspServer.RTSPServer.new();
    server.address = '127.0.0.1';
    server.service = '0';
    server.setMountPoints(mounts); // both servers serve the same factories
    if (!server.attach(null)) throw new Error('RTSP server cannot listen');
    return server;
  };
  const plain = listen();
  const rtsps = listen();
  const targets = { plain, tls: { server: rtsps, certificate: { certificatePem: options.certificatePem, privateKeyPem: options.privateKeyPem } }, factories };
  applyRtspAuth(targets, options.spec, options.methods);

  createInterface({ input: process.stdin }).on('line', (line) => {
    try {
      const command = JSON.parse(line) as { type: 'auth'; seq: number; spec: RtspAuthSpec | null; methods?: Methods };
      applyRtspAuth(targets, command.spec, command.methods);
      say({ type: 'applied', seq: command.seq });
    } catch (err) {
      say({ type: 'error', error: String(err) });
    }
  });
  process.stdin.on('end', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  say({ type: 'listening', port: plain.getBoundPort(), tlsPort: rtsps.getBoundPort() });
  const loop = GLib.MainLoop.new(null, false);
  setImmediate(() => loop.run());
}

async function clients(input: { checks: RtspsrcCheck[]; timeoutMs: number }): Promise<void> {
  const { gi, GLib, Gst } = await import('../../media/gst.js');
  const Gio = gi.require('Gio', '2.0');
  gi.require('GstApp', '1.0'); // gives appsink its tryPullSample
  Gst.init(null);
  const loop = GLib.MainLoop.new(null, false);
  setImmediate(() => loop.run());
  const one = (check: RtspsrcCheck): Promise<RtspsrcResult> =>
    new Promise((resolve) => {
      const pipeline = Gst.parseLaunch(`rtspsrc name=src protocols=tcp latency=0 ! appsink name=sink emit-signals=false sync=false max-buffers=1 drop=true`) as InstanceType<typeof Gst.Bin>;
      const src = pipeline.getByName('src')! as unknown as Record<string, unknown>;
      src.location = check.url;
      if (check.user !== undefined) src.userId = check.user;
      if (check.password !== undefined) src.userPw = check.password;
      // The generated types read GIO's `new()` as a constructor; node-gtk exposes it as a static function.
      if (check.caFile) src.tlsDatabase = (Gio.TlsFileDatabase as unknown as { new: (anchors: string) => unknown }).new(check.caFile);
      const sink = pipeline.getByName('sink') as unknown as { tryPullSample(timeout: bigint): unknown };
      const bus = pipeline.getBus()!;
      let finished = false;
      const finish = (played: boolean, error: string | null) => {
        if (finished) return;
        finished = true;
        clearInterval(poll);
        clearTimeout(timer);
        pipeline.setState(Gst.State.NULL);
        resolve({ url: check.url, played, error });
      };
      // Polling, not signals: a GStreamer thread waiting on JS is how node-gtk deadlocks.
      const poll = setInterval(() => {
        try {
          if (sink.tryPullSample(0n)) return finish(true, null);
          for (;;) {
            const msg = bus.pop();
            if (!msg) break;
            if (msg.type === Gst.MessageType.ERROR) {
              const [error, debug] = msg.parseError() as unknown as [{ message: string }, string | null];
              return finish(false, `${error.message} | ${debug ?? ''}`);
            }
          }
        } catch (err) {
          finish(false, String(err));
        }
      }, 20);
      const timer = setTimeout(() => finish(false, 'timed out'), input.timeoutMs);
      pipeline.setState(Gst.State.PLAYING);
    });
  for (const check of input.checks) {
    const result = await one(check);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  loop.quit();
  process.exit(0);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [mode, json] = [process.argv[2], process.argv[3] ?? '{}'];
  const run = mode === 'server' ? serve(JSON.parse(json) as ServerOptions) : clients(JSON.parse(json) as { checks: RtspsrcCheck[]; timeoutMs: number });
  run.catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
