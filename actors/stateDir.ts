import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The state folder is not fit to keep the module's state in (someone else's, not a folder). */
export class StateDirError extends Error {
  override readonly name = 'StateDirError';
}

/**
 * Makes sure `dir` is a private folder of this process: created with mode 0700 when missing, refused when it
 * exists as something else or belongs to another user, tightened to 0700 when it is ours but open to others. The
 * state folder holds the last desired document, which can quote settings a viewer must not read.
 */
export async function prepareStateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const stat = await lstat(dir);
  if (!stat.isDirectory()) throw new StateDirError(`state folder ${dir} is not a folder`);
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) throw new StateDirError(`state folder ${dir} belongs to uid ${stat.uid}, not this process (uid ${uid})`);
  if ((stat.mode & 0o077) !== 0) await chmod(dir, 0o700);
}

/**
 * One JSON document kept in a file across restarts. Writes are atomic (a unique temp file, fsync, rename, so a
 * crash or SIGKILL at any point leaves the old document or the new one, never half of one) and serialized (they
 * reach the file in the order they were asked for; a later write never loses to an earlier one still running).
 */
export class StateFile {
  readonly path: string;
  /** The write in flight, and those queued behind it. */
  #queue: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  /** The document, or null when there is none; rejects when the file is there but not a JSON document. */
  async read(): Promise<unknown> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    if (text.trim() === '') throw new SyntaxError('the file is empty');
    return JSON.parse(text) as unknown;
  }

  write(document: unknown): Promise<void> {
    const text = JSON.stringify(document);
    const next = this.#queue.then(() => this.#write(text));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Resolves once every write asked for so far has finished (well or not). */
  settled(): Promise<void> {
    return this.#queue;
  }

  async #write(text: string): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path, text);
  }
}

/**
 * Replaces `path` with `data` so that a crash (SIGKILL, power loss) leaves either the old content or the new one,
 * never a mix: a temp file with a unique name (two writers never share one), fsync, rename over the target,
 * then fsync of the folder so the rename itself is on disk.
 *
 * @example
 * await writeFileAtomic('/var/lib/gst-iotedge/recording/queue/000001.json', JSON.stringify(entry));
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await fsyncDir(dirname(path));
}

/** Appends a line and fsyncs, for append-only logs (the history of uploaded segments). */
export async function appendLineDurable(path: string, line: string): Promise<void> {
  const handle = await open(path, 'a', 0o600);
  try {
    await handle.write(`${line}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a folder's entries (a rename, an unlink, a new file) durable. */
export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on a folder (EINVAL); the rename is then as durable as they make it.
  } finally {
    await handle.close();
  }
}

/** Temp files {@link writeFileAtomic} left behind when its process died between open and rename. */
export function isAtomicTemp(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}
