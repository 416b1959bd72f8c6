import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

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
