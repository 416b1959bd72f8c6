import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { gatheredRecvonlyOffer, launchChromium } from './browser.js';
import { ModuleProcess } from './ModuleProcess.js';
import { RtspTcpClient } from './RtspTcpClient.js';

/** The main pipeline of every fuzz run: a live test pattern into the `video` appsink both RTSP and WebRTC share. */
export const FUZZ_SOURCE =
  'videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 ! appsink name=video max-buffers=30 drop=true sync=false';
export const FUZZ_RTSP = '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )';
/** The TURN server template: the password comes from the environment, so every surface can try to leak it. */
export const FUZZ_TURN = 'turn://fuzz:$TURN_PASSWORD@127.0.0.1:3478';

/** A file of the media folder and its bytes: what a 200 or 206 from /media may contain. */
export interface MediaFile {
  readonly name: string;
  readonly bytes: Buffer;
}

/**
 * The module under fuzz, as a user runs it, with everything a stay-up check looks at: one chromium WebRTC viewer
 * and one RTSP viewer connected before the fuzzing starts, the engine's pid, a media folder with known files and a
 * secret file beside it, and an expanded secret (`$TURN_PASSWORD`) in the twin that must never come out.
 */
export class FuzzTarget {
  readonly module: ModuleProcess;
  /** Folder around the media folder; `secret.txt` lies here, outside `/media`. */
  readonly outside: string;
  readonly mediaRoot: string;
  readonly mediaFiles: readonly MediaFile[];
  /** Content of `outside/secret.txt`: no HTTP answer may contain it. */
  readonly secretFile: string;
  /** The value of `$TURN_PASSWORD`. */
  readonly secret: string;
  /** The desired document the module started with (the last good config). */
  readonly desired: Record<string, unknown>;
  httpPort = 0;
  rtspPort = 0;
  enginePid = 0;
  /** The peer id of the watching chromium viewer (WHEP DELETE must not reach it). */
  viewerPeer = '';
  /** Log index when the fuzzing started: no main pipeline change and no engine death may follow it. */
  fuzzFrom = 0;
  #browser: Browser | null = null;
  #page: Page | null = null;
  #viewerConnects = 0;
  #rtsp: RtspTcpClient | null = null;
  /** The secret in every form a leak could take. */
  readonly #secretForms: string[];

  private constructor() {
    this.outside = mkdtempSync(join(tmpdir(), 'gst-iotedge-fuzz-'));
    this.mediaRoot = join(this.outside, 'media');
    mkdirSync(join(this.mediaRoot, 'sub'), { recursive: true });
    this.secretFile = `OUTSIDE-SECRET-${randomBytes(8).toString('hex')}`;
    writeFileSync(join(this.outside, 'secret.txt'), this.secretFile);
    this.mediaFiles = [
      { name: 'segment00001.m4s', bytes: randomBytes(5000) },
      { name: 'playlist.m3u8', bytes: Buffer.from('#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nsegment00001.m4s\n') },
      { name: 'manifest.mpd', bytes: Buffer.from('<?xml version="1.0"?><MPD/>') },
      { name: 'sub/inside.ts', bytes: randomBytes(1880) },
      { name: 'empty.ts', bytes: Buffer.alloc(0) },
    ];
    for (const file of this.mediaFiles) writeFileSync(join(this.mediaRoot, file.name), file.bytes);
    // '=' is percent-encoded by encodeURIComponent, so the encoded form differs from the plain one.
    this.secret = `Tp=${randomBytes(9).toString('hex')}`;
    this.#secretForms = [
      this.secret,
      encodeURIComponent(this.secret),
      Buffer.from(this.secret).toString('base64'),
      Buffer.from(`fuzz:${this.secret}`).toString('base64'),
    ];
    this.desired = {
      pipeline: FUZZ_SOURCE,
      rtsp_pipeline: FUZZ_RTSP,
      http: { port: 0, address: '127.0.0.1', media_root: this.mediaRoot },
      metrics: { port: null },
      rtsp: { port: 0, address: '127.0.0.1' },
      webrtc: { max_peers: 100, negotiation_timeout_ms: 5_000, turn_servers: [FUZZ_TURN] },
    };
    this.module = new ModuleProcess({ desired: this.desired, env: { TURN_PASSWORD: this.secret, LOG_LEVEL: 'info' } });
  }

  /** Starts the module and both viewers; resolves once each viewer gets frames. */
  static async start(): Promise<FuzzTarget> {
    const target = new FuzzTarget();
    try {
      await target.#start();
    } catch (error) {
      await target.close();
      throw error;
    }
    return target;
  }

  async #start(): Promise<void> {
    const { module } = this;
    const [http, rtsp, engine] = await Promise.all([
      module.waitForLog((l) => l.event === 'http-listening', 30_000),
      module.waitForLog((l) => l.event === 'rtsp-listening', 30_000),
      module.waitForLog((l) => l.event === 'engine-ready', 30_000),
      module.waitForPipeline('main', 'playing', 30_000),
    ]);
    this.httpPort = http.port as number;
    this.rtspPort = rtsp.port as number;
    this.enginePid = engine.pid as number;
    this.#browser = await launchChromium();
    this.#page = await this.#browser.newPage();
    await this.#page.goto(`${this.httpBase}/wwwroot/webrtc.html`);
    await this.#page.waitForFunction('window.player.framesDecoded >= 30', null, { timeout: 30_000 });
    this.#viewerConnects = (await this.#page.evaluate('window.player.connects')) as number;
    this.viewerPeer = String(module.logs.find((l) => l.event === 'webrtc-open' && l.whep === false)?.peer ?? '');
    this.#rtsp = new RtspTcpClient(this.rtspUrl);
    await this.#rtsp.start();
    await waitUntil(() => this.#rtsp!.frames.length >= 10, 15_000, 'the RTSP viewer gets frames');
    this.fuzzFrom = module.logs.length;
  }

  get httpBase(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.httpPort}/ws`;
  }

  get rtspUrl(): string {
    return `rtsp://127.0.0.1:${this.rtspPort}/player`;
  }

  /** A valid SDP offer from the watching chromium (a recvonly video transceiver), to mutate. */
  async browserOffer(): Promise<string> {
    return (await this.#page!.evaluate(`(async () => {
      ${gatheredRecvonlyOffer(3_000)}
      const sdp = pc.localDescription.sdp;
      pc.close();
      return sdp;
    })()`)) as string;
  }

  /** The forms of the secret found in `text` (plain, percent-encoded, base64 alone or as `user:secret`). */
  leaks(text: string | Buffer): string[] {
    const haystack = typeof text === 'string' ? text : text.toString('latin1');
    return this.#secretForms.filter((form) => haystack.includes(form));
  }

  /**
   * Everything that says the module and its viewers came through: the process alive, one engine all along, the
   * main pipeline never changed state since the fuzzing started, nothing slipped through to the crash policy,
   * /api/status answers, the RTSP viewer from before still gets frames and a new one does too, the WebRTC viewer
   * from before still decodes on the same connection, and the secret is in no line of output. Returns the problems
   * (empty: all well) so that one report lists them all. Log lines count from `from` (the start of what is
   * checked: one surface's inputs, or the whole run).
   */
  async stayUpProblems(from = this.fuzzFrom): Promise<string[]> {
    const problems: string[] = [];
    const { module } = this;
    if (module.child.exitCode !== null || module.child.signalCode !== null) {
      return [`the module exited (code ${module.child.exitCode}, signal ${module.child.signalCode}); last output:\n${module.output.slice(-20).join('\n')}`];
    }
    // The same failure a hundred times is one problem, with its count.
    const seen = new Map<string, number>();
    const note = (problem: string) => seen.set(problem, (seen.get(problem) ?? 0) + 1);
    for (const line of module.logs.slice(from)) {
      const shown = `${String(line.msg).slice(0, 700)}`;
      if (line.event === 'pipeline-state' && line.pipeline === 'main') note(`the main pipeline changed state: ${line.state as string} ${shown}`);
      if (line.event === 'engine-died' || line.event === 'engine-failed-to-start' || line.event === 'engine-ready') note(`the engine restarted: ${line.event} ${shown}`);
      if (line.event === 'uncaught') note(`an error reached the crash policy: ${shown}`);
    }
    for (const [problem, count] of seen) problems.push(count > 1 ? `${count} times: ${problem}` : problem);
    try {
      const response = await fetch(`${this.httpBase}/api/status`, { signal: AbortSignal.timeout(10_000) });
      const status = (await response.json()) as { pipelines: Record<string, { state: string }>; engine: { state: string; pid: number } };
      if (response.status !== 200) problems.push(`/api/status answered ${response.status}`);
      if (status.pipelines.main?.state !== 'playing') problems.push(`/api/status: main is ${status.pipelines.main?.state}`);
      if (status.engine.state !== 'running' || status.engine.pid !== this.enginePid) {
        problems.push(`/api/status: engine ${status.engine.state} pid ${status.engine.pid} (was ${this.enginePid})`);
      }
    } catch (error) {
      problems.push(`/api/status did not answer: ${(error as Error).message}`);
    }
    const rtsp = this.#rtsp!;
    const before = rtsp.frames.length;
    if (rtsp.disconnected) problems.push('the RTSP viewer connected before the fuzzing was disconnected');
    else if (!(await waitUntil(() => rtsp.frames.length >= before + 10, 15_000))) problems.push(`the RTSP viewer from before got ${rtsp.frames.length - before} frames in 15 s`);
    const fresh = new RtspTcpClient(this.rtspUrl);
    try {
      await fresh.start(15_000);
      if (!(await waitUntil(() => fresh.frames.length >= 10, 15_000))) problems.push(`a new RTSP viewer got ${fresh.frames.length} frames in 15 s`);
    } catch (error) {
      problems.push(`a new RTSP viewer could not play: ${(error as Error).message}`);
    } finally {
      fresh.close();
    }
    const page = this.#page!;
    try {
      const decoded = (await page.evaluate('window.player.framesDecoded')) as number;
      await page.waitForFunction(`window.player.framesDecoded >= ${decoded + 15}`, null, { timeout: 15_000 });
      const connects = (await page.evaluate('window.player.connects')) as number;
      if (connects !== this.#viewerConnects) problems.push(`the WebRTC viewer reconnected (${this.#viewerConnects} -> ${connects} connections)`);
    } catch (error) {
      problems.push(`the WebRTC viewer from before stopped decoding (${String(await page.evaluate('window.player.state').catch(() => '?'))}): ${(error as Error).message.split('\n')[0]}`);
    }
    const leaked = module.output.filter((line) => this.leaks(line).length > 0);
    if (leaked.length > 0) problems.push(`the secret is in ${leaked.length} line(s) of output, e.g. ${leaked[0]!.slice(0, 300)}`);
    await this.#rearm();
    return problems;
  }

  /**
   * After a check that found the module restarted or a viewer gone: the engine pid, the RTSP port (port 0 binds a
   * new one) and the viewers as they are now, so that the next surface's check reports only what it caused.
   */
  async #rearm(): Promise<void> {
    const logs = [...this.module.logs].reverse();
    const ready = logs.find((l) => l.event === 'engine-ready');
    const listening = logs.find((l) => l.event === 'rtsp-listening');
    if (ready) this.enginePid = ready.pid as number;
    if (listening) this.rtspPort = listening.port as number;
    this.#viewerConnects = (await this.#page!.evaluate('window.player.connects').catch(() => this.#viewerConnects)) as number;
    if (!this.#rtsp!.disconnected) return;
    this.#rtsp!.close();
    this.#rtsp = new RtspTcpClient(this.rtspUrl);
    await this.#rtsp.start(15_000).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#rtsp?.close();
    await this.#browser?.close().catch(() => undefined);
    await this.module.stop();
    rmSync(this.module.dir, { recursive: true, force: true });
    rmSync(this.outside, { recursive: true, force: true });
  }
}

/** Polls `condition` every 100 ms until it holds (true) or `timeoutMs` passes (false, or an error if `what` is given). */
export async function waitUntil(condition: () => boolean, timeoutMs: number, what?: string): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      if (what) throw new Error(`not within ${timeoutMs} ms: ${what}`);
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}
