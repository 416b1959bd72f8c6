import type { ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { helperReady, jsonOrNull } from './jsonLines.js';
import { spawnBaseline, stopChild } from './servers.js';

/** The sender's process (this file is dist/bench/support/WebRtcBaseline.js). */
const SCRIPT = fileURLToPath(new URL('../../../bench/support/webrtcBaselineSender.py', import.meta.url));

/** A line from the sender's process (see webrtcBaselineSender.py). */
type SenderLine = { op: 'signal'; id: string; msg: unknown } | { op: 'error'; id: string | null; reason: string };

/**
 * The plain-GStreamer baseline of the WebRTC fan-out benchmark: one python3-gi process (webrtcBaselineSender.py)
 * encoding once and teeing RTP to a webrtcbin per viewer, as the module's shared mode does, with a signalling
 * socket on loopback that speaks the module's `/ws` protocol, so that the same light receivers
 * (WebRtcReceivers) watch either. The socket server runs in the benchmark's process: only the sender's CPU is the
 * baseline's. The sender runs in its own session, as the module's engine does (spawnBaseline).
 */
export class WebRtcBaseline {
  readonly #child: ChildProcess;
  readonly #http: Server;
  readonly #sockets = new Map<string, WebSocket>();
  /** Errors the sender reported. */
  readonly errors: string[] = [];

  private constructor(child: ChildProcess, http: Server) {
    this.#child = child;
    this.#http = http;
  }

  /** Starts the sender on `encode` (a launch line ending in H.264) and its signalling socket. */
  static async start(encode: string): Promise<WebRtcBaseline> {
    const child = spawnBaseline('/usr/bin/python3', [SCRIPT, encode], { stdio: ['pipe', 'pipe', 'pipe'] });
    const http = createServer();
    const baseline = new WebRtcBaseline(child, http);
    await helperReady<SenderLine>(child, 'webrtcBaselineSender.py', (line) => baseline.#onLine(line));
    let next = 0;
    new WebSocketServer({ server: http, path: '/ws' }).on('connection', (socket) => {
      const id = `s${++next}`;
      baseline.#sockets.set(id, socket);
      baseline.#command({ op: 'open', id });
      socket.on('message', (data) => {
        const msg = jsonOrNull(data.toString());
        if (msg !== null) baseline.#command({ op: 'signal', id, msg });
      });
      socket.on('close', () => {
        baseline.#sockets.delete(id);
        baseline.#command({ op: 'close', id });
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return baseline;
  }

  /** The signalling URL, as the module's `ws://host:port/ws`. */
  get url(): string {
    return `ws://127.0.0.1:${(this.#http.address() as AddressInfo).port}/ws`;
  }

  /** The sender's process id: the baseline's CPU. */
  get pid(): number {
    return this.#child.pid!;
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets.values()) socket.terminate();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
    await stopChild(this.#child);
  }

  #onLine(line: SenderLine): void {
    if (line.op === 'signal') {
      const socket = this.#sockets.get(line.id);
      if (socket && socket.readyState === socket.OPEN) socket.send(JSON.stringify(line.msg));
    } else if (line.op === 'error') {
      this.errors.push(`${line.id}: ${line.reason}`);
    }
  }

  #command(command: Record<string, unknown>): void {
    if (this.#child.stdin?.writable) this.#child.stdin.write(`${JSON.stringify(command)}\n`);
  }
}
