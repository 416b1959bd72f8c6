import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RtspTransport } from './RtspClient.js';

const WORKER = fileURLToPath(new URL('./rtspClientWorker.js', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Reply =
  | { op: 'opened'; opened: number; error: string | null }
  | { op: 'counts'; frames: number[]; bytes: number[]; disconnected: number; at: number }
  | { op: 'closed' };

/** One worker process and the replies it owes, in order. */
class Worker {
  readonly child: ChildProcess;
  readonly #waiting: ((reply: Reply) => void)[] = [];
  viewers = 0;

  constructor() {
    this.child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (reply: Reply) => this.#waiting.shift()?.(reply));
  }

  ask<T extends Reply>(command: Record<string, unknown>): Promise<T> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve as (reply: Reply) => void);
      this.child.send(command);
    });
  }
}

/**
 * Light RTSP viewers (RtspClient) in `processes` worker processes of their own: their CPU is measured apart from the
 * server's and the benchmark's, and a thousand viewers need not share one Node thread.
 *
 * @example
 * const viewers = RtspClients.start(2);
 * await viewers.open('rtsp://127.0.0.1:8554/player', 500, 'udp');
 * const fps = await viewers.fps(8_000); // each viewer's frames a second over 8 s
 * await viewers.stop();
 */
export class RtspClients {
  readonly #workers: Worker[];

  private constructor(processes: number) {
    this.#workers = Array.from({ length: Math.max(1, processes) }, () => new Worker());
  }

  static start(processes = 1): RtspClients {
    return new RtspClients(processes);
  }

  get pids(): number[] {
    return this.#workers.map((w) => w.child.pid!);
  }

  get viewers(): number {
    return this.#workers.reduce((n, w) => n + w.viewers, 0);
  }

  /**
   * Opens `n` more viewers, spread over the workers, `batch` at a time in each. The very first viewer opens alone:
   * gst-rtsp-server 1.22 can abort (gst_rtsp_media_get_rates assertion) when several clients arrive while a shared
   * media is still preparing. Throws when one does not play.
   */
  async open(url: string, n: number, transport: RtspTransport, batch = 10): Promise<void> {
    let left = n;
    if (this.viewers === 0 && left > 0) {
      await this.#openOn(this.#workers[0]!, url, 1, transport, 1);
      left--;
    }
    const shares = this.#workers.map((_, i) => Math.floor(left / this.#workers.length) + (i < left % this.#workers.length ? 1 : 0));
    await Promise.all(this.#workers.map((w, i) => (shares[i]! > 0 ? this.#openOn(w, url, shares[i]!, transport, batch) : undefined)));
  }

  /** Opens one viewer of each URL (one after another, spread over the workers). */
  async openEach(urls: readonly string[], transport: RtspTransport): Promise<void> {
    for (const [i, url] of urls.entries()) await this.#openOn(this.#workers[i % this.#workers.length]!, url, 1, transport, 1);
  }

  async #openOn(worker: Worker, url: string, n: number, transport: RtspTransport, batch: number): Promise<void> {
    const reply = await worker.ask<Extract<Reply, { op: 'opened' }>>({ op: 'open', url, n, transport, batch });
    worker.viewers += reply.opened;
    if (reply.error) throw new Error(`RTSP viewer ${worker.viewers + 1} did not play: ${reply.error}`);
  }

  /** Frames so far of every viewer, and viewers the server disconnected. */
  async counts(): Promise<{ frames: number[][]; bytes: number[][]; at: number[]; disconnected: number }> {
    const replies = await Promise.all(this.#workers.map((w) => w.ask<Extract<Reply, { op: 'counts' }>>({ op: 'counts' })));
    return { frames: replies.map((r) => r.frames), bytes: replies.map((r) => r.bytes), at: replies.map((r) => r.at), disconnected: replies.reduce((n, r) => n + r.disconnected, 0) };
  }

  /** Every viewer's frames a second and RTP payload Mbit/s over the next `windowMs` (each worker timing its own). */
  async fps(windowMs: number): Promise<{ fps: number[]; mbps: number[]; disconnected: number }> {
    const before = await this.counts();
    await sleep(windowMs);
    const after = await this.counts();
    const rate = (now: number[][], then: number[][], scale: number) =>
      now.flatMap((values, w) => values.map((v, i) => ((v - (then[w]![i] ?? 0)) * scale) / (after.at[w]! - before.at[w]!)));
    return { fps: rate(after.frames, before.frames, 1000), mbps: rate(after.bytes, before.bytes, 8 / 1000), disconnected: after.disconnected };
  }

  /** Closes every viewer and ends the workers. */
  async stop(): Promise<void> {
    await Promise.all(
      this.#workers.map(async (w) => {
        if (w.child.exitCode !== null || !w.child.connected) return;
        const exited = new Promise((resolve) => w.child.once('exit', resolve));
        await w.ask({ op: 'close' });
        await exited;
      }),
    );
  }
}
