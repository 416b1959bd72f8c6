import { open, truncate } from 'node:fs/promises';

/** What the top-level boxes of an MP4 file say, read without a demuxer (headers only, a few reads). */
export interface Mp4Layout {
  /** Bytes up to the end of the last complete box that is not a `moof` waiting for its `mdat`. */
  readonly completeLength: number;
  readonly size: number;
  /** `ftyp` and `moov` are there and complete: a player can open the file. */
  readonly playable: boolean;
  /** Complete `moof` + `mdat` pairs (fragmented MP4). */
  readonly fragments: number;
  /** From `mvhd` (or `mehd` in a fragmented file) when the muxer wrote one; null in a file cut short. */
  readonly durationMs: number | null;
}

/**
 * Reads the layout of an MP4 file. A fragmented file whose writer was killed ends in a half-written `mdat`
 * (or a `moof` without one); {@link Mp4Layout.completeLength} is where the playable part ends.
 */
export async function readMp4Layout(path: string): Promise<Mp4Layout> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const header = Buffer.alloc(16);
    let offset = 0;
    let completeLength = 0;
    let ftyp = false;
    let moov: { offset: number; size: number } | null = null;
    let fragments = 0;
    let pendingMoof = false;
    while (offset + 8 <= size) {
      const { bytesRead } = await handle.read(header, 0, 16, offset);
      if (bytesRead < 8) break;
      let boxSize = header.readUInt32BE(0);
      const type = header.toString('latin1', 4, 8);
      let headerSize = 8;
      if (boxSize === 1) {
        if (bytesRead < 16) break;
        boxSize = Number(header.readBigUInt64BE(8));
        headerSize = 16;
      } else if (boxSize === 0) {
        // "to the end of the file": only a finished writer may leave that (an mdat whose size it never wrote back).
        boxSize = size - offset;
      }
      if (boxSize < headerSize || offset + boxSize > size) break;
      if (type === 'ftyp') ftyp = true;
      if (type === 'moov') moov = { offset: offset + headerSize, size: boxSize - headerSize };
      if (type === 'moof') {
        pendingMoof = true;
      } else {
        if (type === 'mdat' && pendingMoof) fragments++;
        pendingMoof = false;
        completeLength = offset + boxSize;
      }
      offset += boxSize;
    }
    let durationMs: number | null = null;
    if (moov && moov.size <= 1 << 20) {
      const body = Buffer.alloc(moov.size);
      await handle.read(body, 0, moov.size, moov.offset);
      durationMs = movieDuration(body);
    }
    return { completeLength, size, playable: ftyp && moov !== null, fragments, durationMs };
  } finally {
    await handle.close();
  }
}

/** Cuts a file to {@link Mp4Layout.completeLength}, so what is uploaded has no half box at its end. */
export async function trimToCompleteBoxes(path: string): Promise<Mp4Layout> {
  const layout = await readMp4Layout(path);
  if (layout.completeLength < layout.size) await truncate(path, layout.completeLength);
  return { ...layout, size: layout.completeLength };
}

/** Children of a box body, as [type, start of body, end]. */
function* children(body: Buffer, from = 0, to = body.length): Generator<[string, number, number]> {
  let offset = from;
  while (offset + 8 <= to) {
    let size = body.readUInt32BE(offset);
    let headerSize = 8;
    if (size === 1 && offset + 16 <= to) {
      size = Number(body.readBigUInt64BE(offset + 8));
      headerSize = 16;
    }
    if (size < headerSize || offset + size > to) return;
    yield [body.toString('latin1', offset + 4, offset + 8), offset + headerSize, offset + size];
    offset += size;
  }
}

/** Movie duration from `moov`'s `mvhd`, or `mvex/mehd` when mvhd says 0 (fragmented files). */
function movieDuration(moov: Buffer): number | null {
  let timescale = 0;
  let duration = 0n;
  for (const [type, start, end] of children(moov)) {
    if (type === 'mvhd' && end - start >= 32) {
      const version = moov[start]!;
      timescale = version === 1 ? moov.readUInt32BE(start + 20) : moov.readUInt32BE(start + 12);
      duration = version === 1 ? moov.readBigUInt64BE(start + 24) : BigInt(moov.readUInt32BE(start + 16));
    }
    if (type === 'mvex' && duration === 0n) {
      for (const [inner, s, e] of children(moov, start, end)) {
        if (inner !== 'mehd' || e - s < 8) continue;
        duration = moov[s] === 1 ? moov.readBigUInt64BE(s + 4) : BigInt(moov.readUInt32BE(s + 4));
      }
    }
  }
  if (timescale === 0 || duration === 0n) return null;
  return Math.round((Number(duration) * 1000) / timescale);
}
