/**
 * An analyzer's own process, forked by the control plane (actors/AnalyzerSupervisor.ts), one per analyzer. It loads
 * the model (the built-in CenterNet or a user's plugin module), reads frames from the engine's analysis socket,
 * analyses the newest one whenever the previous is done, and reports results and counters over IPC. Nothing here
 * loads node-gtk: a model that crashes, hangs or leaks costs a restart of this process only.
 *
 * `node worker.js --check <module>` only loads a plugin module and exits 0 (or 1, with the reason on stderr): the
 * control plane's way to check a twin's `module` path without running users' code in its own process.
 */
import { isAnalyzerCommand, type AnalyzerReport, type AnalyzerWorkerSpec } from '../ipc/analysis.js';
import { CenterNetDetector } from './centernet/CenterNetDetector.js';
import { FrameReader } from './FrameReader.js';
import { loadAnalyzerPlugin } from './plugin.js';
import type { Analyzer, FrameResult } from './types.js';

function send(report: AnalyzerReport): void {
  if (process.connected) process.send?.(report);
}

function log(level: 'debug' | 'info' | 'warn' | 'error', msg: string): void {
  send({ type: 'log', level, msg });
}

async function makeAnalyzer(spec: AnalyzerWorkerSpec): Promise<{ analyzer: Analyzer; runtime: string }> {
  if (spec.module) {
    const factory = await loadAnalyzerPlugin(spec.module);
    const analyzer = await factory({ name: spec.name, inputSize: spec.inputSize, threshold: spec.threshold, classes: spec.classes, options: spec.options, log });
    return { analyzer, runtime: `plugin ${spec.module}` };
  }
  const detector = await CenterNetDetector.create({ inputSize: spec.inputSize, runtime: spec.runtime, threads: spec.threads, threshold: spec.threshold, classes: spec.classes });
  return { analyzer: detector, runtime: detector.runtime };
}

async function run(spec: AnalyzerWorkerSpec, reader: FrameReader): Promise<never> {
  const t0 = performance.now();
  const { analyzer, runtime } = await makeAnalyzer(spec);
  send({ type: 'ready', pid: process.pid, runtime, loadMs: Math.round(performance.now() - t0) });
  let analyzed = 0;
  let busySince = 0;
  setInterval(() => {
    const { received, dropped, connected } = reader.stats;
    send({ type: 'stats', stats: { received, analyzed, dropped, connected, busyMs: busySince ? Math.round(performance.now() - busySince) : 0 } });
  }, 1_000);
  const threshold = spec.threshold;
  const classes = spec.classes ? new Set(spec.classes) : null;
  for (;;) {
    const frame = await reader.next();
    busySince = performance.now();
    const { detections } = await analyzer.analyze(frame);
    const latencyMs = performance.now() - busySince;
    busySince = 0;
    analyzed++;
    // Plugins get the threshold and classes too; filtering here makes both kinds report the same way.
    const kept = detections.filter((d) => d.score >= threshold && (!classes || classes.has(d.class)));
    const result: FrameResult = {
      analyzer: spec.name,
      camera: frame.camera,
      sequence: frame.sequence,
      timestamp: new Date(frame.receivedAt).toISOString(),
      width: frame.width,
      height: frame.height,
      latencyMs: Math.round(latencyMs * 100) / 100,
      detections: kept,
    };
    send({ type: 'result', result });
  }
}

function main(): void {
  const checkAt = process.argv.indexOf('--check');
  if (checkAt >= 0) {
    loadAnalyzerPlugin(process.argv[checkAt + 1] ?? '').then(
      () => process.exit(0),
      (error: Error) => {
        process.stderr.write(`${error.message}\n`);
        process.exit(1);
      },
    );
    return;
  }
  let reader: FrameReader | null = null;
  let pendingSource: { host: string; port: number } | null = null;
  process.on('message', (message: unknown) => {
    if (!isAnalyzerCommand(message)) return;
    if (message.type === 'init' && !reader) {
      reader = new FrameReader(message.spec.camera);
      reader.on('error', () => undefined); // reconnects by itself; refused connections while a tap restarts are normal
      reader.setSource(pendingSource);
      // A model that fails to load or an analyze() that throws ends the process: the supervisor restarts it.
      run(message.spec, reader).catch((error: Error) => {
        process.stderr.write(`analyzer ${message.spec.name} failed: ${error.stack ?? error.message}\n`);
        process.exit(1);
      });
    } else if (message.type === 'source') {
      pendingSource = message.port === null ? null : { host: message.host, port: message.port };
      reader?.setSource(pendingSource);
    } else if (message.type === 'shutdown') {
      reader?.close();
      process.exit(0);
    }
  });
  // The control plane is gone: nobody is left to report to.
  process.on('disconnect', () => process.exit(0));
}

main();
