/**
 * The control plane's HTTP server: the browser pages (`/wwwroot/*`), the players' scripts served from the
 * installed npm packages (`/wwwroot/vendor/*`, no CDN: edge devices are often offline) and the files the
 * pipelines write (`/media/*`: HLS/DASH playlists and segments, recordings, snapshots).
 * No GStreamer here: segments are plain files the media engine writes and this process only reads.
 */
import { existsSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';

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
 * MIME types for what pipelines write. `send`'s table lacks some (.m4s) and differs on others (.ts is
 * "video/mp2t" only by luck of ordering against TypeScript's .ts), and players such as Safari's native
 * HLS check them, so they are fixed here.
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
};

/**
 * Segments whose names a live pipeline never rewrites while they are listed, so a proxy may keep them a
 * little. Not `immutable`: a restarted pipeline numbers from zero again, so the cache time stays shorter
 * than a player's wait before it retries. Everything else (playlists, manifests, init segments, snapshots
 * rewritten under one name, recordings still growing) is `no-cache`: revalidated by ETag on every use.
 */
const SEGMENT_EXTENSIONS = new Set(['.ts', '.m4s', '.m4a', '.m4v', '.aac', '.cmfv', '.cmfa']);
const SEGMENT_CACHE_CONTROL = 'public, max-age=30';

/** The repository root: the nearest folder above this file with a package.json (source or dist/actors/). */
function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

/** An error fastify's error handler turns into a response with this status and no internal detail. */
function httpError(statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode });
}

function setMediaHeaders(reply: FastifyReply, path: string): void {
  const ext = extname(path).toLowerCase();
  const type = MEDIA_TYPES[ext];
  if (type !== undefined) reply.header('content-type', type);
  reply.header('cache-control', SEGMENT_EXTENSIONS.has(ext) ? SEGMENT_CACHE_CONTROL : 'no-cache');
  // Players on another origin (a fleet dashboard) may read the streams; nothing here depends on cookies.
  reply.header('access-control-allow-origin', '*');
  // The media folder can hold any file a pipeline (or anyone) wrote: never let the browser run one as a page.
  reply.header('x-content-type-options', 'nosniff');
  reply.header('content-security-policy', 'sandbox');
}

/**
 * Creates the module's web server, routes registered but not listening yet (call `listen`, or use
 * {@link startWebServer}).
 *
 * Routes:
 * - `GET /` redirects to `/wwwroot/index.html`.
 * - `GET|HEAD /wwwroot/*` serves `wwwrootDir`; `/wwwroot/vendor/hls.js` and `/wwwroot/vendor/dash.js` are
 *   hls.js and dash.js from node_modules.
 * - `GET|HEAD /media/*` serves `mediaRoot` with byte ranges, ETags, media MIME types, `no-cache` on
 *   playlists and manifests. Paths that leave the folder are refused: `..` in any spelling, backslashes,
 *   NUL, `//`, bad percent-encoding (403/400/404, by `@fastify/static` and `send`), and symbolic links
 *   (a file or folder) whose real path is outside the real `mediaRoot` (403). Links that stay inside are
 *   followed, so a pipeline may publish `live.m3u8 -> playlist.m3u8`. The real path is checked just
 *   before `send` opens the file, so a link swapped in between is not covered: the threat here is HTTP
 *   clients, not local users who can already write the media folder.
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

  app.register(async (scope) => {
    // The real root, resolved per request: the folder may be created (or replaced) after start-up.
    const insideMediaRoot = async (path: string): Promise<boolean> => {
      const [root, target] = await Promise.all([realpath(mediaRoot), realpath(path)]);
      return target.startsWith(root.endsWith(sep) ? root : root + sep);
    };
    await scope.register(fastifyStatic, {
      root: mediaRoot,
      prefix: '/media/',
      index: false,
      list: false,
      redirect: false,
      dotfiles: 'ignore',
      cacheControl: false,
      suppressWarning: true,
      setHeaders: setMediaHeaders,
      // `send` stats (follows links) and then calls this before it opens the file.
      onFile: async (path) => {
        if (!(await insideMediaRoot(path))) {
          scope.log.warn({ path }, 'refused a media path that resolves outside the media root');
          throw httpError(403, 'Forbidden');
        }
      },
    });
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
