import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { COCO_CLASSES } from '../coco.js';
import { MODELS_DIR } from '../paths.js';
import { letterbox, type TensorLayout } from '../letterbox.js';
import type { Analyzer, Frame, FrameAnalysis } from '../types.js';
import { decodeCenterNet } from './decode.js';
import { checkInputSize, humanModelsDir, readCenterNet, retargetForTfjs } from './graph.js';
import { ONNX_INPUT, ONNX_OUTPUTS } from './toOnnx.js';

/** The converted model, made by set-up. */
export const ONNX_MODEL = join(MODELS_DIR, 'centernet.onnx');

/** Which inference library runs the model. */
export type RuntimeName = 'onnxruntime' | 'tfjs-wasm';
export type RuntimeChoice = RuntimeName | 'auto';

export interface CenterNetOptions {
  /** Side of the square input (multiple of 32); frames are letterboxed into it. */
  readonly inputSize: number;
  /** `auto`: onnxruntime-node where it has binaries (linux x64/arm64), tfjs-wasm elsewhere (arm32v7). */
  readonly runtime: RuntimeChoice;
  /** Threads for onnxruntime (tfjs-wasm runs on one). */
  readonly threads: number;
  readonly threshold: number;
  /** COCO class names to report (null: all). */
  readonly classes: readonly string[] | null;
}

/** The model could not be loaded by any runtime asked for. */
export class ModelLoadError extends Error {
  override readonly name = 'ModelLoadError';
}

/** One inference call of a runtime: tensor in, heat map and wh out. */
interface Session {
  readonly runtime: RuntimeName;
  readonly layout: TensorLayout;
  run(input: Float32Array, size: number): Promise<{ heat: Float32Array; wh: Float32Array }>;
  close(): Promise<void>;
}

async function onnxSession(threads: number): Promise<Session> {
  if (!existsSync(ONNX_MODEL)) throw new ModelLoadError(`${ONNX_MODEL} is missing: run scripts/setup.sh (it converts the model)`);
  type Ort = typeof import('onnxruntime-node');
  let ort: Ort;
  try {
    ort = (await import('onnxruntime-node')) as Ort;
  } catch (error) {
    throw new ModelLoadError(`onnxruntime-node does not load on ${process.platform}/${process.arch}: ${(error as Error).message}`);
  }
  const session = await ort.InferenceSession.create(ONNX_MODEL, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Spinning threads burn a core between frames: the analyzer is idle most of the time.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  return {
    runtime: 'onnxruntime',
    layout: 'nchw',
    async run(input, size) {
      const outputs = await session.run({ [ONNX_INPUT]: new ort.Tensor('float32', input, [1, 3, size, size]) });
      const heat = outputs[ONNX_OUTPUTS.keypoints]!.data as Float32Array;
      const wh = outputs[ONNX_OUTPUTS.wh]!.data as Float32Array;
      return { heat, wh };
    },
    close: () => session.release(),
  };
}

async function tfjsSession(size: number): Promise<Session> {
  const tf = await import('@tensorflow/tfjs-core');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const { loadGraphModel } = await import('@tensorflow/tfjs-converter');
  const require = createRequire(import.meta.url);
  // The .wasm files ship inside the package (dist/); a path prefix makes the backend read them from disk.
  wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
  if (!(await tf.setBackend('wasm'))) throw new ModelLoadError('tfjs wasm backend did not initialise');
  await tf.ready();
  const dir = existsSync(join(MODELS_DIR, 'centernet.json')) ? MODELS_DIR : humanModelsDir();
  const { model: graph, bin } = retargetForTfjs(readCenterNet(dir), size);
  const model = await loadGraphModel(
    tf.io.fromMemory({
      modelTopology: graph.modelTopology as unknown as Record<string, unknown>,
      weightSpecs: graph.weightsManifest[0]!.weights as unknown as Array<import('@tensorflow/tfjs-core').io.WeightsManifestEntry>,
      weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
    }),
  );
  return {
    runtime: 'tfjs-wasm',
    layout: 'nhwc',
    async run(input, s) {
      const x = tf.tensor4d(input, [1, s, s, 3]);
      const [heatT, whT] = model.execute(x, ['tower_0/keypoints', 'tower_0/wh']) as Array<InstanceType<typeof tf.Tensor>>;
      try {
        return { heat: (await heatT!.data()) as Float32Array, wh: (await whT!.data()) as Float32Array };
      } finally {
        tf.dispose([x, heatT!, whT!]);
      }
    },
    async close() {
      model.dispose();
    },
  };
}

/**
 * The built-in COCO detector: CenterNet (MobileNetV3) from `@vladmandic/human`, run by onnxruntime-node (the model
 * converted at set-up) or by tfjs with its wasm backend where onnxruntime has no binaries.
 *
 * @example
 * const detector = await CenterNetDetector.create({ inputSize: 320, runtime: 'auto', threads: 1, threshold: 0.5, classes: ['person'] });
 * const { detections } = await detector.analyze(frame);
 */
export class CenterNetDetector implements Analyzer {
  /** The runtime's session. */
  readonly #session: Session;
  readonly #size: number;
  /** One tensor reused for every frame: no garbage per frame. */
  readonly #input: Float32Array;
  readonly #threshold: number;
  readonly #classes: ReadonlySet<number> | null;

  private constructor(session: Session, options: CenterNetOptions) {
    this.#session = session;
    this.#size = options.inputSize;
    this.#input = new Float32Array(options.inputSize * options.inputSize * 3);
    this.#threshold = options.threshold;
    this.#classes = options.classes ? new Set(options.classes.map((c) => (COCO_CLASSES as readonly string[]).indexOf(c)).filter((i) => i >= 0)) : null;
  }

  /** Loads the model (onnxruntime session 0.2-0.4 s, tfjs 0.1 s plus the first inference's compile). */
  static async create(options: CenterNetOptions): Promise<CenterNetDetector> {
    checkInputSize(options.inputSize);
    const errors: string[] = [];
    const order: RuntimeName[] = options.runtime === 'auto' ? ['onnxruntime', 'tfjs-wasm'] : [options.runtime];
    for (const runtime of order) {
      try {
        const session = runtime === 'onnxruntime' ? await onnxSession(options.threads) : await tfjsSession(options.inputSize);
        const detector = new CenterNetDetector(session, options);
        // The first inference allocates and (tfjs) compiles: do it now, not on the first camera frame.
        await session.run(detector.#input, options.inputSize);
        return detector;
      } catch (error) {
        errors.push(`${runtime}: ${(error as Error).message}`);
      }
    }
    throw new ModelLoadError(`CenterNet did not load (${errors.join('; ')})`);
  }

  get runtime(): RuntimeName {
    return this.#session.runtime;
  }

  async analyze(frame: Frame): Promise<FrameAnalysis> {
    const size = this.#size;
    const geometry = letterbox(frame, size, this.#session.layout, this.#input);
    const { heat, wh } = await this.#session.run(this.#input, size);
    const map = size / 4;
    const detections = decodeCenterNet(heat, wh, map, map, geometry, { threshold: this.#threshold, classes: this.#classes, layout: this.#session.layout });
    return { detections };
  }

  async close(): Promise<void> {
    await this.#session.close();
  }
}
