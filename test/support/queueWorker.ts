/**
 * The control plane's recording side alone in a process the test can SIGKILL: `node queueWorker.js '<json>'`
 * opens {@link Recordings} for a `record` setting, queues the given files, and reports the queue's observer
 * events on stdout, one JSON object a line. stdin closing closes the queue and exits.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { report } from './jsonChild.js';

export const QUEUE_WORKER = fileURLToPath(import.meta.url);

export interface QueueWorkerOptions {
  readonly stateDir: string;
  readonly record: unknown;
  readonly env: NodeJS.ProcessEnv;
  readonly add?: ReadonlyArray<{ path: string; stream: string; startMs: number; durationMs: number }>;
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as QueueWorkerOptions;
  const { parseRecordSettings } = await import('../../recording/settings.js');
  const { Recordings } = await import('../../recording/Recordings.js');
  const { Redactor } = await import('../../config/redact.js');
  const { settings, secrets } = parseRecordSettings(options.record, options.env);
  const redactor = new Redactor();
  redactor.add(secrets);
  const recordings = await Recordings.open(settings!, { stateDir: options.stateDir, redact: (t) => redactor.redact(t) });
  const o = recordings.observer;
  o.on('queued', (e) => report({ type: 'queued', id: e.id, source: e.source }));
  o.on('upload-started', (e) => report({ type: 'upload-started', id: e.segment.id, target: e.target, resumed: e.resumed }));
  o.on('upload-progress', (e) => report({ type: 'upload-progress', ...e }));
  o.on('upload-done', (e) => report({ type: 'upload-done', ...e }));
  o.on('uploaded', (e) => report({ ...e }));
  o.on('upload-retry', (e) => report({ type: 'upload-retry', ...e }));
  o.on('log', (e) => report({ type: 'log', ...e }));
  await recordings.start();
  for (const segment of options.add ?? []) await recordings.queue.add(segment);
  report({ type: 'ready', pid: process.pid, entries: recordings.queue.entries().length });
  process.stdin.resume();
  process.stdin.on('end', () => {
    void recordings.close().finally(() => process.exit(0));
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    report({ type: 'error', error: String(error) });
    process.exit(1);
  });
}
