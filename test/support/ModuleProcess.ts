import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { StatusDocument } from '../../actors/ControlPlane.js';

/** The compiled CLI (this file is dist/test/support/ModuleProcess.js). */
export const MAIN = new URL('../../main.js', import.meta.url).pathname;

/** The status document as the reported file holds it, with the file's `$version`. */
export type ReportedDocument = StatusDocument & { $version: number };

/** Which reported documents may satisfy a wait. */
export interface WaitForReportedOptions {
  /** Only documents with a greater `$version` count: the version read before the change under test. */
  readonly after: number;
  readonly timeoutMs?: number;
}

/** One pino log line of the module. */
export type LogLine = Record<string, unknown> & { msg: string; level: number };

export interface ModuleProcessOptions {
  /** The desired object (written as {"properties":{"desired": ...}}). */
  readonly desired: Record<string, unknown>;
  readonly env?: NodeJS.ProcessEnv;
  readonly args?: readonly string[];
  /** Pass `--twin <file>` (default); false for IoT Hub mode, where the twin comes from the hub. */
  readonly twinFile?: boolean;
}

/**
 * The module as a user runs it: `node dist/main.js --twin <file>` in its own process, with its log lines parsed
 * so tests wait on events (a log line) instead of sleeping.
 */
export class ModuleProcess {
  readonly dir: string;
  readonly twinPath: string;
  readonly reportedPath: string;
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  /** Raw stdout and stderr lines, to check that no secret appears anywhere. */
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The highest desired `$version` written so far. */
  #desiredVersion = 0;
  /** Waiters for log lines. */
  readonly #waiters = new Set<{ predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }>();

  constructor(options: ModuleProcessOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'gst-iotedge-test-'));
    this.twinPath = join(this.dir, 'twin.json');
    this.reportedPath = join(this.dir, 'twin.reported.json');
    this.writeDesired(options.desired);
    const twinArgs = options.twinFile === false ? [] : ['--twin', this.twinPath];
    this.child = spawn(process.execPath, [MAIN, ...twinArgs, ...(options.args ?? [])], {
      env: { ...process.env, LOG_LEVEL: 'debug', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.#onLine(line));
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.output.push(line));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  #onLine(line: string): void {
    this.output.push(line);
    let parsed: LogLine;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {
      return;
    }
    this.logs.push(parsed);
    for (const waiter of this.#waiters) {
      if (waiter.predicate(parsed)) {
        this.#waiters.delete(waiter);
        waiter.resolve(parsed);
      }
    }
  }

  /**
   * Writes the twin file. Unless `desired` carries its own `$version`, it gets the next one (1, 2, ...), as IoT Hub
   * numbers desired documents; returns it, so a test can wait for `config.appliedVersion` (or `rejectedVersion`)
   * to be that document's and not an earlier one's.
   */
  writeDesired(desired: Record<string, unknown>): number {
    const version = typeof desired.$version === 'number' ? desired.$version : this.#desiredVersion + 1;
    this.#desiredVersion = Math.max(this.#desiredVersion, version);
    writeFileSync(this.twinPath, JSON.stringify({ properties: { desired: { ...desired, $version: version } } }, null, 2));
    return version;
  }

  /**
   * Resolves with the first log line (from line number `from` on) that matches; rejects after `timeoutMs` with
   * the recent log so a failure says what happened instead.
   */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 20_000, from = 0): Promise<LogLine> {
    const seen = this.logs.slice(from).find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (line: LogLine) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        const recent = this.output.slice(-15).join('\n');
        reject(new Error(`no matching log line within ${timeoutMs} ms; recent output:\n${recent}`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Waits for a pipeline to enter a state (from log line `from` on). */
  waitForPipeline(pipeline: string, state: string, timeoutMs = 20_000, from = 0): Promise<LogLine> {
    return this.waitForLog((l) => l.event === 'pipeline-state' && l.pipeline === pipeline && l.state === state, timeoutMs, from);
  }

  /** The reported properties file, as written last. */
  reported(): { properties: { reported: ReportedDocument } } {
    return JSON.parse(readFileSync(this.reportedPath, 'utf8'));
  }

  /**
   * The `$version` of the reported document written last (0 before the first): take it before a change and pass
   * it as `after` to {@link waitForReported}, so that no document written before the change can satisfy the wait.
   */
  reportedVersion(): number {
    try {
      return this.reported().properties.reported.$version;
    } catch {
      return 0;
    }
  }

  /**
   * Waits until the reported file satisfies `predicate` with a document newer than `after` (a
   * {@link reportedVersion} taken before the change under test). Event-driven: a watch on its folder.
   */
  waitForReported(predicate: (reported: ReportedDocument) => boolean, options: WaitForReportedOptions): Promise<ReportedDocument> {
    const { after, timeoutMs = 20_000 } = options;
    let last = '';
    return waitForFileCondition(this.reportedPath, () => {
      const reported = this.reported().properties.reported;
      last = JSON.stringify(reported);
      return reported.$version > after && predicate(reported) ? reported : undefined;
    }, timeoutMs, () => `last reported: ${last.slice(0, 2_000)}`);
  }

  /** Stops the module (SIGTERM) and waits for it to exit. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

/**
 * Resolves with `check()`'s first defined result, evaluated now and on every change in the file's folder;
 * rejects after `timeoutMs`. A read that throws (file missing or half written) counts as not yet.
 */
export function waitForFileCondition<T>(path: string, check: () => T | undefined, timeoutMs: number, describe?: () => string): Promise<T> {
  return new Promise((resolve, reject) => {
    const attempt = (): boolean => {
      try {
        const value = check();
        if (value === undefined) return false;
        finish();
        resolve(value);
        return true;
      } catch {
        return false;
      }
    };
    const watcher = watch(dirname(path), (_event, file) => {
      if (file === null || file.startsWith(basename(path))) attempt();
    });
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`${path}: condition not met within ${timeoutMs} ms${describe ? `; ${describe()}` : ''}`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      watcher.close();
    };
    attempt();
  });
}

/** Waits until a file exists with at least `minBytes`. */
export function waitForFileSize(path: string, minBytes: number, timeoutMs = 15_000): Promise<number> {
  return waitForFileCondition(path, () => {
    const size = statSync(path).size;
    return size >= minBytes ? size : undefined;
  }, timeoutMs);
}
