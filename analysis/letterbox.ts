import type { Frame, NormalizedBox } from './types.js';

/** Where a frame's picture sits in the square tensor: scale and offsets, to map boxes back. */
export interface LetterboxGeometry {
  readonly size: number;
  /** Tensor pixels per frame pixel (1 for frames GStreamer already scaled to fit). */
  readonly scale: number;
  readonly padX: number;
  readonly padY: number;
  readonly width: number;
  readonly height: number;
}

/** Tensor layouts the runtimes take: onnxruntime's converted model is NCHW (planar), tfjs's graph NHWC. */
export type TensorLayout = 'nchw' | 'nhwc';

/**
 * Writes `frame` into `out` (size*size*3 floats, RGB 0-255) letterboxed: scaled to fit with its aspect ratio kept
 * (nearest neighbour; frames from the tap already fit and are copied 1:1), centred, borders black. Stretching
 * instead scores worse and mislabels (measured: cat read as dog). One pass, no intermediate image.
 */
export function letterbox(frame: Frame, size: number, layout: TensorLayout, out: Float32Array): LetterboxGeometry {
  const { width, height, stride, data } = frame;
  if (out.length !== size * size * 3) throw new RangeError(`tensor holds ${out.length} floats, ${size * size * 3} needed`);
  if (data.length < stride * (height - 1) + width * 3) throw new RangeError(`frame ${width}x${height} stride ${stride} needs more than ${data.length} bytes`);
  const scale = Math.min(size / width, size / height);
  const w = Math.min(size, Math.round(width * scale));
  const h = Math.min(size, Math.round(height * scale));
  const padX = Math.floor((size - w) / 2);
  const padY = Math.floor((size - h) / 2);
  out.fill(0);
  const plane = size * size;
  const xs = new Int32Array(w);
  for (let x = 0; x < w; x++) xs[x] = Math.min(width - 1, Math.floor((x + 0.5) / scale)) * 3;
  for (let y = 0; y < h; y++) {
    const row = Math.min(height - 1, Math.floor((y + 0.5) / scale)) * stride;
    const base = (y + padY) * size + padX;
    if (layout === 'nchw') {
      for (let x = 0; x < w; x++) {
        const s = row + xs[x]!;
        out[base + x] = data[s]!;
        out[plane + base + x] = data[s + 1]!;
        out[2 * plane + base + x] = data[s + 2]!;
      }
    } else {
      for (let x = 0; x < w; x++) {
        const s = row + xs[x]!;
        const d = (base + x) * 3;
        out[d] = data[s]!;
        out[d + 1] = data[s + 1]!;
        out[d + 2] = data[s + 2]!;
      }
    }
  }
  return { size, scale, padX, padY, width, height };
}

/** A box in tensor pixels (x1, y1, x2, y2) as a box normalised to the frame, clipped to it. */
export function unletterbox(geometry: LetterboxGeometry, x1: number, y1: number, x2: number, y2: number): NormalizedBox {
  const fw = geometry.width * geometry.scale;
  const fh = geometry.height * geometry.scale;
  const clip = (v: number) => Math.min(1, Math.max(0, v));
  const left = clip((x1 - geometry.padX) / fw);
  const top = clip((y1 - geometry.padY) / fh);
  const right = clip((x2 - geometry.padX) / fw);
  const bottom = clip((y2 - geometry.padY) / fh);
  return { x: left, y: top, width: Math.max(0, right - left), height: Math.max(0, bottom - top) };
}
