import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface RtspViewerOptions {
  readonly url: string;
  /** RTP over the RTSP TCP connection, or over UDP. */
  readonly transport: 'tcp' | 'udp';
}

/**
 * A real RTSP client: gst-launch-1.0 with rtspsrc, decoding H.264 to a fakesink, reporting each decoded frame
 * (an `identity` with `-v`). stdout is line-buffered (stdbuf), so frame times are arrival times here.
 */
export class RtspViewer {
  readonly child: ChildProcess;
  /** performance.now() of every decoded frame. */
  readonly frames: number[] = [];
  /** Lines that were not frame lines (errors, state), for failure messages. */
  readonly output: string[] = [];
  readonly exited: Promise<number | null>;
  readonly #waiters = new Set<() => void>();

  constructor(options: RtspViewerOptions) {
    const args = [
      '-oL',
      'gst-launch-1.0',
      '-v',
      'rtspsrc',
      `location=${options.url}`,
      `protocols=${options.transport}`,
      'latency=100',
      '!',
      'rtph264depay',
      '!',
      'h264parse',
      '!',
      'avdec_h264',
      '!',
      'identity',
      'name=frames',
      'silent=false',
      '!',
      'fakesink',
      'sync=false',
    ];
    this.child = spawn('stdbuf', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const onLine = (line: string) => {
      if (line.includes('/GstIdentity:frames: last-message = chain')) {
        this.frames.push(performance.now());
        for (const waiter of this.#waiters) waiter();
      } else if (!line.includes('last-message')) {
        this.output.push(line);
      }
    };
    createInterface({ input: this.child.stdout! }).on('line', onLine);
    createInterface({ input: this.child.stderr! }).on('line', onLine);
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves once `count` frames have been decoded after index `from`; rejects after `timeoutMs`. */
  waitForFrames(count: number, timeoutMs = 20_000, from = 0): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.frames.length - from >= count) {
          done();
          resolve();
        } else if (!this.running) {
          done();
          reject(new Error(`viewer exited after ${this.frames.length} frames:\n${this.output.slice(-10).join('\n')}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`viewer decoded ${this.frames.length - from}/${count} frames in ${timeoutMs} ms:\n${this.output.slice(-10).join('\n')}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        this.child.off('exit', check);
      };
      this.#waiters.add(check);
      this.child.on('exit', check);
      check();
    });
  }

  /** The longest time between two consecutive frames among those from index `from` on, in ms. */
  maxGap(from = 0): number {
    let gap = 0;
    for (let i = Math.max(from, 1); i < this.frames.length; i++) gap = Math.max(gap, this.frames[i]! - this.frames[i - 1]!);
    return gap;
  }

  async stop(): Promise<void> {
    if (this.running) this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3_000);
    await this.exited;
    clearTimeout(timer);
  }
}
