import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

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
    const temp = join(dirname(this.path), `.${randomBytes(6).toString('hex')}.tmp`);
    const file = await open(temp, 'wx', 0o600);
    try {
      await file.writeFile(text);
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await rename(temp, this.path);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
  }
}
