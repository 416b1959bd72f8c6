import { connect, isIP, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

/**
 * A minimal RTSP client (DESCRIBE, SETUP with RTP interleaved over TCP, PLAY) that counts video frames by the RTP
 * marker bit without decoding: cheap enough to run a hundred viewers in one process for load benchmarks.
 * Only the first media of the SDP (video) is set up. `rtsps://` connects over TLS (validated against `ca` when
 * given); user information in the URL is sent as Basic credentials with every request.
 */
export class RtspTcpClient {
  /** performance.now() of each complete frame (RTP packet with the marker bit). */
  readonly frames: number[] = [];
  bytes = 0;
  /** The server closed the connection (not us). */
  disconnected = false;
  /** Resolves when the connection closes (either side). */
  readonly closed: Promise<void>;
  #onClosed: () => void = () => undefined;
  #closing = false;
  readonly #url: URL;
  #socket: Socket | null = null;
  #buffer: Buffer = Buffer.alloc(0);
  #cseq = 0;
  #pending: { resolve: (response: { status: number; headers: Record<string, string>; body: string }) => void; reject: (error: Error) => void } | null = null;
  #session = '';
  /** `Authorization: Basic ...` from the URL's user information, or null. */
  readonly #authorization: string | null;
  /** PEM CA to validate an rtsps:// server against (none: not validated, for benchmarks). */
  readonly #ca: string | undefined;

  constructor(url: string, options: { readonly ca?: string } = {}) {
    this.#url = new URL(url);
    const user = decodeURIComponent(this.#url.username);
    this.#authorization = user ? `Basic ${Buffer.from(`${user}:${decodeURIComponent(this.#url.password)}`).toString('base64')}` : null;
    this.#url.username = '';
    this.#url.password = '';
    this.#ca = options.ca;
    this.closed = new Promise((resolve) => (this.#onClosed = resolve));
  }

  /** Connects and plays; resolves once PLAY is answered 200. */
  async start(timeoutMs = 10_000): Promise<void> {
    const port = Number(this.#url.port || (this.#url.protocol === 'rtsps:' ? 322 : 554));
    const socket =
      this.#url.protocol === 'rtsps:'
        ? connectTls({ port, host: this.#url.hostname, ...(isIP(this.#url.hostname) ? {} : { servername: this.#url.hostname }), ...(this.#ca ? { ca: this.#ca } : { rejectUnauthorized: false }) })
        : connect(port, this.#url.hostname);
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.#onData(chunk));
    socket.on('close', () => {
      if (!this.#closing) this.disconnected = true;
      // A request still waiting for its answer gets none: the start fails instead of waiting for ever.
      this.#pending?.reject(new Error(timedOut ? 'RTSP start timed out' : 'RTSP connection closed before the answer'));
      this.#pending = null;
      this.#onClosed();
    });
    socket.on('error', () => undefined); // reported through 'close' (and the connect promise below)
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy(new Error('RTSP start timed out'));
    }, timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once(this.#url.protocol === 'rtsps:' ? 'secureConnect' : 'connect', resolve);
        socket.once('error', reject);
      });
      const base = this.#url.href.replace(/\/?$/, '/');
      const describe = await this.#request('DESCRIBE', this.#url.href, { Accept: 'application/sdp' });
      if (describe.status !== 200) throw new Error(`DESCRIBE ${describe.status}`);
      const control = /a=control:(\S+)/.exec(describe.body.split(/\r?\nm=/)[1] ?? '')?.[1] ?? 'stream=0';
      const track = control.startsWith('rtsp://') ? control : base + control;
      const setup = await this.#request('SETUP', track, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
      if (setup.status !== 200) throw new Error(`SETUP ${setup.status}`);
      this.#session = (setup.headers.session ?? '').split(';')[0]!;
      const play = await this.#request('PLAY', this.#url.href, { Session: this.#session, Range: 'npt=0-' });
      if (play.status !== 200) throw new Error(`PLAY ${play.status}`);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.#closing = true;
    this.#socket?.destroy();
    this.#socket = null;
  }

  /** Frames per second over [from, to] (performance.now() times). */
  fps(from: number, to: number): number {
    const n = this.frames.filter((t) => t >= from && t <= to).length;
    return (n * 1000) / (to - from);
  }

  #request(method: string, url: string, headers: Record<string, string>) {
    const lines = [`${method} ${url} RTSP/1.0`, `CSeq: ${++this.#cseq}`, 'User-Agent: gst-iotedge-bench'];
    if (this.#authorization) lines.push(`Authorization: ${this.#authorization}`);
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    this.#socket!.write(`${lines.join('\r\n')}\r\n\r\n`);
    return new Promise<{ status: number; headers: Record<string, string>; body: string }>((resolve, reject) => {
      this.#pending = { resolve, reject };
    });
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : Buffer.from(chunk);
    for (;;) {
      if (this.#buffer.length === 0) return;
      if (this.#buffer[0] === 0x24) {
        // '$' channel length(2) payload: RTP or RTCP interleaved on the RTSP connection.
        if (this.#buffer.length < 4) return;
        const length = this.#buffer.readUInt16BE(2);
        if (this.#buffer.length < 4 + length) return;
        const channel = this.#buffer[1];
        if (channel === 0 && length >= 2) {
          this.bytes += length;
          if ((this.#buffer[5]! & 0x80) !== 0) this.frames.push(performance.now());
        }
        this.#buffer = this.#buffer.subarray(4 + length);
        continue;
      }
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.#buffer.subarray(0, end).toString();
      const headers: Record<string, string> = {};
      for (const line of head.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (this.#buffer.length < end + 4 + length) return;
      const body = this.#buffer.subarray(end + 4, end + 4 + length).toString();
      this.#buffer = this.#buffer.subarray(end + 4 + length);
      const status = Number(/^RTSP\/1\.0 (\d+)/.exec(head)?.[1] ?? 0);
      const pending = this.#pending;
      this.#pending = null;
      pending?.resolve({ status, headers, body });
    }
  }
}
