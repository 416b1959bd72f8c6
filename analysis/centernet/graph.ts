/**
 * CenterNet as `@vladmandic/human` ships it: a TensorFlow.js graph model (`models/centernet.json` + `.bin`, MobileNetV3
 * backbone, 80 COCO classes, weights stored as float16). This file reads it for the ONNX converter and for the
 * tfjs-wasm runtime; it does not load TensorFlow.
 *
 * Upstream weights (mobilenetv3_centernet by 610265158) state no licence; `@vladmandic/human` is MIT.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** One node of the tfjs graph (a TensorFlow NodeDef as JSON). */
export interface TfNode {
  readonly name: string;
  readonly op: string;
  readonly input?: readonly string[];
  readonly attr?: Record<string, TfAttr>;
}

/** A NodeDef attribute as tfjs writes it: exactly one of these is set. */
export interface TfAttr {
  readonly i?: string;
  readonly f?: number;
  readonly b?: boolean;
  readonly s?: string;
  readonly list?: { readonly i?: readonly string[]; readonly s?: readonly string[] };
  readonly shape?: { readonly dim?: ReadonlyArray<{ size: string }> };
}

/** What `centernet.json` holds. */
export interface TfGraphModel {
  format: string;
  signature: unknown;
  modelTopology: { node: TfNode[]; [key: string]: unknown };
  weightsManifest: Array<{ paths: string[]; weights: TfWeightSpec[] }>;
  [key: string]: unknown;
}

export interface TfWeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: 'float32' | 'int32';
  readonly quantization?: { readonly dtype: 'float16' | 'uint8' | 'uint16'; readonly original_dtype?: string };
}

/** A decoded constant of the graph. */
export type TfWeight =
  | { readonly dtype: 'float32'; readonly shape: readonly number[]; readonly data: Float32Array }
  | { readonly dtype: 'int32'; readonly shape: readonly number[]; readonly data: Int32Array };

/** The model as read from disk: graph JSON, decoded weights, and the raw bytes (for the tfjs runtime). */
export interface CenterNetFiles {
  readonly model: TfGraphModel;
  readonly weights: ReadonlyMap<string, TfWeight>;
  readonly bin: Buffer;
  /** The folder the files came from (shown in errors and model metadata). */
  readonly dir: string;
}

/** Thrown when the model files are missing or not the graph this code was written for. */
export class ModelFormatError extends Error {
  override readonly name = 'ModelFormatError';
}

/**
 * The folder of `@vladmandic/human`'s models. Its `exports` block `require.resolve('…/package.json')`, so this
 * resolves the main entry (`dist/human.node.js`) and goes to `../models`.
 */
export function humanModelsDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@vladmandic/human')), '..', 'models');
}

/** Float16 (IEEE 754 half) to float32, for the weights tfjs quantised on export. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Reads `centernet.json` + `centernet.bin` from `dir` (default: the installed `@vladmandic/human`). */
export function readCenterNet(dir: string = humanModelsDir()): CenterNetFiles {
  let model: TfGraphModel;
  let bin: Buffer;
  try {
    model = JSON.parse(readFileSync(join(dir, 'centernet.json'), 'utf8')) as TfGraphModel;
    bin = readFileSync(join(dir, 'centernet.bin'));
  } catch (error) {
    throw new ModelFormatError(`CenterNet model not readable in ${dir}: ${(error as Error).message}`);
  }
  if (model.format !== 'graph-model' || model.weightsManifest.length !== 1) throw new ModelFormatError(`${dir}/centernet.json is not a one-file tfjs graph model`);
  const weights = new Map<string, TfWeight>();
  let offset = 0;
  for (const spec of model.weightsManifest[0]!.weights) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.dtype === 'int32') {
      const data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = bin.readInt32LE(offset + i * 4);
      weights.set(spec.name, { dtype: 'int32', shape: spec.shape, data });
      offset += count * 4;
    } else if (spec.quantization?.dtype === 'float16') {
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = halfToFloat(bin.readUInt16LE(offset + i * 2));
      weights.set(spec.name, { dtype: 'float32', shape: spec.shape, data });
      offset += count * 2;
    } else if (!spec.quantization) {
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = bin.readFloatLE(offset + i * 4);
      weights.set(spec.name, { dtype: 'float32', shape: spec.shape, data });
      offset += count * 4;
    } else {
      throw new ModelFormatError(`weight ${spec.name}: quantisation ${spec.quantization.dtype} not supported`);
    }
  }
  if (offset !== bin.length) throw new ModelFormatError(`centernet.bin holds ${bin.length} bytes, the manifest describes ${offset}`);
  return { model, weights, bin, dir };
}

/** The graph's three upsampling targets (the `up_sampling2d…/mul` constants): S/16, S/8, S/4 for an input of S. */
export const RESIZE_CONSTANTS = [
  'tower_0/CenternetHead/c5_upsample/up_sampling2d/mul',
  'tower_0/CenternetHead/c4_upsample/up_sampling2d_1/mul',
  'tower_0/CenternetHead/c3_upsample/up_sampling2d_2/mul',
] as const;

/** Sizes the graph works at: a multiple of 32, so every stride-2 stage halves exactly and the upsampled maps match. */
export function checkInputSize(size: number): void {
  if (!Number.isInteger(size) || size < 128 || size > 1024 || size % 32 !== 0) {
    throw new ModelFormatError(`CenterNet input size must be a multiple of 32 from 128 to 1024, got ${size}`);
  }
}

/**
 * The graph re-targeted to an input of `size` (it is fixed at 512 as shipped): the input shape relaxed and the three
 * int32 resize constants rewritten in a copy of the weight bytes. For the tfjs runtime, which loads JSON + bytes.
 */
export function retargetForTfjs(files: CenterNetFiles, size: number): { model: TfGraphModel; bin: Buffer } {
  checkInputSize(size);
  const model = JSON.parse(JSON.stringify(files.model)) as TfGraphModel;
  const bin = Buffer.from(files.bin);
  const sizes = [size / 16, size / 8, size / 4];
  let offset = 0;
  for (const spec of model.weightsManifest[0]!.weights) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const at = RESIZE_CONSTANTS.indexOf(spec.name as (typeof RESIZE_CONSTANTS)[number]);
    if (at >= 0) {
      bin.writeInt32LE(sizes[at]!, offset);
      bin.writeInt32LE(sizes[at]!, offset + 4);
    }
    offset += count * (spec.dtype === 'int32' || !spec.quantization ? 4 : 2);
  }
  const input = model.modelTopology.node.find((n) => n.op === 'Placeholder');
  const dims = input?.attr?.shape?.shape?.dim as Array<{ size: string }> | undefined;
  if (!dims || dims.length !== 4) throw new ModelFormatError('CenterNet graph has no NHWC input placeholder');
  dims[1] = { size: String(size) };
  dims[2] = { size: String(size) };
  const signature = model.signature as { inputs?: Record<string, { tensorShape?: { dim?: Array<{ size: string }> } }> };
  for (const spec of Object.values(signature.inputs ?? {})) {
    const d = spec.tensorShape?.dim;
    if (d && d.length === 4) {
      d[1] = { size: String(size) };
      d[2] = { size: String(size) };
    }
  }
  return { model, bin };
}
