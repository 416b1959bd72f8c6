import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { helperReady, jsonOrNull } from './jsonLines.js';

/** The receivers' process (this file is dist/bench/support/WebRtcReceivers.js). */
const SCRIPT = fileURLToPath(new URL('../../../bench/support/webrtcReceivers.py', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A line from the receivers' process (see webrtcReceivers.py). */
type ReceiverLine =
  | { op: 'signal'; id: string; msg: unknown }
  | { op: 'state'; id: string; state: string }
  | { op: 'counts'; counts: Record<string, number>; at: number }
  | { op: 'error'; id: string | null; reason: string };

/** One receiver as the driver sees it. */
interface Receiver {
  readonly socket: WebSocket;
  /** webrtcbin's connection-state, as last reported. */
  state: string;
  /** Why the module closed its socket, if it did (code and reason). */
  closed: string | null;
}

/**
 * Light WebRTC viewers for load benchmarks: one Python process runs every receiver's webrtcbin (no decoding: RTP is
 * depayloaded and counted by an identity element), and this driver opens each one's signalling socket on the
 * module's `/ws` and relays the seed protocol between the two over the process's stdio. A hundred of them cost
 * SRTP and depayloading, a fraction of what a hundred browser tabs decoding would cost the same two cores.
 *
 * @example
 * const receivers = await WebRtcReceivers.start();
 * const ids = await receivers.open('ws://127.0.0.1:8000/ws', 10);
 * const fps = await receivers.fps(ids, 5_000); // frames a second of each, over 5 s
 * await receivers.stop();
 */
export class WebRtcReceivers {
  /** The Python process holding every webrtcbin. */
  readonly #child: ChildProcess;
  /** Receivers by id. */
  readonly #receivers = new Map<string, Receiver>();
  /** Waiters for the next `counts` line. */
  readonly #countWaiters: ((line: { counts: Record<string, number>; at: number }) => void)[] = [];
  /** Errors the receivers reported, and sockets the module closed. */
  readonly errors: string[] = [];
  #next = 0;

  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  /** Spawns the receivers' process and waits for it to be ready. */
  static async start(): Promise<WebRtcReceivers> {
    const child = spawn('/usr/bin/python3', [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    const receivers = new WebRtcReceivers(child);
    await helperReady<ReceiverLine>(child, 'webrtcReceivers.py', (line) => receivers.#onLine(line));
    return receivers;
  }

  /** The receivers' process id (to measure the clients' own CPU). */
  get pid(): number {
    return this.#child.pid!;
  }

  /** Receivers open now. */
  get ids(): string[] {
    return [...this.#receivers.keys()];
  }

  /**
   * Opens `n` receivers on the signalling URL (`ws://host:port/ws`), `batch` at a time, each batch waited for until
   * every receiver in it is connected and has a frame. Throws when one is not within `timeoutMs`.
   */
  async open(url: string, n: number, options: { batch?: number; timeoutMs?: number } = {}): Promise<string[]> {
    const { batch = 10, timeoutMs = 30_000 } = options;
    const opened: string[] = [];
    for (let i = 0; i < n; i += batch) {
      const ids = Array.from({ length: Math.min(batch, n - i) }, () => this.#open(url));
      await this.#waitForFrames(ids, timeoutMs);
      opened.push(...ids);
    }
    return opened;
  }

  /** Frames a second of each receiver over the next `windowMs` (frames counted by identity, timed by the process). */
  async fps(ids: readonly string[], windowMs: number): Promise<number[]> {
    const before = await this.counts();
    await sleep(windowMs);
    const after = await this.counts();
    const seconds = after.at - before.at;
    return ids.map((id) => ((after.counts[id] ?? 0) - (before.counts[id] ?? 0)) / seconds);
  }

  /** Frames received so far, per receiver, and the process's monotonic time of the reading. */
  counts(): Promise<{ counts: Record<string, number>; at: number }> {
    return new Promise((resolve) => {
      this.#countWaiters.push(resolve);
      this.#command({ op: 'counts' });
    });
  }

  /** Receivers whose socket the module closed, with the code and reason. */
  closedByModule(): string[] {
    return [...this.#receivers.values()].flatMap((r) => (r.closed ? [r.closed] : []));
  }

  /** Closes one receiver: its socket (the module ends its peer) and its webrtcbin. */
  close(id: string): void {
    const receiver = this.#receivers.get(id);
    if (!receiver) return;
    this.#receivers.delete(id);
    receiver.socket.close();
    this.#command({ op: 'close', id });
  }

  closeAll(): void {
    for (const id of this.ids) this.close(id);
  }

  /** Closes every receiver and ends the process. */
  async stop(): Promise<void> {
    this.closeAll();
    if (this.#child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.stdin!.end();
    const kill = setTimeout(() => this.#child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(kill);
  }

  #open(url: string): string {
    const id = `r${++this.#next}`;
    // The webrtcbin exists before the offer can arrive.
    this.#command({ op: 'open', id });
    const socket = new WebSocket(url);
    const receiver: Receiver = { socket, state: 'new', closed: null };
    this.#receivers.set(id, receiver);
    socket.on('message', (data) => {
      const msg = jsonOrNull(data.toString());
      if (typeof msg === 'object' && msg !== null && ('sdp' in msg || 'ice' in msg)) this.#command({ op: 'signal', id, msg });
    });
    socket.on('close', (code, reason) => {
      if (this.#receivers.has(id)) {
        receiver.closed = `${code} ${reason.toString()}`;
        this.errors.push(`${id}: socket closed by the module: ${receiver.closed}`);
      }
    });
    socket.on('error', (error) => this.errors.push(`${id}: socket: ${error.message}`));
    return id;
  }

  async #waitForFrames(ids: readonly string[], timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const { counts } = await this.counts();
      const waiting = ids.filter((id) => !((counts[id] ?? 0) > 0));
      if (waiting.length === 0) return;
      const closed = waiting.map((id) => this.#receivers.get(id)).find((r) => r?.closed);
      if (closed) throw new Error(`a receiver's socket was closed by the module: ${closed.closed}`);
      if (performance.now() > deadline) {
        const states = waiting.map((id) => `${id} ${this.#receivers.get(id)?.state}`).join(', ');
        throw new Error(`${waiting.length} receivers without a frame after ${timeoutMs} ms (${states}); errors: ${this.errors.slice(-5).join('; ')}`);
      }
      await sleep(100);
    }
  }

  #onLine(line: ReceiverLine): void {
    if (line.op === 'signal') {
      const socket = this.#receivers.get(line.id)?.socket;
      if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(line.msg));
      else if (socket?.readyState === WebSocket.CONNECTING) socket.once('open', () => socket.send(JSON.stringify(line.msg)));
    } else if (line.op === 'state') {
      const receiver = this.#receivers.get(line.id);
      if (receiver) receiver.state = line.state;
    } else if (line.op === 'counts') {
      this.#countWaiters.shift()?.(line);
    } else if (line.op === 'error') {
      this.errors.push(`${line.id}: ${line.reason}`);
    }
  }

  #command(command: Record<string, unknown>): void {
    if (this.#child.stdin?.writable) this.#child.stdin.write(`${JSON.stringify(command)}\n`);
  }
}
