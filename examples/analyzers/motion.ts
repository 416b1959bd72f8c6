/**
 * An example analyzer plugin: motion, by comparing each frame with the previous one on a coarse grid. It reports one
 * detection of class `motion` whose box covers the cells that changed and whose score is the share of cells that did.
 *
 * Use it from the twin (after `npm run build`, the compiled file is dist/examples/analyzers/motion.js):
 *   "analyzers": { "door": { "stream": "video", "module": "/app/dist/examples/analyzers/motion.js", "fps": 2,
 *                            "threshold": 0.01, "options": { "grid": 16, "sensitivity": 25 } } }
 * A plugin is any ES module whose default export is an AnalyzerFactory; it gets the same Frame and returns the
 * same FrameAnalysis as the built-in detector, and runs in the analyzer's own process.
 */
import type { Analyzer, AnalyzerContext, AnalyzerFactory, Detection, Frame, FrameAnalysis } from '../../analysis/types.js';

class MotionAnalyzer implements Analyzer {
  /** Cells per side. */
  readonly #grid: number;
  /** Mean brightness change (0-255) above which a cell counts as moving. */
  readonly #sensitivity: number;
  /** The previous frame's mean brightness per cell. */
  #previous: Float32Array | null = null;

  constructor(context: AnalyzerContext) {
    const grid = context.options.grid;
    const sensitivity = context.options.sensitivity;
    this.#grid = typeof grid === 'number' && grid >= 2 && grid <= 64 ? Math.round(grid) : 16;
    this.#sensitivity = typeof sensitivity === 'number' && sensitivity > 0 ? sensitivity : 25;
    context.log('info', `motion analyzer on a ${this.#grid}x${this.#grid} grid, sensitivity ${this.#sensitivity}`);
  }

  async analyze(frame: Frame): Promise<FrameAnalysis> {
    const cells = this.#cells(frame);
    const previous = this.#previous;
    this.#previous = cells;
    if (!previous) return { detections: [] };
    const g = this.#grid;
    let moving = 0;
    let x0 = g;
    let y0 = g;
    let x1 = -1;
    let y1 = -1;
    for (let y = 0; y < g; y++) {
      for (let x = 0; x < g; x++) {
        if (Math.abs(cells[y * g + x]! - previous[y * g + x]!) < this.#sensitivity) continue;
        moving++;
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
    }
    if (moving === 0) return { detections: [] };
    const detection: Detection = {
      class: 'motion',
      score: moving / (g * g),
      box: { x: x0 / g, y: y0 / g, width: (x1 - x0 + 1) / g, height: (y1 - y0 + 1) / g },
    };
    return { detections: [detection] };
  }

  /** Mean brightness of each grid cell (every other pixel: plenty for a mean). */
  #cells(frame: Frame): Float32Array {
    const g = this.#grid;
    const sums = new Float32Array(g * g);
    const counts = new Uint32Array(g * g);
    for (let y = 0; y < frame.height; y += 2) {
      const cy = Math.min(g - 1, Math.floor((y * g) / frame.height));
      const row = y * frame.stride;
      for (let x = 0; x < frame.width; x += 2) {
        const cx = Math.min(g - 1, Math.floor((x * g) / frame.width));
        const i = row + x * 3;
        sums[cy * g + cx]! += (frame.data[i]! + frame.data[i + 1]! + frame.data[i + 2]!) / 3;
        counts[cy * g + cx]!++;
      }
    }
    for (let i = 0; i < sums.length; i++) sums[i] = counts[i] ? sums[i]! / counts[i]! : 0;
    return sums;
  }
}

const factory: AnalyzerFactory = (context) => new MotionAnalyzer(context);
export default factory;
