import { open, type FileHandle } from 'node:fs/promises';
import { SegmentFileError } from './errors.js';

/** Opens a queued segment for reading, checking it still has the size it was queued with. */
export async function openSegment(path: string, size: number): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new SegmentFileError(`${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const actual = (await handle.stat()).size;
  if (actual !== size) {
    await handle.close();
    throw new SegmentFileError(`${path}: size ${actual} differs from the ${size} bytes queued`);
  }
  return handle;
}

/** Reads `length` bytes at `offset` (a short read means the file shrank under us). */
export async function readPiece(handle: FileHandle, path: string, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, offset + done);
    if (bytesRead === 0) throw new SegmentFileError(`${path}: ended at ${offset + done}, expected ${offset + length} bytes`);
    done += bytesRead;
  }
  return buffer;
}
