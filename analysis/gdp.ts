/**
 * A reader for GStreamer's data protocol (GDP 1.0, what `gdppay` writes): the framing between the engine's analysis
 * pipeline (`... ! gdppay ! tcpserversink`) and the analyzer process. Each packet is a 62-byte big-endian header
 * and a payload: a buffer (a raw frame), caps (text: width, height, format), or an event. `tcpserversink` sends the
 * caps packets (gdppay's stream header) to every client that connects, so a restarted analyzer learns the frame
 * size before its first frame.
 *
 * Header: 0 major, 1 minor, 2 flags, 3 padding, 4-5 payload type, 6-9 payload length, 10-17 PTS, 18-25 duration,
 * 26-33 offset, 34-41 offset end, 42-43 buffer flags, 44-57 (DTS, padding), 58-59 header CRC, 60-61 payload CRC.
 */

export const GDP_HEADER_LENGTH = 62;
const PAYLOAD_BUFFER = 1;
const PAYLOAD_CAPS = 2;
/** Event payload types are 64 + the event's type. */
const PAYLOAD_EVENT_BASE = 64;
const CLOCK_TIME_NONE = 0xffffffffffffffffn;
/** A frame bigger than this is a broken stream, not a frame (4K RGB is 25 MB). */
const MAX_PAYLOAD = 64 * 1024 * 1024;

export type GdpPacket =
  | { readonly kind: 'buffer'; readonly pts: bigint | null; readonly flags: number; readonly payload: Buffer }
  | { readonly kind: 'caps'; readonly caps: string }
  | { readonly kind: 'event'; readonly eventType: number };

/** The stream is not GDP 1.0 (or lost its framing). */
export class GdpFormatError extends Error {
  override readonly name = 'GdpFormatError';
}

/**
 * Turns a byte stream into GDP packets. Bytes are kept as the chunks they came in and joined once per packet, so
 * a frame arriving in many socket reads is copied once.
 */
export class GdpParser {
  /** Bytes received and not yet parsed, in order. */
  #chunks: Buffer[] = [];
  #length = 0;
  /** The header of the packet whose payload is still arriving. */
  #header: { type: number; length: number; pts: bigint | null; flags: number } | null = null;

  /** Feeds bytes; returns the packets they complete. */
  push(chunk: Buffer): GdpPacket[] {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    const packets: GdpPacket[] = [];
    for (;;) {
      if (!this.#header) {
        if (this.#length < GDP_HEADER_LENGTH) break;
        const h = this.#take(GDP_HEADER_LENGTH);
        if (h[0] !== 1 || h[1] !== 0) throw new GdpFormatError(`GDP version ${h[0]}.${h[1]}, 1.0 expected`);
        const length = h.readUInt32BE(6);
        if (length > MAX_PAYLOAD) throw new GdpFormatError(`GDP payload of ${length} bytes`);
        const pts = h.readBigUInt64BE(10);
        this.#header = { type: h.readUInt16BE(4), length, pts: pts === CLOCK_TIME_NONE ? null : pts, flags: h.readUInt16BE(42) };
      }
      const header = this.#header;
      if (this.#length < header.length) break;
      const payload = this.#take(header.length);
      this.#header = null;
      if (header.type === PAYLOAD_BUFFER) packets.push({ kind: 'buffer', pts: header.pts, flags: header.flags, payload });
      else if (header.type === PAYLOAD_CAPS) packets.push({ kind: 'caps', caps: payload.toString('utf8').replace(/\0+$/, '') });
      else if (header.type >= PAYLOAD_EVENT_BASE) packets.push({ kind: 'event', eventType: header.type - PAYLOAD_EVENT_BASE });
      else throw new GdpFormatError(`GDP payload type ${header.type}`);
    }
    return packets;
  }

  /** Drops what is buffered (a new connection starts a new stream). */
  reset(): void {
    this.#chunks = [];
    this.#length = 0;
    this.#header = null;
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const chunk = this.#chunks[0]!;
        const part = Math.min(chunk.length, n - filled);
        chunk.copy(out, filled, 0, part);
        filled += part;
        if (part === chunk.length) this.#chunks.shift();
        else this.#chunks[0] = chunk.subarray(part);
      }
    }
    this.#length -= n;
    return out;
  }
}

/** Raw video caps as the analyzer needs them. */
export interface RawVideoCaps {
  readonly format: string;
  readonly width: number;
  readonly height: number;
}

/** Reads format, width and height from a caps string (`video/x-raw, format=(string)RGB, width=(int)320, ...`). */
export function parseRawVideoCaps(caps: string): RawVideoCaps | null {
  if (!caps.startsWith('video/x-raw')) return null;
  const format = /format=\(string\)([A-Za-z0-9_]+)/.exec(caps)?.[1];
  const width = /width=\(int\)(\d+)/.exec(caps)?.[1];
  const height = /height=\(int\)(\d+)/.exec(caps)?.[1];
  if (!format || !width || !height) return null;
  return { format, width: Number(width), height: Number(height) };
}
