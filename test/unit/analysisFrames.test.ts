import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventRateLimiter } from '../../analysis/EventRateLimiter.js';
import { GDP_HEADER_LENGTH, GdpParser, parseRawVideoCaps } from '../../analysis/gdp.js';
import { letterbox, unletterbox } from '../../analysis/letterbox.js';
import type { Frame } from '../../analysis/types.js';

/** A GDP packet as gdppay writes it (header CRC left zero: the reader does not check it). */
function packet(type: number, payload: Buffer, pts: bigint | null = null): Buffer {
  const header = Buffer.alloc(GDP_HEADER_LENGTH);
  header[0] = 1;
  header.writeUInt16BE(type, 4);
  header.writeUInt32BE(payload.length, 6);
  header.writeBigUInt64BE(pts ?? 0xffffffffffffffffn, 10);
  return Buffer.concat([header, payload]);
}

describe('GDP reader', () => {
  it('reads caps, events and buffers however the bytes are split', () => {
    const caps = 'video/x-raw, format=(string)RGB, width=(int)4, height=(int)2, framerate=(fraction)5/1';
    const frame = Buffer.alloc(4 * 3 * 2, 7);
    const stream = Buffer.concat([packet(2, Buffer.from(`${caps}\0`)), packet(64 + 0x280e, Buffer.from('GstEventStreamStart')), packet(1, frame, 40_000_000n)]);
    for (const step of [1, 7, 61, 62, 63, stream.length]) {
      const parser = new GdpParser();
      const packets = [];
      for (let i = 0; i < stream.length; i += step) packets.push(...parser.push(stream.subarray(i, i + step)));
      assert.equal(packets.length, 3, `split every ${step} bytes`);
      assert.deepEqual(packets[0], { kind: 'caps', caps });
      assert.equal(packets[1]?.kind, 'event');
      assert.deepEqual(packets[2], { kind: 'buffer', pts: 40_000_000n, flags: 0, payload: frame });
    }
  });

  it('reads raw video caps and refuses other media', () => {
    assert.deepEqual(parseRawVideoCaps('video/x-raw, format=(string)RGB, width=(int)320, height=(int)180'), { format: 'RGB', width: 320, height: 180 });
    assert.equal(parseRawVideoCaps('video/x-h264, width=(int)320, height=(int)180'), null);
  });

  it('throws on a stream that is not GDP 1.0', () => {
    assert.throws(() => new GdpParser().push(Buffer.alloc(GDP_HEADER_LENGTH, 9)), /GDP version 9\.9/);
  });
});

describe('letterbox', () => {
  const frame = (width: number, height: number): Frame => {
    const stride = Math.ceil((width * 3) / 4) * 4;
    const data = new Uint8Array(stride * height).fill(200);
    return { camera: 'c', sequence: 1, receivedAt: 0, pts: null, width, height, stride, data };
  };

  it('centres a wide frame between black bars and maps boxes back to the frame', () => {
    const out = new Float32Array(32 * 32 * 3);
    const g = letterbox(frame(32, 18), 32, 'nchw', out);
    assert.deepEqual([g.padX, g.padY, g.scale], [0, 7, 1]);
    assert.equal(out[0], 0, 'top border is black');
    assert.equal(out[7 * 32], 200, 'picture starts on row 7');
    assert.equal(out[32 * 32 * 2 + 25 * 32], 0, 'bottom border in the blue plane');
    const box = unletterbox(g, 8, 7, 24, 16);
    assert.deepEqual(box, { x: 0.25, y: 0, width: 0.5, height: 0.5 });
  });

  it('scales a frame larger than the input down, keeping its aspect ratio', () => {
    const out = new Float32Array(16 * 16 * 3);
    const g = letterbox(frame(25, 50), 16, 'nhwc', out);
    assert.deepEqual([g.scale, g.padX, g.padY], [16 / 50, 4, 0]);
    assert.equal(out[(0 * 16 + 3) * 3], 0);
    assert.equal(out[(0 * 16 + 4) * 3], 200);
  });
});

describe('detection event rate limit', () => {
  it('lets max events through per window and counts the dropped ones on the next', () => {
    let now = 0;
    const limiter = new EventRateLimiter(2, 1000, () => now);
    assert.deepEqual(limiter.take(), { ok: true, dropped: 0 });
    assert.deepEqual(limiter.take(), { ok: true, dropped: 0 });
    assert.deepEqual(limiter.take(), { ok: false });
    assert.deepEqual(limiter.take(), { ok: false });
    now = 1000;
    assert.deepEqual(limiter.take(), { ok: true, dropped: 2 });
    assert.deepEqual(limiter.take(), { ok: true, dropped: 0 });
    assert.equal(limiter.droppedTotal, 2);
  });
});
