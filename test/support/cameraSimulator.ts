/**
 * A stand-in for an Axis camera: an RTSP server on 127.0.0.1 that serves H.264 video and AAC audio at
 * `/axis-media/media.amp` behind RTSP Basic authentication, so twins written for real cameras run verbatim.
 *
 * This one file is both:
 * - an executable script (`node dist/test/support/cameraSimulator.js --port 0 --user u --password p`) that
 *   runs the GStreamer RTSP server in its own process and prints one JSON ready line, and
 * - the {@link CameraSimulator} class that tests import to spawn and control that process.
 *
 * node-gtk is loaded only inside {@link runServer}, which runs only when this file is the main script, so
 * importing the class never loads node-gtk (tests and the control plane must stay free of it).
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The path an Axis camera serves its main stream on; twins hard-code it. */
export const CAMERA_MOUNT = '/axis-media/media.amp';

/** The only address the simulator listens on: tests never need it reachable from elsewhere. */
const HOST = '127.0.0.1';

/** Axis factory-default credentials, used when a test does not care which. */
const DEFAULT_USER = 'root';
const DEFAULT_PASSWORD = 'pass';

/** Options for {@link CameraSimulator.start} (and the script's command-line flags of the same names). */
export interface CameraSimulatorOptions {
  /** TCP port for RTSP; 0 (the default) picks a free one. */
  port?: number;
  /** User name clients must send (default `root`). */
  user?: string;
  /** Password clients must send (default `pass`). */
  password?: string;
  /** Video width in pixels (default 640). */
  width?: number;
  /** Video height in pixels (default 360). */
  height?: number;
  /** Video frame rate (default 30); also the key-frame interval, so a new client decodes within a second. */
  fps?: number;
  /** How long {@link CameraSimulator.start} waits for the ready line, in ms (default 20000). */
  startTimeoutMs?: number;
}

/** The one JSON line the script prints on stdout once its RTSP port is listening. */
export interface CameraSimulatorReady {
  ready: true;
  port: number;
  url: string;
}

/** Thrown by {@link CameraSimulator.start} when the process exits or times out before it is ready. */
export class CameraSimulatorStartError extends Error {
  /** What the process wrote to stderr before it failed (the GStreamer error is usually there). */
  readonly stderr: string;

  constructor(message: string, stderr: string) {
    super(stderr.trim() ? `${message}\n${stderr.trim()}` : message);
    this.name = 'CameraSimulatorStartError';
    this.stderr = stderr;
  }
}

/** Keep only the tail of stderr: a crashing GStreamer process can be chatty and only the end matters. */
const STDERR_LIMIT = 64 * 1024;

/**
 * A camera simulator process under a test's control.
 *
 * @example
 * ```ts
 * const camera = await CameraSimulator.start({ user: 'root', password: 'secret' });
 * try {
 *   const url = camera.url(); // rtsp://root:secret@127.0.0.1:<port>/axis-media/media.amp
 *   await camera.kill('SIGKILL'); // the camera "disappears"
 *   await camera.restart();       // and comes back on the same port
 * } finally {
 *   await camera.stop();
 * }
 * ```
 */
export class CameraSimulator {
  /** Options the process was started with; `port` is pinned to the bound port after the first start. */
  readonly #options: Required<Omit<CameraSimulatorOptions, 'startTimeoutMs'>> & { startTimeoutMs: number };
  /** The running child process, or null between kill() and restart(). */
  #child: ChildProcess | null = null;
  /** Resolves when the current child has exited (already resolved when there is none). */
  #exited: Promise<void> = Promise.resolve();
  /** Stderr tail of the current child, for error messages. */
  #stderr = '';
  /** Set by stop(): the simulator must not be restarted afterwards. */
  #stopped = false;

  private constructor(options: CameraSimulatorOptions) {
    this.#options = {
      port: options.port ?? 0,
      user: options.user ?? DEFAULT_USER,
      password: options.password ?? DEFAULT_PASSWORD,
      width: options.width ?? 640,
      height: options.height ?? 360,
      fps: options.fps ?? 30,
      startTimeoutMs: options.startTimeoutMs ?? 20_000,
    };
  }

  /**
   * Spawns the simulator process and resolves once it is listening.
   *
   * @throws {CameraSimulatorStartError} if the process exits, or prints no ready line within
   *   `startTimeoutMs`; the message includes its stderr.
   */
  static async start(options: CameraSimulatorOptions = {}): Promise<CameraSimulator> {
    const simulator = new CameraSimulator(options);
    await simulator.#spawn();
    return simulator;
  }

  /** The RTSP port the simulator listens on (stays the same across {@link restart}). */
  get port(): number {
    return this.#options.port;
  }

  /** The user name the simulator accepts. */
  get user(): string {
    return this.#options.user;
  }

  /** The password the simulator accepts. */
  get password(): string {
    return this.#options.password;
  }

  /** The process id of the running simulator, or undefined when it is not running. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /**
   * The stream URL with credentials in it, as a twin would write it.
   * Pass other credentials to test refusal; pass empty strings to get a URL without userinfo.
   */
  url(user: string = this.#options.user, password: string = this.#options.password): string {
    const userinfo = user || password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}@` : '';
    return `rtsp://${userinfo}${HOST}:${this.#options.port}${CAMERA_MOUNT}`;
  }

  /**
   * Sends a signal to the simulator process and resolves when it has exited.
   * `SIGKILL` simulates a camera that vanishes; `SIGTERM` one that shuts down.
   */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
    await this.#exited;
  }

  /** Starts the simulator again on the same port, killing the current process first if it still runs. */
  async restart(): Promise<void> {
    if (this.#stopped) throw new Error('CameraSimulator was stopped; start a new one instead');
    await this.kill('SIGKILL');
    await this.#spawn();
  }

  /** Stops the simulator for good: SIGTERM, then SIGKILL after 5 s. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return this.#exited;
    this.#stopped = true;
    const escalate = setTimeout(() => this.#child?.kill('SIGKILL'), 5_000);
    try {
      await this.kill('SIGTERM');
    } finally {
      clearTimeout(escalate);
    }
  }

  async #spawn(): Promise<void> {
    const o = this.#options;
    const args = [
      fileURLToPath(import.meta.url),
      '--port', String(o.port),
      '--user', o.user,
      '--password', o.password,
      '--width', String(o.width),
      '--height', String(o.height),
      '--fps', String(o.fps),
      // A crashed test runner closes our stdin; the simulator then exits instead of lingering forever.
      '--exit-on-stdin-close',
    ];
    // The test runner marks its children with NODE_TEST_CONTEXT; the script would take itself for a test file.
    const env = { ...process.env };
    delete env['NODE_TEST_CONTEXT'];
    const child = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    this.#stderr = '';
    // A failed spawn emits 'error' and possibly no 'exit'; either means there is no process to wait for.
    this.#exited = new Promise((resolveExit) => {
      child.once('exit', () => resolveExit());
      child.once('error', () => resolveExit());
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_LIMIT);
    });
    // The parent must not die of EPIPE if the child is gone when we close stdin.
    child.stdin!.on('error', () => {});

    const lines = createInterface({ input: child.stdout! });
    try {
      const ready = await new Promise<CameraSimulatorReady>((resolveReady, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new CameraSimulatorStartError(`camera simulator not ready within ${o.startTimeoutMs} ms`, this.#stderr));
        }, o.startTimeoutMs);
        lines.on('line', (line) => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(line);
          } catch {
            return; // Not our ready line (e.g. a stray GStreamer print).
          }
          if (isReady(parsed)) {
            clearTimeout(timer);
            resolveReady(parsed);
          }
        });
        child.once('error', (err) => {
          clearTimeout(timer);
          reject(new CameraSimulatorStartError(`camera simulator failed to spawn: ${err.message}`, this.#stderr));
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          // Give stderr's last chunk a tick to arrive so the error says why.
          setImmediate(() =>
            reject(new CameraSimulatorStartError(`camera simulator exited before ready (code ${code}, signal ${signal})`, this.#stderr)),
          );
        });
      });
      this.#options.port = ready.port;
    } catch (err) {
      await this.#exited;
      this.#child = null;
      throw err;
    } finally {
      // Keep draining stdout so a chatty child never blocks on a full pipe.
      lines.removeAllListeners('line');
      child.stdout!.resume();
    }
  }
}

function isReady(value: unknown): value is CameraSimulatorReady {
  return typeof value === 'object' && value !== null && (value as { ready?: unknown }).ready === true &&
    typeof (value as { port?: unknown }).port === 'number';
}

// ---------------------------------------------------------------------------------------------------------
// The simulator process.

/** Parsed command line of the script. */
interface ServerArgs {
  port: number;
  user: string;
  password: string;
  width: number;
  height: number;
  fps: number;
  exitOnStdinClose: boolean;
}

function parseArgs(argv: readonly string[]): ServerArgs {
  const args: ServerArgs = {
    port: 0, user: DEFAULT_USER, password: DEFAULT_PASSWORD, width: 640, height: 360, fps: 30, exitOnStdinClose: false,
  };
  const integer = (flag: string, text: string | undefined, min: number, max: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${flag} must be an integer in [${min}, ${max}], got ${text}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    switch (flag) {
      case '--port': args.port = integer(flag, value, 0, 65535); i++; break;
      case '--width': args.width = integer(flag, value, 16, 7680); i++; break;
      case '--height': args.height = integer(flag, value, 16, 4320); i++; break;
      case '--fps': args.fps = integer(flag, value, 1, 240); i++; break;
      case '--user': args.user = requireValue(flag, value); i++; break;
      case '--password': args.password = requireValue(flag, value); i++; break;
      case '--exit-on-stdin-close': args.exitOnStdinClose = true; break;
      default: throw new Error(`unknown argument ${flag}`);
    }
  }
  // Encoders and decoders for 4:2:0 video want even dimensions.
  if (args.width % 2 || args.height % 2) throw new Error('--width and --height must be even');
  return args;
}

function requireValue(flag: string, value: string | undefined): string {
  if (value === undefined) throw new Error(`${flag} needs a value`);
  return value;
}

/** Asks the OS for a free port (bind to 0, read it, release it); used if GStreamer cannot report its own. */
async function findFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}

/**
 * The gst-launch description of the camera's media. Payloader names pay0/pay1 are what GstRtspServer looks for.
 * Choices that make every client happy: constrained-baseline H.264 (no B-frames, any decoder), a key frame
 * every second, SPS/PPS repeated in-band (config-interval=-1) for clients that join late on shared media,
 * and AAC as RTP mpeg4-generic (rtpmp4gpay) because that is what Axis cameras send and what twins depayload
 * with `rtpmp4gdepay ! aacparse`.
 */
function launchDescription(a: ServerArgs, hasTimeOverlay: boolean, aacEncoder: string): string {
  const overlay = hasTimeOverlay ? 'timeoverlay font-desc="Sans 24" ! ' : '';
  return [
    '(',
    `videotestsrc is-live=true pattern=ball ! video/x-raw,width=${a.width},height=${a.height},framerate=${a.fps}/1 !`,
    `${overlay}videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=${a.fps} bitrate=1000 !`,
    'video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96 config-interval=-1',
    'audiotestsrc is-live=true wave=sine freq=440 volume=0.2 samplesperbuffer=1024 ! audioconvert ! audioresample !',
    `audio/x-raw,rate=48000,channels=1 ! ${aacEncoder} ! rtpmp4gpay name=pay1 pt=97`,
    ')',
  ].join(' ');
}

/**
 * Runs the RTSP server until SIGTERM/SIGINT. Only ever called when this file is the main script, because it
 * loads node-gtk.
 */
async function runServer(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  const gi = createRequire(import.meta.url)('node-gtk') as typeof import('node-gtk');
  const Gst = gi.require('Gst', '1.0');
  const GstRtspServer = gi.require('GstRtspServer', '1.0');
  const GLib = gi.require('GLib', '2.0');
  Gst.init(null);

  // timeoverlay lives in the pango plugin, which a slim install may lack; a moving ball still proves liveness.
  const hasTimeOverlay = Gst.ElementFactory.find('timeoverlay') !== null;
  const aacEncoder = ['avenc_aac', 'voaacenc'].find((name) => Gst.ElementFactory.find(name) !== null);
  if (!aacEncoder) throw new Error('no AAC encoder found (need avenc_aac from gstreamer1.0-libav, or voaacenc)');
  for (const name of ['videotestsrc', 'x264enc', 'rtph264pay', 'audiotestsrc', 'rtpmp4gpay']) {
    if (Gst.ElementFactory.find(name) === null) throw new Error(`GStreamer element ${name} is not installed`);
  }

  const server = new GstRtspServer.RTSPServer();
  server.setAddress(HOST);

  const factory = new GstRtspServer.RTSPMediaFactory();
  factory.setLaunch(launchDescription(args, hasTimeOverlay, aacEncoder));
  // One encoder for all clients, like a camera; also makes a late joiner's first frame arrive sooner.
  factory.setShared(true);

  // Basic auth: only a request with these credentials gets a token whose role may open the factory.
  // No default token is set, so anonymous requests and wrong passwords get 401.
  const role = 'camera-user';
  const auth = GstRtspServer.RTSPAuth.new();
  const token = GstRtspServer.RTSPToken.new();
  token.setString(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, role);
  auth.addBasic(GstRtspServer.RTSPAuth.makeBasic(args.user, args.password), token);
  server.setAuth(auth);
  const permissions = GstRtspServer.RTSPPermissions.new();
  permissions.addPermissionForRole(role, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, true);
  permissions.addPermissionForRole(role, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true);
  factory.setPermissions(permissions);

  server.getMountPoints()!.addFactory(CAMERA_MOUNT, factory);

  // Port 0: GstRtspServer binds to "0" and reports the kernel's choice through getBoundPort(); if that ever
  // reads back 0 we fall back to finding a free port ourselves and binding to it.
  server.setService(String(args.port));
  let sourceId = server.attach(null);
  let port = server.getBoundPort();
  if (sourceId === 0 || port <= 0) {
    if (args.port !== 0) throw new Error(`could not listen on ${HOST}:${args.port}`);
    if (sourceId !== 0) GLib.sourceRemove(sourceId);
    const freePort = await findFreePort();
    server.setService(String(freePort));
    sourceId = server.attach(null);
    port = server.getBoundPort();
    if (sourceId === 0 || port <= 0) throw new Error(`could not listen on ${HOST}:${freePort}`);
  }

  const loop = GLib.MainLoop.new(null, false);
  let quitting = false;
  const quit = (why: string): void => {
    try {
      if (quitting) return;
      quitting = true;
      process.stderr.write(`camera simulator: ${why}, exiting\n`);
      // Before run() has started, quit() would be undone by run(); the callback below checks `quitting`.
      if (!loop.isRunning()) return;
      loop.quit();
      // run() returning is the normal way out; this covers a loop that does not notice quit() promptly.
      setTimeout(() => process.exit(0), 1_000).unref();
    } catch {
      process.exit(0);
    }
  };
  process.once('SIGTERM', () => quit('SIGTERM'));
  process.once('SIGINT', () => quit('SIGINT'));
  if (args.exitOnStdinClose) {
    process.stdin.on('data', () => {});
    process.stdin.once('end', () => quit('stdin closed'));
    process.stdin.once('error', () => quit('stdin error'));
  }

  // node-gtk's run() blocks only when called outside a microtask: from an async function (or ESM top level)
  // it defers itself and returns at once. A timer callback is a clean macrotask, so run() blocks there,
  // servicing both GLib and Node events until quit().
  setTimeout(() => {
    if (quitting) process.exit(0);
    // GLib polls libuv only while libuv has a ref'd active handle. Node's signal handles are unref'd and the
    // timer running this callback is already spent, so without this interval SIGTERM/SIGINT are never seen.
    const keepAlive = setInterval(() => {}, 60_000);
    // Announced only now: a signal sent after this line is handled inside run(), never in between.
    const ready: CameraSimulatorReady = { ready: true, port, url: `rtsp://${HOST}:${port}${CAMERA_MOUNT}` };
    process.stdout.write(`${JSON.stringify(ready)}\n`);
    loop.run();
    clearInterval(keepAlive);
    process.exit(0);
  }, 0);
}

/** True when this file is the script node was asked to run (not when it is imported). */
function isMainScript(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(resolve(script)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

// `node --test dist/test/` also runs every .js under test/ as a test file; that run must not start a server.
if (isMainScript() && process.env['NODE_TEST_CONTEXT'] === undefined) {
  runServer(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`camera simulator: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
