/**
 * Twin settings of video analysis: `analyzers` (one entry per analyzer) and `decoder`. Parsing is a pure function
 * throwing {@link ConfigError}s that name the key and the value; loading a plugin module to check it is a separate
 * async step ({@link checkAnalyzerModules}) that runs the module in a throw-away process, never in this one.
 *
 * ```json
 * "analyzers": {
 *   "people": { "model": "coco", "classes": ["person", "car"], "fps": 5, "threshold": 0.5 },
 *   "lobby":  { "stream": "video", "module": "/plugins/countHeads.js", "fps": 2, "options": { "zone": [0, 0, 0.5, 1] } }
 * },
 * "decoder": "auto"
 * ```
 * `people` reads the pipeline element `inference name=people` (`element` names another); `lobby` reads the sample
 * hub's stream `video` (a main pipeline's `appsink name=video`).
 */
import { spawn } from 'node:child_process';
import { isAbsolute } from 'node:path';
import { COCO_CLASSES, isCocoClass } from '../analysis/coco.js';
import type { AnalyzerWorkerSpec } from '../ipc/analysis.js';
import type { AnalysisSource, AnalysisTapSpec, DecoderChoice } from '../ipc/protocol.js';
import { DEFAULT_ANALYZER, DEFAULT_DECODER } from './defaults.js';
import { ConfigError } from './errors.js';

/** Twin keys this file reads (for the desired document's list of known keys). */
export const ANALYSIS_KEYS = ['analyzers', 'decoder'] as const;

export const DECODER_CHOICES: readonly DecoderChoice[] = ['auto', 'software', 'nvcodec', 'vaapi', 'v4l2'];
/** Built-in models. */
export const MODELS = ['coco'] as const;
export const RUNTIMES = ['auto', 'onnxruntime', 'tfjs-wasm'] as const;
export const INPUT_SIZES = [320, 416, 512] as const;
/** Analyzers one document may have: each is a process with its model in memory. */
export const MAX_ANALYZERS = 16;

/** One analyzer as configured. */
export interface AnalyzerSettings {
  readonly name: string;
  readonly source: AnalysisSource;
  /** The built-in model, or null with `module`. */
  readonly model: 'coco' | null;
  /** A user's plugin: absolute path of an ES module (see docs/analyzers.md). */
  readonly module: string | null;
  /** Classes to report (COCO names for `coco`); null: all. */
  readonly classes: readonly string[] | null;
  readonly fps: number;
  readonly threshold: number;
  readonly inputSize: (typeof INPUT_SIZES)[number];
  readonly runtime: (typeof RUNTIMES)[number];
  readonly threads: number;
  readonly keyFramesOnly: boolean;
  /** Detection events to IoT Hub: at most `max` per `windowMs`. */
  readonly events: { readonly max: number; readonly windowMs: number };
  readonly options: Readonly<Record<string, unknown>>;
}

export interface AnalysisSettings {
  readonly analyzers: readonly AnalyzerSettings[];
  readonly decoder: DecoderChoice;
}

const ANALYZER_KEYS = new Set(['model', 'module', 'classes', 'fps', 'threshold', 'input_size', 'runtime', 'threads', 'key_frames_only', 'element', 'stream', 'events', 'options']);
const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A value as it may appear in an error message: short, JSON. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function numberIn(value: unknown, fallback: number, where: string, min: number, max: number, integer = false): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new ConfigError(`${where} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}, got ${show(value)}`);
  }
  return value;
}

function oneOf<T extends string>(value: unknown, fallback: T, choices: readonly T[], where: string): T {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new ConfigError(`${where} must be one of ${choices.map((c) => `"${c}"`).join(', ')}, got ${show(value)}`);
  }
  return value as T;
}

function analyzerOf(name: string, value: unknown): AnalyzerSettings {
  const at = `analyzers.${name}`;
  if (!NAME.test(name)) throw new ConfigError(`${at}: an analyzer name is 1-32 letters, digits, '-' or '_', starting with a letter`);
  if (!isObject(value)) throw new ConfigError(`${at} must be an object, got ${show(value)}`);
  for (const key of Object.keys(value)) {
    if (!ANALYZER_KEYS.has(key)) throw new ConfigError(`${at}.${key} is not an analyzer setting (known: ${[...ANALYZER_KEYS].join(', ')})`);
  }
  const moduleValue = value.module ?? null;
  if (moduleValue !== null && (typeof moduleValue !== 'string' || !isAbsolute(moduleValue) || !/\.(m?js)$/.test(moduleValue))) {
    throw new ConfigError(`${at}.module must be the absolute path of a .js or .mjs file, got ${show(moduleValue)}`);
  }
  if (moduleValue !== null && value.model !== undefined && value.model !== null) {
    throw new ConfigError(`${at}: "model" and "module" exclude each other (got model ${show(value.model)} and module ${show(moduleValue)})`);
  }
  const model = moduleValue === null ? oneOf(value.model, DEFAULT_ANALYZER.model, MODELS, `${at}.model`) : null;

  let classes: string[] | null = null;
  if (value.classes !== undefined && value.classes !== null) {
    if (!Array.isArray(value.classes) || value.classes.length === 0 || value.classes.some((c) => typeof c !== 'string' || c === '')) {
      throw new ConfigError(`${at}.classes must be a non-empty list of class names, got ${show(value.classes)}`);
    }
    classes = [...new Set(value.classes as string[])];
    if (model === 'coco') {
      const unknown = classes.find((c) => !isCocoClass(c));
      if (unknown !== undefined) throw new ConfigError(`${at}.classes: ${show(unknown)} is not a COCO class (e.g. ${COCO_CLASSES.slice(0, 4).map((c) => `"${c}"`).join(', ')})`);
    }
  }

  if (value.element !== undefined && value.stream !== undefined) {
    throw new ConfigError(`${at}: "element" and "stream" exclude each other (got element ${show(value.element)} and stream ${show(value.stream)})`);
  }
  let source: AnalysisSource;
  if (value.stream !== undefined && value.stream !== null) {
    if (typeof value.stream !== 'string' || !NAME.test(value.stream)) throw new ConfigError(`${at}.stream must be a stream name (a named appsink), got ${show(value.stream)}`);
    source = { kind: 'stream', stream: value.stream };
  } else {
    const element = value.element ?? name;
    if (typeof element !== 'string' || !NAME.test(element)) throw new ConfigError(`${at}.element must be the name of an inference element, got ${show(element)}`);
    source = { kind: 'element', element };
  }

  const events = value.events ?? {};
  if (!isObject(events)) throw new ConfigError(`${at}.events must be an object with max and window_ms, got ${show(events)}`);
  const options = value.options ?? {};
  if (!isObject(options)) throw new ConfigError(`${at}.options must be an object, got ${show(options)}`);
  const keyFrames = value.key_frames_only ?? DEFAULT_ANALYZER.keyFramesOnly;
  if (typeof keyFrames !== 'boolean') throw new ConfigError(`${at}.key_frames_only must be true or false, got ${show(keyFrames)}`);
  const inputSize = value.input_size ?? DEFAULT_ANALYZER.inputSize;
  if (typeof inputSize !== 'number' || !(INPUT_SIZES as readonly number[]).includes(inputSize)) throw new ConfigError(`${at}.input_size must be one of ${INPUT_SIZES.join(', ')}, got ${show(inputSize)}`);
  const fps = value.fps;
  if (typeof fps === 'number' && fps <= 0) throw new ConfigError(`${at}.fps must be above 0 (frames analysed per second), got ${show(fps)}`);

  return {
    name,
    source,
    model,
    module: moduleValue,
    classes,
    fps: numberIn(fps, DEFAULT_ANALYZER.fps, `${at}.fps`, 0.01, 60),
    threshold: numberIn(value.threshold, DEFAULT_ANALYZER.threshold, `${at}.threshold`, 0, 1),
    inputSize: inputSize as AnalyzerSettings['inputSize'],
    runtime: oneOf(value.runtime, DEFAULT_ANALYZER.runtime, RUNTIMES, `${at}.runtime`),
    threads: numberIn(value.threads, DEFAULT_ANALYZER.threads, `${at}.threads`, 1, 16, true),
    keyFramesOnly: keyFrames,
    events: {
      max: numberIn(events.max, DEFAULT_ANALYZER.events.max, `${at}.events.max`, 0, 10_000, true),
      windowMs: numberIn(events.window_ms, DEFAULT_ANALYZER.events.windowMs, `${at}.events.window_ms`, 100, 3_600_000, true),
    },
    options,
  };
}

/**
 * Reads `analyzers` and `decoder` from a desired document (both optional: no analyzers, `auto`).
 *
 * @example
 * parseAnalysisSettings({ analyzers: { people: { classes: ['person'], fps: 5 } } });
 * // { decoder: 'auto', analyzers: [{ name: 'people', source: { kind: 'element', element: 'people' }, model: 'coco', ... }] }
 * @throws {ConfigError} naming the key and the value, e.g. `analyzers.people.fps must be above 0 ..., got -1`
 */
export function parseAnalysisSettings(desired: Readonly<Record<string, unknown>>): AnalysisSettings {
  const decoder = oneOf(desired.decoder, DEFAULT_DECODER, DECODER_CHOICES, 'decoder');
  const value = desired.analyzers;
  if (value === undefined || value === null) return { analyzers: [], decoder };
  if (!isObject(value)) throw new ConfigError(`analyzers must be an object of name -> analyzer, got ${show(value)}`);
  const count = Object.values(value).filter((entry) => entry !== null).length;
  if (count > MAX_ANALYZERS) throw new ConfigError(`analyzers: at most ${MAX_ANALYZERS} (each runs a process), got ${count}`);
  const analyzers: AnalyzerSettings[] = [];
  const sources = new Map<string, string>();
  for (const [name, entry] of Object.entries(value)) {
    if (entry === null) continue; // a twin patch deletes with null
    const analyzer = analyzerOf(name, entry);
    analyzers.push(analyzer);
    const key = analyzer.source.kind === 'element' ? `element ${analyzer.source.element}` : `stream ${analyzer.source.stream}`;
    // Two analyzers on one source would each decode it: say so rather than double the cost quietly.
    if (sources.has(key)) throw new ConfigError(`analyzers.${name}: ${key} is analysed by ${sources.get(key)} already`);
    sources.set(key, name);
  }
  return { analyzers, decoder };
}

/** What the engine needs for an analyzer's tap. */
export function tapSpecOf(analyzer: AnalyzerSettings): AnalysisTapSpec {
  return { analyzer: analyzer.name, source: analyzer.source, fps: analyzer.fps, inputSize: analyzer.inputSize, keyFramesOnly: analyzer.keyFramesOnly };
}

/** What the analyzer's worker process needs. */
export function workerSpecOf(analyzer: AnalyzerSettings): AnalyzerWorkerSpec {
  return {
    name: analyzer.name,
    camera: analyzer.source.kind === 'element' ? analyzer.source.element : analyzer.source.stream,
    model: analyzer.model,
    module: analyzer.module,
    inputSize: analyzer.inputSize,
    runtime: analyzer.runtime,
    threads: analyzer.threads,
    threshold: analyzer.threshold,
    classes: analyzer.classes,
    options: analyzer.options,
  };
}

/** Analyzers reading an `inference` element that none of these launch lines has (they wait for one: a warning). */
export function analyzersWithoutElement(settings: AnalysisSettings, launches: readonly string[]): string[] {
  return settings.analyzers
    .filter((a) => a.source.kind === 'element')
    .filter((a) => {
      const element = (a.source as { element: string }).element;
      const pattern = new RegExp(`\\binference\\b[^!]*\\bname=["']?${element}["']?(\\s|$|!)`);
      return !launches.some((l) => pattern.test(l));
    })
    .map((a) => a.name);
}

/** The compiled worker (dist/analysis/worker.js), which has a `--check <module>` mode. */
const WORKER = new URL('../analysis/worker.js', import.meta.url);

/**
 * Loads each analyzer's plugin module in a short-lived child process (so users' code never runs in the control
 * plane) and throws a {@link ConfigError} naming the first that does not load.
 */
export async function checkAnalyzerModules(settings: AnalysisSettings, timeoutMs = 15_000): Promise<void> {
  for (const analyzer of settings.analyzers) {
    if (!analyzer.module) continue;
    const path = analyzer.module;
    const reason = await new Promise<string | null>((resolve) => {
      const child = spawn(process.execPath, [WORKER.pathname, '--check', path], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(`did not load within ${timeoutMs} ms`);
      }, timeoutMs);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code === 0 ? null : stderr.trim().split('\n')[0] || `exited with code ${code}`);
      });
    });
    if (reason !== null) throw new ConfigError(`analyzers.${analyzer.name}.module ${show(path)} does not load: ${reason.replace(`${path} does not load: `, '')}`);
  }
}
