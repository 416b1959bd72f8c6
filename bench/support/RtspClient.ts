import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';

/** How the client asks for RTP: interleaved on the RTSP connection, or to two UDP ports of its own. */
export type RtspTransport = 'tcp' | 'udp';

interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * A light RTSP viewer for load benchmarks: DESCRIBE, SETUP of the first media (RTP interleaved over TCP, or unicast
 * UDP to two sockets of its own), PLAY, and a keep-alive; it counts frames by the RTP marker bit and never decodes,
 * so hundreds of them fit in one Node process. Unlike test/support/RtspTcpClient it does not copy what it receives
 * (interleaved frames are walked in place across chunks) and keeps counters, not a time per frame, unless asked.
 */
export class RtspClient {
  /** Complete frames (RTP packets with the marker bit) so far. */
  frames = 0;
  /** RTP payload bytes so far. */
  bytes = 0;
  /** performance.now() of the last frame (0 before the first). */
  lastFrameAt = 0;
  /** performance.now() of every frame, when constructed with `keepTimes`. */
  readonly times: number[] | null;
  /** The RTP timestamp (90 kHz) of every frame, when constructed with `keepTimes`. */
  readonly rtpTimes: number[] | null;
  /** The server closed the connection (not us). */
  disconnected = false;
  readonly transport: RtspTransport;
  readonly #url: URL;
  #socket: Socket | null = null;
  #rtp: UdpSocket | null = null;
  #rtcp: UdpSocket | null = null;
  #closing = false;
  #cseq = 0;
  #session = '';
  #keepAlive: NodeJS.Timeout | null = null;
  #pending: ((response: Response) => void) | null = null;
  /** Fails the request waiting for its response (the connection closed, or set-up timed out). */
  #failPending: ((error: Error) => void) | null = null;
  /** Text of a response not complete yet. */
  #text: Buffer | null = null;
  /** Interleaved parsing across chunks: bytes of the current frame still to skip, and a header split over chunks. */
  #skip = 0;
  #header: Buffer | null = null;
  /** Offset in the current interleaved RTP packet where the marker byte (second byte) is, while not yet seen. */
  #markerAt = -1;
  #packetStart = 0;
  #timestampBytes: number[] | null = null;

  constructor(url: string, options: { transport?: RtspTransport; keepTimes?: boolean } = {}) {
    this.#url = new URL(url);
    this.transport = options.transport ?? 'tcp';
    this.times = options.keepTimes ? [] : null;
    this.rtpTimes = options.keepTimes ? [] : null;
  }

  /** Connects and plays; resolves once PLAY is answered 200. */
  async start(timeoutMs = 20_000): Promise<void> {
    const socket = connect(Number(this.#url.port || 554), this.#url.hostname);
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => {
      if (!this.#closing) this.disconnected = true;
      this.#stopKeepAlive();
      this.#failPending?.(new Error('RTSP connection closed'));
    });
    socket.on('error', () => undefined);
    const timer = setTimeout(() => socket.destroy(new Error('RTSP start timed out')), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
        socket.once('close', () => reject(new Error('RTSP connection closed during set-up')));
      });
      const base = this.#url.href.replace(/\/?$/, '/');
      const describe = await this.#request('DESCRIBE', this.#url.href, { Accept: 'application/sdp' });
      if (describe.status !== 200) throw new Error(`DESCRIBE ${describe.status}`);
      const control = /a=control:(\S+)/.exec(describe.body.split(/\r?\nm=/)[1] ?? '')?.[1] ?? 'stream=0';
      const track = control.startsWith('rtsp://') ? control : base + control;
      const transport = this.transport === 'tcp' ? 'RTP/AVP/TCP;unicast;interleaved=0-1' : `RTP/AVP;unicast;client_port=${await this.#bindUdp()}`;
      const setup = await this.#request('SETUP', track, { Transport: transport });
      if (setup.status !== 200) throw new Error(`SETUP ${setup.status}`);
      const [session, ...params] = (setup.headers.session ?? '').split(';');
      this.#session = session!;
      const timeoutS = Number(/timeout=(\d+)/.exec(params.join(';'))?.[1] ?? 60);
      const play = await this.#request('PLAY', this.#url.href, { Session: this.#session, Range: 'npt=0-' });
      if (play.status !== 200) throw new Error(`PLAY ${play.status}`);
      // The session would expire without a request now and then: we send no RTCP.
      this.#keepAlive = setInterval(() => this.#send('GET_PARAMETER', this.#url.href, { Session: this.#session }), (timeoutS * 1000) / 3);
      this.#keepAlive.unref();
    } catch (error) {
      this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.#closing = true;
    this.#stopKeepAlive();
    this.#socket?.destroy();
    this.#socket = null;
    this.#rtp?.close();
    this.#rtcp?.close();
    this.#rtp = this.#rtcp = null;
  }

  #stopKeepAlive(): void {
    if (this.#keepAlive) clearInterval(this.#keepAlive);
    this.#keepAlive = null;
  }

  /** Two UDP sockets on ports p and p+1 (RTP, RTCP); returns `p-p+1`. */
  async #bindUdp(): Promise<string> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const rtp = createSocket('udp4');
      const port = await new Promise<number>((resolve, reject) => {
        rtp.once('error', reject);
        rtp.bind(0, '127.0.0.1', () => resolve(rtp.address().port));
      });
      const rtcp = createSocket('udp4');
      const bound = await new Promise<boolean>((resolve) => {
        rtcp.once('error', () => resolve(false));
        rtcp.bind(port + 1, '127.0.0.1', () => resolve(true));
      });
      if (!bound) {
        rtp.close();
        rtcp.close();
        continue;
      }
      rtp.on('message', (packet: Buffer) => this.#onRtp(packet));
      rtcp.on('message', () => undefined);
      rtp.on('error', () => undefined);
      rtcp.on('error', () => undefined);
      this.#rtp = rtp;
      this.#rtcp = rtcp;
      return `${port}-${port + 1}`;
    }
    throw new Error('no pair of free UDP ports');
  }

  #onRtp(packet: Buffer): void {
    if (packet.length < 12) return;
    this.bytes += packet.length - 12;
    if ((packet[1]! & 0x80) !== 0) this.#frame(packet.readUInt32BE(4));
  }

  #frame(rtpTime: number): void {
    this.frames++;
    const now = performance.now();
    this.lastFrameAt = now;
    this.times?.push(now);
    this.rtpTimes?.push(rtpTime);
  }

  #send(method: string, url: string, headers: Record<string, string>): void {
    const lines = [`${method} ${url} RTSP/1.0`, `CSeq: ${++this.#cseq}`, 'User-Agent: gst-iotedge-bench'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    this.#socket?.write(`${lines.join('\r\n')}\r\n\r\n`);
  }

  #request(method: string, url: string, headers: Record<string, string>): Promise<Response> {
    this.#send(method, url, headers);
    return new Promise((resolve, reject) => {
      this.#pending = resolve;
      this.#failPending = (error) => {
        this.#pending = this.#failPending = null;
        reject(error);
      };
    });
  }

  /**
   * RTSP responses (text) and, over TCP, interleaved frames (`$`, channel, 16-bit length, payload), parsed in place:
   * only a response, or a frame header split between chunks, is ever copied.
   */
  #onData(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#skip > 0) {
        // Inside an interleaved frame: its marker bit (RTP byte 1) and timestamp may be in this chunk.
        const take = Math.min(this.#skip, chunk.length - i);
        if (this.#markerAt >= 0) this.#readRtpHeader(chunk, i, take);
        this.#skip -= take;
        i += take;
        continue;
      }
      if (this.#text) {
        i = this.#readText(chunk, i);
        continue;
      }
      if (this.#header || chunk[i] === 0x24) {
        const header = this.#header ? Buffer.concat([this.#header, chunk.subarray(i, i + 4 - this.#header.length)]) : chunk.subarray(i, i + 4);
        const used = header.length - (this.#header?.length ?? 0);
        if (header.length < 4) {
          this.#header = Buffer.from(header);
          return;
        }
        this.#header = null;
        i += used;
        const length = header.readUInt16BE(2);
        this.#skip = length;
        // Channel 0 is RTP: count it.
        this.#markerAt = header[1] === 0 && length >= 12 ? 1 : -1;
        this.#packetStart = 0;
        this.#timestampBytes = null;
        if (header[1] === 0) this.bytes += Math.max(0, length - 12);
        continue;
      }
      i = this.#readText(chunk, i);
    }
  }

  /** Reads what of the current RTP packet's header lies in `chunk[from, from + take)`. */
  #readRtpHeader(chunk: Buffer, from: number, take: number): void {
    for (let k = 0; k < take && this.#packetStart + k < 8; k++) {
      const at = this.#packetStart + k;
      const byte = chunk[from + k]!;
      if (at === 1 && (byte & 0x80) === 0) {
        this.#markerAt = -1;
        break;
      }
      if (at >= 4) (this.#timestampBytes ??= []).push(byte);
    }
    this.#packetStart += take;
    if (this.#markerAt >= 0 && this.#packetStart >= 8) {
      const t = this.#timestampBytes!;
      this.#frame(((t[0]! << 24) | (t[1]! << 16) | (t[2]! << 8) | t[3]!) >>> 0);
      this.#markerAt = -1;
    }
  }

  /** RTSP response text from `chunk[from]`: returns where it stopped (the end of the chunk, or of the response). */
  #readText(chunk: Buffer, from: number): number {
    const text = this.#text ? Buffer.concat([this.#text, chunk.subarray(from)]) : chunk.subarray(from);
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) {
      this.#text = Buffer.from(text);
      return chunk.length;
    }
    const head = text.subarray(0, end).toString();
    const headers: Record<string, string> = {};
    for (const line of head.split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (text.length < end + 4 + length) {
      this.#text = Buffer.from(text);
      return chunk.length;
    }
    const body = text.subarray(end + 4, end + 4 + length).toString();
    const consumed = end + 4 + length - (this.#text?.length ?? 0);
    this.#text = null;
    const status = Number(/^RTSP\/1\.0 (\d+)/.exec(head)?.[1] ?? 0);
    // Keep-alive answers have no one waiting.
    const pending = this.#pending;
    this.#pending = this.#failPending = null;
    pending?.({ status, headers, body });
    return from + consumed;
  }
}
