/**
 * A media engine for analysis tests and the benchmark: the real engine parts (PipelineRunner, SampleHub,
 * AnalysisTaps, decoder ranks) in a node-gtk child process, driven over fork IPC with the messages the lead adds to
 * ipc/protocol.ts, so tests exercise the same code the module's engine runs without the control plane around it.
 *
 * This one file is both the child's script (`node analysisEngine.js`, node-gtk loaded only then) and the
 * {@link AnalysisEngine} class that tests import to fork and drive it.
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GST_PLUGIN_DIR, gstPluginPath } from '../../analysis/paths.js';
import type { EngineEvent } from '../../ipc/protocol.js';
import type { AnalysisEngineCommand, AnalysisEngineEvent, DecoderChoice } from '../../ipc/analysis.js';

/** The module's own GStreamer plugins (the `inference` element), built by scripts/build-analysis.sh. */
export const PLUGIN_DIR = GST_PLUGIN_DIR;

export type HarnessCommand =
  | AnalysisEngineCommand
  | { type: 'start'; pipeline: string; launch: string }
  | { type: 'stop'; pipeline: string }
  /** Applies a decoder choice with test-made families (`pattern` sources) and reports ranks of `factories`. */
  | { type: 'ranks'; id: number; choice: DecoderChoice; families?: Record<string, string>; factories: string[] };

export type HarnessEvent =
  | AnalysisEngineEvent
  | EngineEvent
  | { type: 'ranks'; id: number; result: { raised: string[]; lowered: string[]; missing: string[] }; ranks: Record<string, number | null>; hardware: Record<string, number> }
  | { type: 'hub'; streams: Record<string, { buffers: number; bytes: number; caps: string | null }>; at: number };

/**
 * A forked analysis engine under a test's control.
 *
 * @example
 * const engine = await AnalysisEngine.start();
 * engine.send({ type: 'analysis', taps: [spec], decoder: 'auto' });
 * engine.send({ type: 'start', pipeline: 'main', launch: '... ! inference name=people ! fakesink' });
 * const tap = await engine.waitFor((e) => e.type === 'analysis-tap' && e.port !== null);
 */
export class AnalysisEngine {
  readonly #child: ChildProcess;
  /** Every event so far, in order. */
  readonly events: HarnessEvent[] = [];
  readonly #waiters = new Set<() => void>();
  #exited = false;
  stderr = '';

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (message: HarnessEvent) => {
      this.events.push(message);
      for (const wake of [...this.#waiters]) wake();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-32_768);
    });
    child.on('exit', () => {
      this.#exited = true;
      for (const wake of [...this.#waiters]) wake();
    });
  }

  static async start(env: NodeJS.ProcessEnv = {}): Promise<AnalysisEngine> {
    // The test runner marks its children with NODE_TEST_CONTEXT; the script would take itself for a test file.
    const inherited = { ...process.env };
    delete inherited['NODE_TEST_CONTEXT'];
    const child = fork(fileURLToPath(import.meta.url), [], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'json',
      execArgv: ['--expose-gc'],
      env: { ...inherited, GST_PLUGIN_PATH: gstPluginPath(process.env), ...env },
    });
    const engine = new AnalysisEngine(child);
    await engine.waitFor((e) => e.type === 'ready', 20_000);
    return engine;
  }

  get pid(): number {
    return this.#child.pid!;
  }

  send(command: HarnessCommand): void {
    this.#child.send(command);
  }

  /** Resolves with the first event from index `from` on that matches, or rejects after `timeoutMs`. */
  waitFor<T extends HarnessEvent>(match: (event: HarnessEvent) => event is T, timeoutMs?: number, from?: number): Promise<T>;
  waitFor(match: (event: HarnessEvent) => boolean, timeoutMs?: number, from?: number): Promise<HarnessEvent>;
  waitFor(match: (event: HarnessEvent) => boolean, timeoutMs = 20_000, from = 0): Promise<HarnessEvent> {
    return new Promise((resolvePromise, reject) => {
      const check = () => {
        const found = this.events.slice(from).find(match);
        if (found) {
          done();
          resolvePromise(found);
        } else if (this.#exited) {
          done();
          reject(new Error(`analysis engine exited while waiting\n${this.stderr.slice(-2000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching analysis engine event in ${timeoutMs} ms; last events: ${JSON.stringify(this.events.slice(-5))}\n${this.stderr.slice(-2000)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((r) => this.#child.once('exit', () => r()));
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** The child: GStreamer through node-gtk, only here. */
async function runEngine(): Promise<void> {
  const { GLib, Gst } = await import('../../media/gst.js');
  const { PipelineRunner } = await import('../../media/PipelineRunner.js');
  const { SampleHub } = await import('../../media/SampleHub.js');
  const { AnalysisTaps } = await import('../../media/AnalysisTap.js');
  const { applyDecoderChoice, DECODER_FAMILIES } = await import('../../media/decoderRanks.js');
  const send = (event: HarnessEvent) => {
    if (process.connected) process.send?.(event);
  };
  Gst.init(null);
  const hub = new SampleHub();
  const analysis = new AnalysisTaps(hub, send);
  const runners = new Map<string, InstanceType<typeof PipelineRunner>>();
  let run = 0;
  process.on('message', (command: HarnessCommand) => {
    try {
      if (command.type === 'analysis') analysis.configure(command.taps, command.decoder);
      else if (command.type === 'start') {
        const runner = new PipelineRunner(command.pipeline, ++run, command.launch, send, () => runners.delete(command.pipeline), hub);
        for (const detach of analysis.attach(runner.pipeline)) runner.beforeNull(detach);
        runners.set(command.pipeline, runner);
        runner.play();
      } else if (command.type === 'stop') runners.get(command.pipeline)?.stop(true, 3_000);
      else if (command.type === 'ranks') {
        const families = command.families
          ? (Object.fromEntries(Object.entries(command.families).map(([k, v]) => [k, new RegExp(v)])) as Parameters<typeof applyDecoderChoice>[1])
          : undefined;
        const result = applyDecoderChoice(command.choice, families);
        const ranks = Object.fromEntries(command.factories.map((f) => [f, Gst.ElementFactory.find(f)?.getRank() ?? null]));
        // Every registered video decoder of a hardware family (by the module's own patterns) and its rank now.
        const hardware: Record<string, number> = {};
        const list = Gst.ElementFactory.listGetElements(Gst.ELEMENT_FACTORY_TYPE_DECODER | Gst.ELEMENT_FACTORY_TYPE_MEDIA_VIDEO, Gst.Rank.NONE) as Array<InstanceType<typeof Gst.ElementFactory>>;
        for (const factory of list) {
          const name = factory.getName() ?? '';
          if (Object.values(DECODER_FAMILIES).some((pattern) => pattern.test(name))) hardware[name] = factory.getRank();
        }
        send({ type: 'ranks', id: command.id, result, ranks, hardware });
      }
    } catch (error) {
      send({ type: 'log', level: 'error', msg: `harness: ${(error as Error).message}` });
    }
  });
  setInterval(() => send({ type: 'hub', streams: hub.stats(), at: Date.now() }), 1_000).unref();
  const collect = (globalThis as { gc?: (options?: { type: 'minor' | 'major' }) => void }).gc;
  if (collect) setInterval(() => collect({ type: 'minor' }), 2_000).unref();
  process.on('SIGTERM', () => {
    analysis.close();
    for (const runner of runners.values()) runner.stop(false, 0);
    setTimeout(() => process.exit(0), 200);
  });
  process.on('disconnect', () => process.exit(0));
  const loop = GLib.MainLoop.new(null, false);
  send({ type: 'ready', pid: process.pid, gstVersion: Gst.versionString() });
  setImmediate(() => loop.run());
}

function isMainScript(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(resolve(script)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainScript() && process.env['NODE_TEST_CONTEXT'] === undefined) {
  void runEngine();
}
