import { watch, type FSWatcher } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** What a read of the twin file gives: its parsed JSON, or why it could not be read. */
export type TwinFileContent = { ok: true; document: unknown } | { ok: false; error: string };

/** Editors save in bursts (truncate, write, rename): wait this long after the last event before reading. */
const SETTLE_MS = 15;

/**
 * Watches a twin file and calls `onContent` with its JSON at start and after every change that alters it.
 * The folder is watched rather than the file, because editors replace files by renaming over them.
 * Returns a function that stops watching.
 */
export function watchTwinFile(path: string, onContent: (content: TwinFileContent) => void): () => void {
  let last: string | null = null;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const read = async () => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (closed) return;
      const message = `cannot read twin file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;
      if (last !== message) onContent({ ok: false, error: message });
      last = message;
      return;
    }
    if (closed || text === last) return;
    last = text;
    try {
      onContent({ ok: true, document: JSON.parse(text) as unknown });
    } catch (error) {
      onContent({ ok: false, error: `twin file ${path} is not valid JSON: ${(error as Error).message}` });
    }
  };
  const name = basename(path);
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dirname(path), (_event, file) => {
      if (file !== null && file !== name) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => void read(), SETTLE_MS);
    });
  } catch (error) {
    onContent({ ok: false, error: `cannot watch twin file ${path}: ${String(error)}` });
  }
  void read();
  return () => {
    closed = true;
    if (timer) clearTimeout(timer);
    watcher?.close();
  };
}

/** `twin.json` -> `twin.reported.json`, beside it. */
export function reportedPathFor(twinPath: string): string {
  const base = basename(twinPath).replace(/\.json$/i, '');
  return join(dirname(twinPath), `${base}.reported.json`);
}

/**
 * Writes reported properties as IoT Hub would hold them: `{"properties":{"reported":{..., "$version": n}}}`,
 * atomically (temp file + rename), so a reader never sees half a document. `$version` counts the writes, as the
 * hub's reported `$version` counts patches, so a reader can tell a document written after a change from an older one.
 */
export class ReportedFile {
  readonly path: string;
  /** Documents written so far (the `$version` of the last one). */
  #version = 0;
  /** Writes run one after the other, so versions reach the file in order. */
  #queue: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  write(reported: object): Promise<void> {
    const version = ++this.#version;
    const next = this.#queue.then(async () => {
      const temp = `${this.path}.${process.pid}.tmp`;
      await writeFile(temp, `${JSON.stringify({ properties: { reported: { ...reported, $version: version } } }, null, 2)}\n`);
      await rename(temp, this.path);
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }
}
