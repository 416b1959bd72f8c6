import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { posix } from 'node:path';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Observable } from 'rxjs';
import type { AccessControl, AuthRefusal, Principal } from '../auth/AccessControl.js';
import { maskTokenParameter } from '../auth/credentials.js';
import type { RightsChange } from '../auth/diff.js';
import { ACTIONS, type Action } from '../auth/rights.js';
import { LruMap } from '../auth/LruMap.js';
import { SESSION_TOKEN_PREFIX, SESSION_TTL_MS, SignInSessions } from '../auth/SignInSessions.js';
import { isSecure } from './plainAndTls.js';

/** Where a refused sign-in came from: the `surface` label of `auth_failures_total`. RTSP's are GStreamer's own. */
export type AuthSurface = 'http' | 'websocket' | 'whep' | 'metrics';

/** What a request needs: one right, or any right at all (the pages' scripts, the sign-in, paths nobody serves). */
export type Need = Action | 'any';

/** What the web side reports of refused sign-ins (actors/Metrics.ts). */
export interface AuthFailureCounter {
  observeAuthFailure(surface: AuthSurface, reason: string): void;
}

export interface WebAuthOptions {
  readonly access: AccessControl;
  /** Changes of users or rights: affected viewers and streams are closed, their sessions ended. */
  readonly changes$: Observable<RightsChange>;
  readonly metrics: AuthFailureCounter;
  readonly logger: Logger;
  /** Folder of the pages (auth.js is embedded in the sign-in page). */
  readonly wwwrootDir: string;
}

/** A request let in: who, and whether over TLS. */
export type Admission = { readonly ok: true; readonly principal: Principal; readonly secure: boolean } | { readonly ok: false; readonly refusal: AuthRefusal };

/** Pages and the right each shows; other files under /wwwroot (scripts) need any right. */
const PAGE_RIGHTS: Readonly<Record<string, Action>> = {
  '/wwwroot/index.html': 'status',
  '/wwwroot/webrtc.html': 'webrtc',
  '/wwwroot/hls.html': 'media',
  '/wwwroot/dash.html': 'media',
};
/** The sign-in endpoint of the pages. */
export const SESSION_PATH = '/api/session';
/** Streams that stay open (server-sent events): closed when their viewer's rights change or token expires. */
const LONG_LIVED = new Set(['/api/status/events']);
/**
 * The cookie that lets a page that was let in load its own scripts (`<script src>` cannot carry a token). It is
 * good for the files under /wwwroot/ that are not pages, nothing else: HttpOnly, SameSite=Strict, Path=/wwwroot/.
 */
const ASSET_COOKIE = 'gst-iotedge-assets';
const MAX_ASSET_PASSES = 10_000;
/** setTimeout fires at once beyond this; a later expiry is looked at again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A request's path, decoded and normalised the way the static and media routes read it. */
function pathOf(url: string | undefined): string {
  const raw = (url ?? '/').split('?')[0]!;
  try {
    return posix.normalize(decodeURIComponent(raw));
  } catch {
    return raw;
  }
}

/**
 * What a request to the web server needs, or null when it needs nothing (a CORS preflight carries no
 * credentials; WHEP's are answered by the origin policy).
 *
 * @example
 * needOf('GET', '/media/live.m3u8');   // { need: 'media', surface: 'http' }
 * needOf('GET', '/wwwroot/vendor/hls.js'); // { need: 'any', surface: 'http' }
 */
export function needOf(method: string, url: string | undefined): { need: Need; surface: AuthSurface } | null {
  const path = pathOf(url);
  if (path === '/metrics') return { need: 'metrics', surface: 'metrics' };
  if (path === '/api/status' || path.startsWith('/api/status/')) return { need: 'status', surface: 'http' };
  if (path.startsWith('/media/')) return { need: 'media', surface: 'http' };
  if (path === '/whep' || path.startsWith('/whep/')) return method === 'OPTIONS' ? null : { need: 'webrtc', surface: 'whep' };
  if (path === '/ws') return { need: 'webrtc', surface: 'websocket' };
  return { need: PAGE_RIGHTS[path] ?? 'any', surface: 'http' };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The `token` query parameter (null when there is none). */
function tokenParameter(url: string | undefined): string | null {
  const query = (url ?? '').indexOf('?');
  return query < 0 ? null : new URLSearchParams((url ?? '').slice(query + 1)).get('token');
}

/** One open connection whose viewer's rights are watched. */
interface Tracked {
  readonly principal: Principal;
  readonly secure: boolean;
  readonly close: (reason: string) => void;
  timer: NodeJS.Timeout | null;
}

/**
 * The access decision on the web side, for every surface of both HTTP servers: a fastify hook ({@link guard})
 * that authenticates each request (Basic, Bearer, `?token=`, a page's sign-in session) and checks the right its
 * path needs; the websocket upgrade's check ({@link admit}, {@link refuseUpgrade}); the pages' sign-in endpoint
 * ({@link sessionRoute}); and the connections that outlive a request ({@link track}), closed when their viewer's
 * rights change or credential expires. Without an `auth` key everyone is let in, as before auth existed.
 *
 * Refused sign-ins are counted per surface and reason and logged with the address and the URL (any `token`
 * masked), never the credentials.
 */
export class WebAuth {
  readonly #access: AccessControl;
  readonly #sessions = new SignInSessions();
  readonly #metrics: AuthFailureCounter;
  readonly #log: Logger;
  /** Who each request that got in is (fastify's raw request: the hook and the handlers share it). */
  readonly #principals = new WeakMap<IncomingMessage, { principal: Principal; secure: boolean }>();
  readonly #tracked = new Set<Tracked>();
  /** Asset cookies handed out with pages: value -> nothing (the LruMap holds the expiry). */
  readonly #assetPasses = new LruMap<string, true>(MAX_ASSET_PASSES);
  /** The pages' sign-in script, embedded in the sign-in page (the page itself asks for no script it cannot load). */
  readonly #authScript: string;

  constructor(options: WebAuthOptions) {
    this.#access = options.access;
    this.#metrics = options.metrics;
    this.#log = options.logger.child({ component: 'auth' });
    this.#authScript = readFileSync(posix.join(options.wwwrootDir, 'auth.js'), 'utf8').replaceAll('</script', '<\\/script');
    options.changes$.subscribe((change) => this.#onChange(change));
  }

  /** Whether the module is open (no `auth` key). */
  get open(): boolean {
    return this.#access.mode === 'open';
  }

  /**
   * Authenticates a request and checks `need`; a refusal says how to answer (401 with challenges, 403, 429).
   * A failed sign-in is counted and logged.
   */
  async admit(request: IncomingMessage, need: Need, surface: AuthSurface): Promise<Admission> {
    const secure = isSecure(request);
    const principal = await this.#authenticate(request, secure, surface);
    if ('refusal' in principal) return { ok: false, refusal: principal.refusal };
    if (!this.#allows(principal.principal, need)) return { ok: false, refusal: this.#access.refusal(principal.principal, secure) };
    this.#principals.set(request, { principal: principal.principal, secure });
    return { ok: true, principal: principal.principal, secure };
  }

  /** Who a request the hook let in is. */
  principalOf(request: IncomingMessage): { principal: Principal; secure: boolean } | undefined {
    return this.#principals.get(request);
  }

  /**
   * Every request of `app` is checked before its route runs: `scope` `metrics` (the metrics-only port) needs
   * `metrics` on every path; `web` needs what {@link needOf} says. Register before the app is ready.
   */
  guard(app: FastifyInstance, scope: 'web' | 'metrics'): void {
    app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      const needed = scope === 'metrics' ? { need: 'metrics' as const, surface: 'metrics' as const } : needOf(request.method, request.raw.url);
      if (!needed) return;
      const path = pathOf(request.raw.url);
      if (scope === 'web' && this.#assetOfPage(path, needed.need) && this.#hasAssetPass(request)) return;
      const admission = await this.admit(request.raw, needed.need, needed.surface);
      if (!admission.ok) return this.#refuse(request, reply, admission.refusal);
      if (scope === 'web' && PAGE_RIGHTS[path] !== undefined && admission.principal.kind !== 'open') this.#giveAssetPass(reply, admission.principal, admission.secure);
      // Tracked when open too: turning auth on must end the streams anyone could open before.
      if (LONG_LIVED.has(pathOf(request.raw.url))) {
        const untrack = this.track(admission.principal, admission.secure, () => request.raw.socket.destroy());
        request.raw.socket.once('close', untrack);
      }
    });
  }

  /** `POST /api/session`: a user signed in with a password gets a session token the page can carry (`?token=`). */
  sessionRoute(app: FastifyInstance): void {
    app.post(SESSION_PATH, async (request, reply) => {
      reply.header('cache-control', 'no-store');
      const principal = this.principalOf(request.raw)?.principal;
      if (principal?.kind !== 'user') return { token: null, mode: this.#access.mode, kind: principal?.kind ?? 'anonymous' };
      const session = this.#sessions.issue(principal);
      return { token: session.token, expiresAt: new Date(session.expiresAt).toISOString(), user: principal.name };
    });
  }

  /** Answers a refused websocket upgrade on its raw socket (the HTTP server is not involved after `upgrade`). */
  refuseUpgrade(socket: Duplex, refusal: AuthRefusal | { status: number; message: string }): void {
    const challenges = 'challenges' in refusal ? refusal.challenges : [];
    const retry = 'retryAfterS' in refusal && refusal.retryAfterS !== null ? `Retry-After: ${refusal.retryAfterS}\r\n` : '';
    const body = JSON.stringify({ error: refusal.message });
    const head =
      `HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status] ?? 'Refused'}\r\n` +
      challenges.map((c) => `WWW-Authenticate: ${c}\r\n`).join('') +
      retry +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
    socket.end(head + body);
  }

  /**
   * Watches a connection that outlives its request (a websocket, a WebRTC viewer, an event stream): `close` is
   * called when a change of users or rights touches its principal, or when its credential expires. Returns
   * the function that stops watching (call it when the connection ends).
   */
  track(principal: Principal, secure: boolean, close: (reason: string) => void): () => void {
    const entry: Tracked = { principal, secure, close, timer: null };
    this.#tracked.add(entry);
    const arm = () => {
      if (principal.expiresAt === null) return;
      const wait = principal.expiresAt - Date.now();
      entry.timer = setTimeout(() => {
        entry.timer = null;
        if (principal.expiresAt! > Date.now()) return arm();
        this.#tracked.delete(entry);
        close('credentials expired');
      }, Math.max(0, Math.min(wait, MAX_TIMER_MS)));
      entry.timer.unref();
    };
    arm();
    return () => {
      if (entry.timer) clearTimeout(entry.timer);
      this.#tracked.delete(entry);
    };
  }

  /** Whether `path` is one of the pages' own files (scripts), which a page that was let in may load. */
  #assetOfPage(path: string, need: Need): boolean {
    return need === 'any' && path.startsWith('/wwwroot/') && !this.open;
  }

  #hasAssetPass(request: FastifyRequest): boolean {
    const cookies = request.headers.cookie ?? '';
    for (const part of cookies.split(';')) {
      const [name, value] = part.trim().split('=');
      if (name === ASSET_COOKIE && value && this.#assetPasses.get(value)) return true;
    }
    return false;
  }

  #giveAssetPass(reply: FastifyReply, principal: Principal, secure: boolean): void {
    const value = randomBytes(24).toString('base64url');
    const ttlMs = Math.max(1000, Math.min(SESSION_TTL_MS, (principal.expiresAt ?? Infinity) - Date.now()));
    this.#assetPasses.set(value, true, ttlMs);
    const maxAge = Math.floor(ttlMs / 1000);
    reply.header('set-cookie', `${ASSET_COOKIE}=${value}; Path=/wwwroot/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`);
  }

  #onChange(change: RightsChange): void {
    this.#sessions.revoke(change);
    for (const entry of [...this.#tracked]) {
      if (!change.affects(entry.principal, entry.secure)) continue;
      if (entry.timer) clearTimeout(entry.timer);
      this.#tracked.delete(entry);
      entry.close('your rights changed: sign in again');
    }
  }

  #allows(principal: Principal, need: Need): boolean {
    if (need !== 'any') return this.#access.authorize(principal, need);
    if (principal.expiresAt !== null && principal.expiresAt <= Date.now()) return false;
    return principal.rights.mounts.size > 0 || ACTIONS.some((action) => this.#access.authorize(principal, action));
  }

  async #authenticate(request: IncomingMessage, secure: boolean, surface: AuthSurface): Promise<{ principal: Principal } | { refusal: AuthRefusal }> {
    const authorization = request.headers.authorization;
    const token = tokenParameter(request.url);
    const settings = this.#access.settings;
    // A page's session token, carried alone and on a connection that may carry credentials.
    const bearer = token ?? (/^bearer /i.test(authorization ?? '') ? authorization!.slice(7).trim() : null);
    if (bearer?.startsWith(SESSION_TOKEN_PREFIX) && (token === null || authorization === undefined) && !(settings?.requireTls && !secure)) {
      const principal = this.#sessions.principalOf(bearer, settings);
      if (principal) return { principal };
    }
    const address = request.socket.remoteAddress ?? '';
    const result = await this.#access.authenticate({ address, secure, authorization, token });
    if (result.ok) return { principal: result.principal };
    this.#metrics.observeAuthFailure(surface, result.reason);
    this.#log.warn(
      { event: 'auth-failed', surface, reason: result.reason, address, method: request.method, url: maskTokenParameter(request.url ?? '') },
      `sign-in refused (${result.reason}) from ${address} on ${surface}`,
    );
    return { refusal: result };
  }

  #refuse(request: FastifyRequest, reply: FastifyReply, refusal: AuthRefusal): FastifyReply {
    reply.code(refusal.status).header('cache-control', 'no-store');
    if (refusal.challenges.length > 0) reply.header('www-authenticate', [...refusal.challenges]);
    if (refusal.retryAfterS !== null) reply.header('retry-after', String(refusal.retryAfterS));
    const path = pathOf(request.raw.url);
    const page = request.method === 'GET' && (path === '/' || path.endsWith('.html')) && (request.headers.accept ?? '').includes('text/html');
    if (page) return reply.type('text/html; charset=utf-8').send(this.#signInPage(refusal));
    return reply.send({ error: refusal.message });
  }

  /**
   * What a browser shows for a refused page (after its own sign-in prompt, if it offered one and the viewer
   * cancelled): the pages' sign-in form, with user and password or a token.
   */
  #signInPage(refusal: AuthRefusal): string {
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in: gst-iotedge</title><style>body{font:15px/1.4 system-ui,sans-serif;margin:1.5rem}input{margin:.2rem}</style></head>
<body data-gst-signin="${refusal.status}"><h1 style="font-size:1.3rem">gst-iotedge</h1><p>${escapeHtml(refusal.message)}</p>
${SIGN_IN_FORM}
<script>${this.#authScript}</script></body></html>
`;
  }
}

/** The sign-in form as the pages carry it (auth.js fills and shows it). */
export const SIGN_IN_FORM = `<form id="gst-signin" hidden><span id="gst-signin-reason"></span>
<input name="user" autocomplete="username" placeholder="user"> <input name="password" type="password" autocomplete="current-password" placeholder="password">
or <input name="token" placeholder="token"> <button>Sign in</button></form>`;

const STATUS_TEXT: Readonly<Record<number, string>> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 429: 'Too Many Requests', 503: 'Service Unavailable' };
