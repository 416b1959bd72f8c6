/**
 * The control plane's HTTP server: the browser pages (`/wwwroot/*`), the players' scripts served from the
 * installed npm packages (`/wwwroot/vendor/*`, no CDN: edge devices are often offline) and the files the
 * pipelines write (`/media/*`: HLS/DASH playlists and segments, recordings, snapshots).
 * No GStreamer here: segments are plain files the media engine writes and this process only reads.
 */
import { constants, existsSync, type Stats } from 'node:fs';
import { open, realpath, stat as statPath, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

/** Defaults of the original module (gstreamer-iotedge-rs): port 8000 on all interfaces, media from /tmp. */
export const WEB_SERVER_DEFAULTS = { host: '0.0.0.0', port: 8000, mediaRoot: '/tmp' } as const;

/** Options of {@link createWebServer}; every field has a default. */
export interface WebServerOptions {
  /** Interface {@link startWebServer} binds (default `0.0.0.0`). */
  host?: string;
  /** TCP port {@link startWebServer} listens on (default 8000; 0 picks a free one). */
  port?: number;
  /** Folder served as `/wwwroot/*` (default `<repo>/wwwroot`). */
  wwwrootDir?: string;
  /** Folder served as `/media/*`, where pipelines write HLS/DASH files (default `/tmp`, as the original). */
  mediaRoot?: string;
  /**
   * Bytes of media files kept in memory (default 32 MiB; 0 turns it off). Live viewers all fetch the same few
   * newest segments; Node has no sendfile, so reading each once and writing it from memory is what keeps it
   * near nginx. Files over a quarter of this are never kept. Every use is checked against a fresh fstat.
   */
  mediaCacheBytes?: number;
  /** A pino logger, or `false` for none (default `false`). */
  logger?: FastifyBaseLogger | false;
  /** Adds routes (metrics, status API, signalling) to the app before it listens. */
  extraRoutes?: (app: FastifyInstance) => void;
}

/** The player scripts, by the name the pages load them under `/wwwroot/vendor/`. */
const VENDOR_SCRIPTS: Record<string, string> = {
  // UMD builds: they define `window.Hls` and `window.dashjs` for plain <script> tags without a bundler.
  'hls.js': 'hls.js/dist/hls.min.js',
  // dashjs exports only its entry points; its CommonJS entry is the modern UMD dash.all.min.js.
  'dash.js': 'dashjs',
};

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
 * Ranges up to this size are read with one read into one buffer and written with one write. Longer ones
 * (whole recordings) stream in 1 MiB chunks so memory stays bounded.
 */
const BUFFERED_MAX = 8 * 1024 * 1024;
const STREAM_CHUNK = 1024 * 1024;
const DEFAULT_MEDIA_CACHE_BYTES = 32 * 1024 * 1024;
/**
 * A file is cached only once its mtime is this old. The kernel stamps mtime with a coarse clock (one tick,
 * up to 10 ms), so two same-size writes within one tick look like one version; any write after this delay
 * gets a later mtime, which the fstat check sees.
 */
const CACHE_SETTLE_MS = 50;

const MEDIA_PREFIX = '/media/';

/** Opening never follows a final symlink (the real path is opened) nor blocks on a FIFO left in the folder. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Same file, same content: a rename (new inode) or any write (mtime, ctime, size) makes it another version. */
function sameVersion(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** Whole media files in memory by requested path, least recently used evicted first, bounded in bytes. */
class MediaCache {
  /** The most bytes all entries may hold together. */
  readonly #maxBytes: number;
  /** Entries in use order: Map keeps insertion order, and a hit re-inserts. */
  readonly #entries = new Map<string, { stat: Stats; data: Buffer }>();
  /** Bytes held now. */
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Whether a file this size is kept: one file must not push out most of the others. */
  accepts(size: number): boolean {
    return size <= this.#maxBytes / 4;
  }

  /** The content of `path` if the entry is the version `stat` describes. */
  get(path: string, stat: Stats): Buffer | undefined {
    const entry = this.#entries.get(path);
    if (entry === undefined) return undefined;
    this.#delete(path);
    if (!sameVersion(entry.stat, stat)) return undefined;
    this.#entries.set(path, entry);
    this.#bytes += entry.data.length;
    return entry.data;
  }

  set(path: string, stat: Stats, data: Buffer): void {
    if (!this.accepts(data.length) || Date.now() - stat.mtimeMs < CACHE_SETTLE_MS) return;
    this.#delete(path);
    this.#entries.set(path, { stat, data });
    this.#bytes += data.length;
    for (const [oldest] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#delete(oldest);
    }
  }

  #delete(path: string): void {
    const entry = this.#entries.get(path);
    if (entry === undefined) return;
    this.#entries.delete(path);
    this.#bytes -= entry.data.length;
  }
}

/** The repository root: the nearest folder above this file with a package.json (source or dist/actors/). */
function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

/** An error that fastify's error handler turns into a response with this status and this message only. */
function httpError(statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode });
}

/**
 * The folder names and file name of a `/media/...` request path, or an HTTP error. The path is decoded
 * once and then split, so `%2f` and `%5c` cannot smuggle a separator past the checks; no segment may be
 * empty (`//`, absolute paths), `.` or `..`; dotfiles stay hidden. What is left can only name something
 * under the root, before symlinks (checked later, on the real path).
 */
function mediaPathSegments(rawPath: string): string[] {
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

/** The byte range a `Range` header asks of a file of `size` bytes: one range, `'unsatisfiable'`, or null for the whole file. */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  // Multiple ranges and unknown units are answered with the whole file, as RFC 9110 allows.
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    return suffix === 0 || size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size) return 'unsatisfiable';
  return start > end ? null : { start, end };
}

/** Validators of a file as nginx writes them: a strong ETag from mtime and size, and Last-Modified. */
function validators(stat: Stats): { etag: string; lastModified: string } {
  return { etag: `"${Math.floor(stat.mtimeMs).toString(16)}-${stat.size.toString(16)}"`, lastModified: stat.mtime.toUTCString() };
}

/** RFC 9110 section 13.2.2 for GET/HEAD: If-None-Match wins over If-Modified-Since. */
function notModified(request: FastifyRequest, etag: string, stat: Stats): boolean {
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    return ifNoneMatch.trim() === '*' || ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
  }
  const since = Date.parse(request.headers['if-modified-since'] ?? '');
  return !Number.isNaN(since) && Math.floor(stat.mtimeMs / 1000) * 1000 <= since;
}

/** If-Range: a range applies only to the representation the client already holds part of. */
function rangeStillValid(request: FastifyRequest, etag: string, lastModified: string): boolean {
  const ifRange = request.headers['if-range'];
  if (typeof ifRange !== 'string') return ifRange === undefined;
  return ifRange.trim() === etag || ifRange.trim() === lastModified;
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
 * Creates the module's web server, routes registered but not listening yet (call `listen`, or use
 * {@link startWebServer}).
 *
 * Routes:
 * - `GET /` redirects to `/wwwroot/index.html`.
 * - `GET|HEAD /wwwroot/*` serves `wwwrootDir`; `/wwwroot/vendor/hls.js` and `/wwwroot/vendor/dash.js` are
 *   hls.js and dash.js from node_modules.
 * - `GET|HEAD /media/*` serves `mediaRoot`: single byte ranges (206, 416), ETag and Last-Modified with
 *   conditional GET (304), media MIME types, `no-cache` on playlists and manifests, recently served files
 *   from memory (`mediaCacheBytes`). Paths that leave the folder are refused: `..` or `.` in any encoding,
 *   `//` and absolute paths (403), backslashes, NUL and malformed UTF-8 (400). Symbolic links (to a file or a folder) are followed only when their real path
 *   is inside the real `mediaRoot`, so a pipeline may publish `live.m3u8 -> playlist.m3u8`; others get 403.
 *   The real path is what gets opened (O_NOFOLLOW), so swapping the last link after the check does not
 *   help; swapping a parent folder in between is not covered: the threat here is HTTP clients, not local
 *   users who can already write the media folder. The real `mediaRoot` is resolved on the first request.
 *
 * @example
 * const app = createWebServer({ mediaRoot: '/var/media', logger: pino(), extraRoutes: (app) => {
 *   app.get('/metrics', async (_req, reply) => reply.type(register.contentType).send(await register.metrics()));
 * }});
 * await app.listen({ host: '0.0.0.0', port: 8000 });
 */
export function createWebServer(options: WebServerOptions = {}): FastifyInstance {
  const wwwrootDir = resolve(options.wwwrootDir ?? join(findRepoRoot(import.meta.dirname), 'wwwroot'));
  const mediaRoot = resolve(options.mediaRoot ?? WEB_SERVER_DEFAULTS.mediaRoot);
  const require = createRequire(import.meta.url);
  // Resolved now so that a missing dependency fails at start-up, not on a viewer's first page load.
  const vendor = new Map(Object.entries(VENDOR_SCRIPTS).map(([name, id]) => [name, require.resolve(id)]));

  const app: FastifyInstance =
    options.logger === undefined || options.logger === false
      ? Fastify({ logger: false })
      : Fastify({ loggerInstance: options.logger });

  app.get('/', (_req, reply) => reply.redirect('/wwwroot/index.html'));

  app.register(async (scope) => {
    await scope.register(fastifyStatic, {
      root: wwwrootDir,
      prefix: '/wwwroot/',
      index: false,
      dotfiles: 'ignore',
      // Pages change with module upgrades; revalidating by ETag costs a 304.
      cacheControl: false,
      setHeaders: (reply) => reply.header('cache-control', 'no-cache'),
      suppressWarning: true,
    });
    // Static routes win over the wildcard in fastify's router, so these shadow wwwroot/vendor/.
    for (const [name, file] of vendor) {
      scope.get(`/wwwroot/vendor/${name}`, (_req, reply) =>
        reply.header('cache-control', 'no-cache').sendFile(basename(file), dirname(file), { cacheControl: false }),
      );
    }
  });

  // Resolved once it exists: the folder may be created by the first pipeline, after start-up.
  let realRoot: Promise<string> | undefined;
  const getRealRoot = () => (realRoot ??= realpath(mediaRoot).catch((error: unknown) => {
    realRoot = undefined;
    throw error;
  }));
  const cache = new MediaCache(options.mediaCacheBytes ?? DEFAULT_MEDIA_CACHE_BYTES);
  app.route({
    method: ['GET', 'HEAD'],
    url: `${MEDIA_PREFIX}*`,
    handler: (request, reply) => serveMediaFile(request, reply, mediaRoot, getRealRoot, cache),
  });

  options.extraRoutes?.(app);
  return app;
}

/**
 * Creates the web server and listens on `options.host` and `options.port` (defaults `0.0.0.0:8000`).
 * Resolves to the app and the address it listens on, e.g. `http://127.0.0.1:8000`.
 *
 * @example
 * const { app, address } = await startWebServer({ host: '127.0.0.1', port: 0, mediaRoot });
 * // ... later
 * await app.close();
 */
export async function startWebServer(options: WebServerOptions = {}): Promise<{ app: FastifyInstance; address: string }> {
  const app = createWebServer(options);
  try {
    const address = await app.listen({ host: options.host ?? WEB_SERVER_DEFAULTS.host, port: options.port ?? WEB_SERVER_DEFAULTS.port });
    return { app, address };
  } catch (error) {
    await app.close();
    throw error;
  }
}
