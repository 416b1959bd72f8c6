/**
 * The control plane's HTTP app: the browser pages (`/wwwroot/*`), the players' scripts served from the installed
 * npm packages (`/wwwroot/vendor/*`, no CDN: edge devices are often offline) and the media folder (`/media/*`,
 * see mediaRoute.ts). Routes of other parts (status, metrics, signalling) come in through `extraRoutes`.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { DEFAULT_HTTP } from '../config/defaults.js';
import { mediaRoute } from './mediaRoute.js';

/** Bytes of media files kept in memory by default (see {@link WebAppOptions.mediaCacheBytes}). */
const DEFAULT_MEDIA_CACHE_BYTES = 32 * 1024 * 1024;

/** Options of {@link createWebApp}; every field has a default. */
export interface WebAppOptions {
  /** Interface {@link startWebApp} binds (default `0.0.0.0`). */
  host?: string;
  /** TCP port {@link startWebApp} listens on (default 8000; 0 picks a free one). */
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

/**
 * Every HTTP server of the module is bounded: connections (each can pin a little memory), how long a client may
 * take to send a request, and how long a connection may sit idle (a client that stops reading a response is
 * dropped then; SSE streams and websockets send keep-alives well within it).
 */
export const HTTP_LIMITS = {
  maxConnections: 256,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  bodyLimitBytes: 1024 * 1024,
} as const;

/** A fastify app with {@link HTTP_LIMITS}; `false` for no request logging. */
export function boundedFastify(logger: FastifyBaseLogger | false): FastifyInstance {
  const limits = {
    connectionTimeout: HTTP_LIMITS.idleTimeoutMs,
    requestTimeout: HTTP_LIMITS.requestTimeoutMs,
    keepAliveTimeout: HTTP_LIMITS.keepAliveTimeoutMs,
    bodyLimit: HTTP_LIMITS.bodyLimitBytes,
  };
  const app: FastifyInstance = logger === false ? Fastify({ logger: false, ...limits }) : Fastify({ loggerInstance: logger, ...limits });
  app.server.maxConnections = HTTP_LIMITS.maxConnections;
  return app;
}

/** The player scripts, by the name the pages load them under `/wwwroot/vendor/`. */
const VENDOR_SCRIPTS: Record<string, string> = {
  // UMD builds: they define `window.Hls` and `window.dashjs` for plain <script> tags without a bundler.
  'hls.js': 'hls.js/dist/hls.min.js',
  // dashjs exports only its entry points; its CommonJS entry is the modern UMD dash.all.min.js.
  'dash.js': 'dashjs',
};

/** The repository root: the nearest folder above this file with a package.json (source or dist/actors/). */
function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

/**
 * Creates the module's web server, routes registered but not listening yet (call `listen`, or use
 * {@link startWebApp}).
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
 * const app = createWebApp({ mediaRoot: '/var/media', logger: pino(), extraRoutes: (app) => {
 *   app.get('/metrics', async (_req, reply) => reply.type(register.contentType).send(await register.metrics()));
 * }});
 * await app.listen({ host: '0.0.0.0', port: 8000 });
 */
export function createWebApp(options: WebAppOptions = {}): FastifyInstance {
  const wwwrootDir = resolve(options.wwwrootDir ?? join(findRepoRoot(import.meta.dirname), 'wwwroot'));
  const mediaRoot = resolve(options.mediaRoot ?? DEFAULT_HTTP.mediaRoot);
  const require = createRequire(import.meta.url);
  // Resolved now so that a missing dependency fails at start-up, not on a viewer's first page load.
  const vendor = new Map(Object.entries(VENDOR_SCRIPTS).map(([name, id]) => [name, require.resolve(id)]));

  const app = boundedFastify(options.logger === undefined ? false : options.logger);

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

  mediaRoute(app, mediaRoot, options.mediaCacheBytes ?? DEFAULT_MEDIA_CACHE_BYTES);

  options.extraRoutes?.(app);
  return app;
}

/**
 * Creates the web server and listens on `options.host` and `options.port` (defaults `0.0.0.0:8000`).
 * Resolves to the app and the address it listens on, e.g. `http://127.0.0.1:8000`.
 *
 * @example
 * const { app, address } = await startWebApp({ host: '127.0.0.1', port: 0, mediaRoot });
 * // ... later
 * await app.close();
 */
export async function startWebApp(options: WebAppOptions = {}): Promise<{ app: FastifyInstance; address: string }> {
  const app = createWebApp(options);
  try {
    const address = await app.listen({ host: options.host ?? DEFAULT_HTTP.address, port: options.port ?? DEFAULT_HTTP.port });
    return { app, address };
  } catch (error) {
    await app.close();
    throw error;
  }
}
