import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * The Node side of the benchmarks' python3-gi helpers (bench/support/gstlines.py): their stderr goes to ours,
 * prefixed with `label` (libnice's UPnP warnings dropped: with no gateway here every webrtcbin says it, noise);
 * every JSON line of their stdout other than `{"op":"ready"}` goes to `onLine`. Resolves at `ready`; rejects when
 * the process exits before it.
 */
export function helperReady<T extends { op: string }>(child: ChildProcess, label: string, onLine: (line: T) => void): Promise<void> {
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (line.trim() !== '' && !/gupnp/i.test(line)) process.stderr.write(`${label}: ${line}\n`);
  });
  return new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const parsed = jsonOrNull(line) as T | null;
      if (parsed === null || typeof parsed !== 'object') return;
      if (parsed.op === 'ready') resolve();
      else onLine(parsed);
    });
    child.once('exit', (code) => reject(new Error(`${label} exited (${code}) before it was ready`)));
  });
}

/** The value of a JSON text; null when it is not JSON (a helper's stray line, a socket's garbage). */
export function jsonOrNull(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
