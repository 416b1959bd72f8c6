/**
 * Segment file names: `<stream>-<UTC start>.mp4`, e.g. `video-20240501T120000.000Z.mp4`. The engine names the
 * files it writes; the queue reads the start back from the name of a file it finds on disk (a crash remnant, or
 * a segment whose IPC message never arrived), so both sides use these functions and nothing else.
 * A file still being written ends in `.part`; the recorder renames it when splitmuxsink has closed it.
 */

/** Suffix of a segment file that is still being written (or was, when its writer died). */
export const PARTIAL_SUFFIX = '.part';

/** `20240501T120000.123Z`: ISO 8601 basic format, sortable as text, no `:` (not allowed in every file system). */
export function utcStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '');
}

/** The time a {@link utcStamp} names, or null when it is not one. */
export function parseUtcStamp(stamp: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(?:\.(\d{3}))?Z$/.exec(stamp);
  if (!m) return null;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7] ?? 0));
  return Number.isFinite(ms) ? ms : null;
}

/** Stream names are appsink names: what GStreamer allows in an element name, less what a file name cannot hold. */
export const STREAM_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/**
 * The name of a segment file. `extra` tells apart two segments of one stream that would start in the same
 * millisecond (a clock stepped back): `video-20240501T120000.000Z-1.mp4`.
 *
 * @example
 * segmentFileName('video', Date.UTC(2024, 4, 1, 12)) // 'video-20240501T120000.000Z.mp4'
 */
export function segmentFileName(stream: string, startMs: number, extra = 0): string {
  return `${stream}-${utcStamp(startMs)}${extra > 0 ? `-${extra}` : ''}.mp4`;
}

/** What a segment file's name says, or null for a file that is not one of ours. */
export interface SegmentName {
  readonly stream: string;
  readonly startMs: number;
  /** Still being written, or left behind by a writer that died. */
  readonly partial: boolean;
  /** The name once complete (without `.part`). */
  readonly finalName: string;
}

const SEGMENT_NAME = /^(.+)-(\d{8}T\d{6}(?:\.\d{3})?Z)(?:-\d+)?\.mp4(\.part)?$/;

/** Reads a segment file's name (not a path). */
export function parseSegmentFileName(name: string): SegmentName | null {
  const m = SEGMENT_NAME.exec(name);
  if (!m) return null;
  const startMs = parseUtcStamp(m[2]!);
  if (startMs === null || !STREAM_NAME.test(m[1]!)) return null;
  const partial = m[3] !== undefined;
  return { stream: m[1]!, startMs, partial, finalName: partial ? name.slice(0, -PARTIAL_SUFFIX.length) : name };
}
