import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { GdpParser, parseRawVideoCaps, type RawVideoCaps } from './gdp.js';
import type { Frame } from './types.js';

/** Counters of a {@link FrameReader}, since it was made. */
export interface FrameReaderStats {
  /** Frames that arrived whole. */
  received: number;
  /** Frames replaced by a newer one before the analyzer took them (it was busy). */
  dropped: number;
  /** Connections made to the engine's frame socket. */
  connections: number;
  connected: boolean;
}

export type FrameReaderEvents = {
  /** A connection to the frame socket failed or broke (it is retried). */
  error: [Error];
};

/** Delay before reconnecting; doubles up to the maximum while the socket refuses. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2_000;

/**
 * Reads frames from the engine's analysis socket (`gdppay ! tcpserversink`) and keeps only the newest: a frame that
 * arrives while the previous one is still waiting replaces it (counted as dropped), so a slow model always looks at
 * the present. Reconnects when the engine's socket goes away (pipeline or engine restart) until told a new port.
 */
export class FrameReader extends EventEmitter<FrameReaderEvents> {
  readonly #camera: string;
  /** Where frames come from now (null: nowhere yet). */
  #target: { host: string; port: number } | null = null;
  #socket: Socket | null = null;
  #parser = new GdpParser();
  #caps: RawVideoCaps | null = null;
  /** The newest frame not yet taken. */
  #pending: Frame | null = null;
  /** A caller of next() waiting for a frame. */
  #waiter: ((frame: Frame) => void) | null = null;
  #retryMs = RETRY_MIN_MS;
  #retryTimer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #stats: FrameReaderStats = { received: 0, dropped: 0, connections: 0, connected: false };

  constructor(camera: string) {
    super();
    this.#camera = camera;
  }

  /** Points the reader at the engine's frame socket (null: the source is gone for now). */
  setSource(target: { host: string; port: number } | null): void {
    if (this.#closed) return;
    if (target && this.#target && target.host === this.#target.host && target.port === this.#target.port && this.#socket) return;
    this.#target = target;
    this.#retryMs = RETRY_MIN_MS;
    this.#disconnect();
    if (target) this.#connect();
  }

  /** Resolves with the newest frame, at once if one is waiting. Only one caller at a time. */
  next(): Promise<Frame> {
    const pending = this.#pending;
    if (pending) {
      this.#pending = null;
      return Promise.resolve(pending);
    }
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  get stats(): FrameReaderStats {
    return { ...this.#stats };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#disconnect();
  }

  #connect(): void {
    const target = this.#target;
    if (!target || this.#closed) return;
    const socket = connect({ host: target.host, port: target.port, noDelay: true });
    this.#socket = socket;
    this.#parser = new GdpParser();
    this.#caps = null;
    socket.on('connect', () => {
      this.#stats.connections++;
      this.#stats.connected = true;
      this.#retryMs = RETRY_MIN_MS;
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const packet of this.#parser.push(chunk)) {
          if (packet.kind === 'caps') this.#caps = parseRawVideoCaps(packet.caps);
          else if (packet.kind === 'buffer') this.#onFrame(packet.payload, packet.pts);
        }
      } catch (error) {
        // Framing lost: start over on a new connection (tcpserversink sends the caps again).
        if (this.listenerCount('error') > 0) this.emit('error', error as Error);
        socket.destroy();
      }
    });
    socket.on('error', (error) => {
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#stats.connected = false;
      if (this.#closed || !this.#target) return;
      // The engine restarts its analysis pipeline on the same port, or tells us a new one: keep trying.
      this.#retryTimer = setTimeout(() => this.#connect(), this.#retryMs);
      this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
    });
  }

  #disconnect(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const socket = this.#socket;
    this.#socket = null;
    this.#stats.connected = false;
    socket?.destroy();
  }

  #onFrame(data: Buffer, pts: bigint | null): void {
    const caps = this.#caps;
    if (!caps || caps.format !== 'RGB') return;
    const stride = Math.ceil((caps.width * 3) / 4) * 4;
    if (data.length < stride * caps.height) return;
    this.#stats.received++;
    const frame: Frame = { camera: this.#camera, sequence: this.#stats.received, receivedAt: Date.now(), pts, width: caps.width, height: caps.height, stride, data };
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = null;
      waiter(frame);
      return;
    }
    if (this.#pending) this.#stats.dropped++;
    this.#pending = frame;
  }
}
