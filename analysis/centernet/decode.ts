import { COCO_CLASSES } from '../coco.js';
import { unletterbox, type LetterboxGeometry, type TensorLayout } from '../letterbox.js';
import type { Detection } from '../types.js';

/** The graph's own decoding keeps the 100 best peaks. */
const TOP_K = 100;
/** Output stride of the heat map. */
const STRIDE = 4;
/** Overlap above which a weaker box of the same class is the same object. */
const NMS_IOU = 0.5;

export interface DecodeOptions {
  readonly threshold: number;
  /** Class indices to keep (null: all). */
  readonly classes: ReadonlySet<number> | null;
  readonly layout: TensorLayout;
}

interface Candidate {
  cls: number;
  score: number;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

function iou(a: Candidate, b: Candidate): number {
  const w = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const h = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter);
}

/**
 * CenterNet's decoding, as the tfjs graph does it after its heads: a heat-map value is an object centre when it is
 * the maximum of its 3x3 neighbourhood (the graph's MaxPool + Equal), the best 100 are kept, and the box is
 * (4x - l, 4y - t, 4x + r, 4y + b) from the `wh` head. Then per-class non-maximum suppression (the graph has none).
 *
 * @param heat sigmoid heat map, 80 classes over the `mapW` x `mapH` grid
 * @param wh   left, top, right, bottom distances in input pixels over the same grid
 */
export function decodeCenterNet(heat: Float32Array, wh: Float32Array, mapW: number, mapH: number, geometry: LetterboxGeometry, options: DecodeOptions): Detection[] {
  const classes = COCO_CLASSES.length;
  const plane = mapW * mapH;
  const nchw = options.layout === 'nchw';
  const at = nchw ? (c: number, i: number) => heat[c * plane + i]! : (c: number, i: number) => heat[i * classes + c]!;
  const box = nchw ? (k: number, i: number) => wh[k * plane + i]! : (k: number, i: number) => wh[i * 4 + k]!;
  const candidates: Candidate[] = [];
  for (let c = 0; c < classes; c++) {
    if (options.classes && !options.classes.has(c)) continue;
    for (let y = 0; y < mapH; y++) {
      for (let x = 0; x < mapW; x++) {
        const i = y * mapW + x;
        const v = at(c, i);
        if (v < options.threshold) continue;
        let peak = true;
        for (let dy = -1; dy <= 1 && peak; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= mapH) continue;
          for (let dx = -1; dx <= 1; dx++) {
            const xx = x + dx;
            if (xx < 0 || xx >= mapW || (dx === 0 && dy === 0)) continue;
            if (at(c, yy * mapW + xx) > v) {
              peak = false;
              break;
            }
          }
        }
        if (!peak) continue;
        const cx = x * STRIDE;
        const cy = y * STRIDE;
        candidates.push({ cls: c, score: v, x1: cx - box(0, i), y1: cy - box(1, i), x2: cx + box(2, i), y2: cy + box(3, i) });
      }
    }
  }
  candidates.sort((a, b) => b.score - a.score);
  const kept: Candidate[] = [];
  for (const candidate of candidates.slice(0, TOP_K)) {
    if (kept.some((k) => k.cls === candidate.cls && iou(k, candidate) > NMS_IOU)) continue;
    kept.push(candidate);
  }
  return kept.map((k) => ({
    class: COCO_CLASSES[k.cls]!,
    score: Math.round(k.score * 1000) / 1000,
    box: unletterbox(geometry, k.x1, k.y1, k.x2, k.y2),
  }));
}
