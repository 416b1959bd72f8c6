/**
 * Converts `@vladmandic/human`'s CenterNet tfjs graph into an ONNX model (opset 13) for onnxruntime-node, at set-up
 * time (scripts/setup.sh) from the installed npm package: no download, same bytes for the same input (no
 * timestamps, nodes in graph order). Only the network is converted, up to its two heads:
 *   input  `images`    float32 NCHW [1, 3, S, S], RGB 0-255 (not normalised), S any multiple of 32
 *   output `keypoints` float32 [1, 80, S/4, S/4], per-class sigmoid heat map
 *   output `wh`        float32 [1, 4, S/4, S/4], distances (left, top, right, bottom) in input pixels
 * The graph's own decoding (3x3 peak, top-k, boxes) runs in JS (decode.ts): TopK/Gather on 80 classes cost more
 * to express in ONNX than they save. NHWC becomes NCHW: weights are transposed here, activations never are.
 * The shipped graph fixes its upsampling targets for 512; here they are 2x scales, so one file serves every size.
 *
 * Run: `node dist/analysis/centernet/toOnnx.js <out.onnx>` (skips when `out` was made from the same inputs); it also
 * copies the tfjs graph beside it, for the tfjs-wasm runtime (arm32v7), so the image needs no `@vladmandic/human`.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { onnx as OnnxNamespace } from 'onnx-proto';
import { ModelFormatError, RESIZE_CONSTANTS, readCenterNet, type CenterNetFiles, type TfAttr, type TfNode } from './graph.js';

const require = createRequire(import.meta.url);

/** Output names of the ONNX model (the tfjs graph's `tower_0/keypoints` and `tower_0/wh`). */
export const ONNX_INPUT = 'images';
export const ONNX_OUTPUTS = { keypoints: 'keypoints', wh: 'wh' } as const;
const TF_OUTPUTS: Record<string, string> = { 'tower_0/keypoints': ONNX_OUTPUTS.keypoints, 'tower_0/wh': ONNX_OUTPUTS.wh };

const FLOAT = 1;
const INT64 = 7;
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

type Attribute = OnnxNamespace.IAttributeProto;

function ints(name: string, values: readonly number[]): Attribute {
  return { name, type: ATTR.INTS, ints: [...values] };
}
function int(name: string, value: number): Attribute {
  return { name, type: ATTR.INT, i: value };
}
function str(name: string, value: string): Attribute {
  return { name, type: ATTR.STRING, s: new TextEncoder().encode(value) };
}

function attrInts(node: TfNode, key: string): number[] {
  return (node.attr?.[key]?.list?.i ?? []).map(Number);
}
function attrString(attr: TfAttr | undefined): string {
  return attr?.s ? Buffer.from(attr.s, 'base64').toString() : '';
}

/** Name of the tensor a tfjs input refers to (`node:1` is output 1; only output 0 is used here). */
function tensorName(input: string): string {
  const name = input.replace(/^\^/, '');
  const [base, index] = name.split(':');
  if (index && index !== '0') throw new ModelFormatError(`input ${input}: only first outputs are supported`);
  return TF_OUTPUTS[base!] ?? base!;
}

/** The nodes the two heads depend on, in graph order. */
function neededNodes(nodes: readonly TfNode[]): TfNode[] {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const needed = new Set<string>();
  const stack = Object.keys(TF_OUTPUTS);
  while (stack.length > 0) {
    const name = stack.pop()!.replace(/^\^/, '').split(':')[0]!;
    if (needed.has(name)) continue;
    needed.add(name);
    const node = byName.get(name);
    if (!node) throw new ModelFormatError(`graph has no node ${name}`);
    stack.push(...(node.input ?? []));
  }
  return nodes.filter((n) => needed.has(n.name));
}

/** A float32 initializer from values and shape. */
function floatTensor(name: string, dims: readonly number[], data: Float32Array): OnnxNamespace.ITensorProto {
  return { name, dims: [...dims], dataType: FLOAT, rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) };
}

/** TF conv kernel [kh, kw, in, out] -> ONNX [out, in, kh, kw]. */
function convKernel(shape: readonly number[], data: Float32Array): { dims: number[]; data: Float32Array } {
  const [kh, kw, cin, cout] = shape as [number, number, number, number];
  const out = new Float32Array(data.length);
  for (let h = 0; h < kh; h++)
    for (let w = 0; w < kw; w++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + h) * kw + w] = data[((h * kw + w) * cin + i) * cout + o]!;
  return { dims: [cout, cin, kh, kw], data: out };
}

/** TF depthwise kernel [kh, kw, in, multiplier] -> ONNX grouped conv [in*multiplier, 1, kh, kw]. */
function depthwiseKernel(shape: readonly number[], data: Float32Array): { dims: number[]; data: Float32Array } {
  const [kh, kw, cin, mult] = shape as [number, number, number, number];
  const out = new Float32Array(data.length);
  for (let h = 0; h < kh; h++)
    for (let w = 0; w < kw; w++)
      for (let i = 0; i < cin; i++)
        for (let m = 0; m < mult; m++) out[((i * mult + m) * kh + h) * kw + w] = data[((h * kw + w) * cin + i) * mult + m]!;
  return { dims: [cin * mult, 1, kh, kw], data: out };
}

/** NHWC axis -> NCHW axis. */
const NCHW_AXIS = [0, 2, 3, 1];

/** Builds the ONNX model bytes. */
export function convertCenterNet(files: CenterNetFiles): Uint8Array {
  const { onnx } = require('onnx-proto') as { onnx: typeof OnnxNamespace };
  const weights = files.weights;
  const initializers: OnnxNamespace.ITensorProto[] = [];
  const out: OnnxNamespace.INodeProto[] = [];
  const constant = (name: string) => {
    const w = weights.get(name);
    if (!w) throw new ModelFormatError(`constant ${name} not in the weights`);
    return w;
  };
  const floatConst = (name: string) => {
    const w = constant(name);
    if (w.dtype !== 'float32') throw new ModelFormatError(`constant ${name} is ${w.dtype}, float32 expected`);
    return w;
  };
  const shared = new Set<string>();
  const addInitializer = (tensor: OnnxNamespace.ITensorProto) => {
    if (shared.has(tensor.name!)) return;
    shared.add(tensor.name!);
    initializers.push(tensor);
  };
  // Scalars used by Clip (Relu6) and the 2x upsampling.
  addInitializer(floatTensor('const/zero', [], new Float32Array([0])));
  addInitializer(floatTensor('const/six', [], new Float32Array([6])));
  addInitializer(floatTensor('const/scales2x', [4], new Float32Array([1, 1, 2, 2])));

  const conv = (node: TfNode, depthwise: boolean, fused: boolean) => {
    const [x, kernelName, biasName] = node.input ?? [];
    const kernel = floatConst(kernelName!);
    const k = depthwise ? depthwiseKernel(kernel.shape, kernel.data) : convKernel(kernel.shape, kernel.data);
    const wName = `${kernelName}/oihw`;
    addInitializer(floatTensor(wName, k.dims, k.data));
    const inputs = [tensorName(x!), wName];
    const fusedOps = fused ? (node.attr?.fused_ops?.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString()) : [];
    if (fusedOps[0] === 'BiasAdd') {
      const bias = floatConst(biasName!);
      addInitializer(floatTensor(biasName!, bias.shape, bias.data));
      inputs.push(biasName!);
    } else if (fusedOps.length > 0) {
      throw new ModelFormatError(`${node.name}: fused ops ${fusedOps.join(',')} not supported`);
    }
    const strides = attrInts(node, 'strides');
    const dilations = attrInts(node, 'dilations');
    const padding = attrString(node.attr?.padding);
    if (attrString(node.attr?.data_format) !== 'NHWC') throw new ModelFormatError(`${node.name}: only NHWC convolutions`);
    const activation = fusedOps[1];
    const convOut = activation ? `${node.name}/conv` : node.name;
    out.push({
      name: `${node.name}/Conv`,
      opType: 'Conv',
      input: inputs,
      output: [convOut],
      attribute: [
        // TensorFlow's SAME pads the extra row/column at the end: ONNX's SAME_UPPER.
        str('auto_pad', padding === 'SAME' ? 'SAME_UPPER' : 'VALID'),
        ints('strides', [strides[1] ?? 1, strides[2] ?? 1]),
        ints('dilations', [dilations[1] ?? 1, dilations[2] ?? 1]),
        ints('kernel_shape', k.dims.slice(2)),
        int('group', depthwise ? kernel.shape[2]! : 1),
      ],
    });
    if (activation === 'Relu') out.push({ name: `${node.name}/Relu`, opType: 'Relu', input: [convOut], output: [node.name] });
    else if (activation === 'Relu6') out.push({ name: `${node.name}/Clip`, opType: 'Clip', input: [convOut, 'const/zero', 'const/six'], output: [node.name] });
    else if (activation) throw new ModelFormatError(`${node.name}: fused activation ${activation} not supported`);
  };

  /** A float scalar operand of Mul/Add (all of this graph's are scalars), or an activation. */
  const operand = (input: string) => {
    const w = weights.get(input);
    if (!w) return tensorName(input);
    if (w.dtype !== 'float32' || w.data.length !== 1) throw new ModelFormatError(`operand ${input}: only float scalars are supported`);
    addInitializer(floatTensor(input, [], w.data));
    return input;
  };

  const graphNodes = neededNodes(files.model.modelTopology.node);
  for (const node of graphNodes) {
    const inputs = node.input ?? [];
    const name = TF_OUTPUTS[node.name] ?? node.name;
    switch (node.op) {
      case 'Const':
      case 'Placeholder':
        break;
      case '_FusedConv2D':
        conv(node, false, true);
        break;
      case 'Conv2D':
        conv(node, false, false);
        break;
      case 'FusedDepthwiseConv2dNative':
        conv(node, true, true);
        break;
      case 'DepthwiseConv2dNative':
        conv(node, true, false);
        break;
      case 'Mul':
      case 'Add':
      case 'Sub':
        out.push({ name: node.name, opType: node.op, input: inputs.map(operand), output: [name] });
        break;
      case 'Relu':
      case 'Sigmoid':
      case 'Identity':
        out.push({ name: node.name, opType: node.op, input: [tensorName(inputs[0]!)], output: [name] });
        break;
      case 'Relu6':
        out.push({ name: node.name, opType: 'Clip', input: [tensorName(inputs[0]!), 'const/zero', 'const/six'], output: [name] });
        break;
      case 'Mean': {
        const axes = Array.from(constant(inputs[1]!).data);
        if (axes.join() !== '1,2' || node.attr?.keep_dims?.b !== true) throw new ModelFormatError(`${node.name}: only a spatial mean with keep_dims`);
        out.push({ name: node.name, opType: 'GlobalAveragePool', input: [tensorName(inputs[0]!)], output: [name] });
        break;
      }
      case 'ConcatV2': {
        const axisName = inputs[inputs.length - 1]!;
        const axis = constant(axisName).data[0]!;
        out.push({
          name: node.name,
          opType: 'Concat',
          input: inputs.slice(0, -1).map(tensorName),
          output: [name],
          attribute: [int('axis', NCHW_AXIS[(axis + 4) % 4]!)],
        });
        break;
      }
      case 'ResizeBilinear': {
        if (!RESIZE_CONSTANTS.includes(inputs[1] as (typeof RESIZE_CONSTANTS)[number])) throw new ModelFormatError(`${node.name}: unexpected size input`);
        if (node.attr?.align_corners?.b || node.attr?.half_pixel_centers?.b) throw new ModelFormatError(`${node.name}: only asymmetric resize`);
        // align_corners=false, half_pixel_centers=false is ONNX's "asymmetric"; 2x because the graph doubles each time.
        out.push({
          name: node.name,
          opType: 'Resize',
          input: [tensorName(inputs[0]!), '', 'const/scales2x'],
          output: [name],
          attribute: [str('mode', 'linear'), str('coordinate_transformation_mode', 'asymmetric')],
        });
        break;
      }
      default:
        throw new ModelFormatError(`${node.name}: op ${node.op} not supported by the converter`);
    }
  }
  const placeholder = graphNodes.find((n) => n.op === 'Placeholder');
  if (!placeholder) throw new ModelFormatError('graph has no input');
  // The input is NCHW here: the first conv reads it under the placeholder's name.
  for (const node of out) node.input = node.input!.map((i) => (i === placeholder.name ? ONNX_INPUT : i));
  const dim = (value: number | string) => (typeof value === 'number' ? { dimValue: value } : { dimParam: value });
  const valueInfo = (name: string, dims: Array<number | string>) => ({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map(dim) } } },
  });
  const model: OnnxNamespace.IModelProto = {
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'gst-iotedge',
    producerVersion: '1',
    docString: 'CenterNet (MobileNetV3, COCO-80) converted from @vladmandic/human models/centernet.json; upstream weights state no licence',
    graph: {
      name: 'centernet',
      node: out,
      initializer: initializers,
      input: [valueInfo(ONNX_INPUT, [1, 3, 'height', 'width'])],
      output: [valueInfo(ONNX_OUTPUTS.keypoints, [1, 80, 'h4', 'w4']), valueInfo(ONNX_OUTPUTS.wh, [1, 4, 'h4', 'w4'])],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.fromObject(model)).finish();
}

/** Hash of what the ONNX file is made from: the model files and this converter. */
export function conversionKey(files: CenterNetFiles): string {
  return createHash('sha1').update(JSON.stringify(files.model)).update(files.bin).update(readFileSync(fileURLToPath(import.meta.url))).digest('hex');
}

/** Writes the ONNX model to `path` unless a `path.key` beside it says it was made from the same inputs. */
export function writeCenterNetOnnx(path: string, files: CenterNetFiles = readCenterNet()): { written: boolean; key: string } {
  const key = conversionKey(files);
  const keyFile = `${path}.key`;
  if (existsSync(path) && existsSync(keyFile) && readFileSync(keyFile, 'utf8') === key) return { written: false, key };
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, convertCenterNet(files));
  renameSync(`${path}.tmp`, path);
  writeFileSync(keyFile, key);
  return { written: true, key };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = process.argv[2];
  if (!target) {
    console.error('usage: toOnnx.js <out.onnx>');
    process.exit(2);
  }
  const files = readCenterNet();
  const { written } = writeCenterNetOnnx(target, files);
  for (const name of ['centernet.json', 'centernet.bin']) {
    const copy = join(dirname(target), name);
    if (written || !existsSync(copy)) copyFileSync(join(files.dir, name), copy);
  }
  if (written) console.error(`[setup] wrote ${target}`);
}
