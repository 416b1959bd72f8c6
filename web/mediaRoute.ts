/**
 * `GET|HEAD /media/*`: the files the pipelines write (HLS/DASH playlists and segments, recordings, snapshots), with
 * media MIME types, conditional GET, single byte ranges, and nothing outside the media folder. No GStreamer here:
 * segments are plain files the media engine writes and this process only reads.
 */
import { constants, type Stats } from 'node:fs';
import { open, realpath, stat as statPath, type FileHandle } from 'node:fs/promises';
import { extname, join, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { notModified, parseRange, rangeStillValid, validators } from './httpConditional.js';
import { MediaCache } from './MediaCache.js';

/**
 * MIME types for what pipelines write; players (Safari's native HLS, MSE) check them. Anything else is
 * `application/octet-stream`: the folder may hold files nobody vetted, and none of them should render as a page.
 */
const MEDIA_TYPES: Record<string, string> = {
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.mpd': 'application/dash+xml',
  '.ts': 'video/mp2t',
  '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.cmfv': 'video/mp4',
  '.m4a': 'audio/mp4',
  '.cmfa': 'audio/mp4',
  '.aac': 'audio/aac',
  '.mp3': 'audio/mpeg',
  '.mkv': 'video/x-matroska',
  '.webm': 'video/webm',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.vtt': 'text/vtt; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Segments whose names a live pipeline never rewrites while they are listed, so a proxy may keep them a
 * little. Not `immutable`: a restarted pipeline numbers from zero again, so the cache time stays shorter
 * than a player's wait before it retries. Everything else (playlists, manifests, init segments, snapshots
 * rewritten under one name, recordings still growing) is `no-cache`: revalidated by ETag on every use.
 */
const SEGMENT_EXTENSIONS = new Set(['.ts', '.m4s', '.m4a', '.m4v', '.aac', '.cmfv', '.cmfa']);
const SEGMENT_CACHE_CONTROL = 'public, max-age=30';

/**
 * Uncached ranges up to this size are read with one read into one buffer and written with one write; longer ones
 * stream in chunks read as the client takes them. A client that stops reading then pins at most this much (plus a
 * chunk) until the connection's idle timeout ends it. Live segments are mostly served from the shared cache,
 * which costs no memory per client.
 */
const BUFFERED_MAX = 1024 * 1024;
const STREAM_CHUNK = 256 * 1024;
export const MEDIA_PREFIX = '/media/';

/** Opening never follows a final symlink (the real path is opened) nor blocks on a FIFO left in the folder. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** An error that fastify's error handler turns into a response with this status and this message only. */
export function httpError(statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode });
}

/**
 * The folder names and file name of a `/media/...` request path, or an HTTP error. The path is decoded
 * once and then split, so `%2f` and `%5c` cannot smuggle a separator past the checks; no segment may be
 * empty (`//`, absolute paths), `.` or `..`; dotfiles stay hidden. What is left can only name something
 * under the root, before symlinks (checked later, on the real path).
 */
export function mediaPathSegments(rawPath: string): string[] {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    throw httpError(400, 'Bad Request'); // malformed or overlong UTF-8
  }
  if (decoded.includes('\0') || decoded.includes('\\')) throw httpError(400, 'Bad Request');
  const segments = decoded.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) throw httpError(403, 'Forbidden');
  if (segments.some((s) => s.startsWith('.'))) throw httpError(404, 'Not Found');
  return segments;
}

/** The app's 404 answer (fastify types `callNotFound` as void, so handlers return the reply after it). */
function notFound(reply: FastifyReply): FastifyReply {
  reply.callNotFound();
  return reply;
}

async function readFully(file: FileHandle, start: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await file.read(buffer, filled, length - filled, start + filled);
    // The file shrank after fstat: better an error than a body shorter than its Content-Length.
    if (bytesRead === 0) throw httpError(503, 'File changed while being read');
    filled += bytesRead;
  }
  return buffer;
}

/**
 * Serves one file of the media folder. Not `@fastify/static`: its path (`send` with a 64 KiB read stream,
 * a readdir per request to check spelling) served 1 MB segments at a seventh of nginx's rate; this one
 * writes a segment with one write, from memory when it is cached (then without opening the file).
 */
async function serveMediaFile(
  request: FastifyRequest,
  reply: FastifyReply,
  mediaRoot: string,
  realRoot: () => Promise<string>,
  cache: MediaCache,
): Promise<FastifyReply> {
  const url = request.raw.url ?? '';
  // The raw target, not the router's decoded parameter, so that every check sees the same bytes; an
  // absolute-form target (`GET http://host/media/...`) is not served.
  if (!url.startsWith(MEDIA_PREFIX)) return notFound(reply);
  const query = url.indexOf('?');
  const segments = mediaPathSegments(url.slice(MEDIA_PREFIX.length, query === -1 ? undefined : query));

  const path = join(mediaRoot, ...segments);

  // A hit costs one stat of the requested path. It follows links like the miss path did when the entry was
  // made: the same inode, size and times is the same content that passed the real-path check then.
  let stat: Stats;
  try {
    stat = await statPath(path);
  } catch {
    return notFound(reply); // no such file, a dangling link, or a file where a folder should be
  }
  if (!stat.isFile()) return notFound(reply);
  const cached = cache.get(path, stat);
  if (cached !== undefined) return respond(request, reply, path, stat, cached);

  let real: string;
  let root: string;
  try {
    [root, real] = await Promise.all([realRoot(), realpath(path)]);
  } catch {
    return notFound(reply); // removed since the stat (a live playlist's oldest segment)
  }
  // Symlinks are followed only as far as the real path stays inside the real root.
  if (!real.startsWith(root.endsWith(sep) ? root : root + sep)) {
    request.log.warn({ path: segments.join('/') }, 'refused a media path that resolves outside the media root');
    throw httpError(403, 'Forbidden');
  }

  // The miss opens the real path and takes the fstat of what it reads, so that the headers and the bytes
  // always describe the same version of a file being rewritten.
  let file: FileHandle;
  try {
    file = await open(real, OPEN_FLAGS);
  } catch {
    return notFound(reply); // removed or replaced by a link since realpath, or unreadable
  }
  let handedOver = false;
  try {
    stat = await file.stat();
    if (!stat.isFile()) return notFound(reply);
    return await respond(request, reply, path, stat, file, cache, () => (handedOver = true));
  } finally {
    if (!handedOver) void file.close();
  }
}

/**
 * Headers, conditional GET, range, then the body: from `source` when it is the whole file in memory,
 * else read from the open file (and kept in `cache` when small enough). `handOver` is called when a
 * stream takes ownership of the file handle.
 */
async function respond(
  request: FastifyRequest,
  reply: FastifyReply,
  path: string,
  stat: Stats,
  source: Buffer | FileHandle,
  cache?: MediaCache,
  handOver?: () => void,
): Promise<FastifyReply> {
  const ext = extname(path).toLowerCase();
  const { etag, lastModified } = validators(stat);
  reply.headers({
    'content-type': MEDIA_TYPES[ext] ?? 'application/octet-stream',
    'cache-control': SEGMENT_EXTENSIONS.has(ext) ? SEGMENT_CACHE_CONTROL : 'no-cache',
    'accept-ranges': 'bytes',
    etag,
    'last-modified': lastModified,
    // Players on another origin (a fleet dashboard) may read the streams; nothing here uses cookies.
    'access-control-allow-origin': '*',
    // The folder can hold any file anyone wrote: never let a browser run one as a page of this origin.
    'x-content-type-options': 'nosniff',
    'content-security-policy': 'sandbox',
  });
  if (notModified(request, etag, stat)) return reply.code(304).send();

  const range = rangeStillValid(request, etag, lastModified) ? parseRange(request.headers.range, stat.size) : null;
  if (range === 'unsatisfiable') {
    return reply.code(416).header('content-range', `bytes */${stat.size}`).send();
  }
  const start = range?.start ?? 0;
  const length = range ? range.end - range.start + 1 : stat.size;
  if (range) reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${stat.size}`);
  reply.header('content-length', length);
  if (request.method === 'HEAD' || length === 0) return reply.send();

  let whole = Buffer.isBuffer(source) ? source : undefined;
  if (whole === undefined && cache?.accepts(stat.size)) {
    whole = await readFully(source as FileHandle, 0, stat.size);
    cache.set(path, stat, whole);
  }
  if (whole !== undefined) return reply.send(whole.subarray(start, start + length));
  const file = source as FileHandle;
  if (length <= BUFFERED_MAX) return reply.send(await readFully(file, start, length));
  handOver?.(); // the stream closes the file when it ends or the client goes away
  return reply.send(file.createReadStream({ start, end: start + length - 1, highWaterMark: STREAM_CHUNK }));
}

/**
 * Registers the media route on `app`: `mediaRoot`'s files, the recently served ones from memory
 * (`cacheBytes`, 0 for none). The real path of `mediaRoot` is resolved on the first request (the folder may be
 * created by the first pipeline, after start-up).
 */
export function mediaRoute(app: FastifyInstance, mediaRoot: string, cacheBytes: number): void {
  let realRoot: Promise<string> | undefined;
  const getRealRoot = () => (realRoot ??= realpath(mediaRoot).catch((error: unknown) => {
    realRoot = undefined;
    throw error;
  }));
  const cache = new MediaCache(cacheBytes);
  app.route({
    method: ['GET', 'HEAD'],
    url: `${MEDIA_PREFIX}*`,
    handler: (request, reply) => serveMediaFile(request, reply, mediaRoot, getRealRoot, cache),
  });
}
