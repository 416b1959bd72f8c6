import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A line the child wrote to stdout, parsed. */
export type ChildEvent = { readonly type: string } & Readonly<Record<string, unknown>>;

/**
 * A Node child process that reports one JSON object a line on stdout, for tests that need a process they can
 * SIGKILL or SIGTERM (the recorder with node-gtk, the upload queue). Waits are on its events, bounded in time.
 */
export class JsonChild {
  readonly child: ChildProcess;
  readonly events: ChildEvent[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #waiters = new Set<() => void>();

  constructor(script: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(process.execPath, ['--expose-gc', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as ChildEvent);
      } catch {
        this.stderr.push(line);
      }
      for (const waiter of this.#waiters) waiter();
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      resolve({ code, signal });
      for (const waiter of this.#waiters) waiter();
    }));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first event from index `from` that `match` accepts. */
  waitFor(match: (event: ChildEvent) => boolean, timeoutMs = 30_000, from = 0): Promise<ChildEvent> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.slice(from).find(match);
        if (found) {
          done();
          resolve(found);
        } else if (!this.running) {
          done();
          reject(new Error(`child exited (${this.child.exitCode ?? this.child.signalCode}) before the event; stderr:\n${this.stderr.slice(-15).join('\n')}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching event in ${timeoutMs} ms; last events:\n${this.events.slice(-8).map((e) => JSON.stringify(e).slice(0, 300)).join('\n')}\nstderr:\n${this.stderr.slice(-10).join('\n')}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Ends the child with `signal` and waits for it (SIGKILL after `timeoutMs`). */
  async kill(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }
}

/** Writes one event line (the child side). */
export function report(event: ChildEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}
