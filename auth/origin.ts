import { ConfigError } from '../config/errors.js';

/**
 * Which browser origins may open the signalling websocket (/ws) and call WHEP. A page on another site must
 * not be able to use a viewer's browser (and its credentials) to watch the cameras: websockets are not
 * covered by CORS, so the server has to look at `Origin` itself.
 */
export interface OriginPolicy {
  /** `["*"]` in the twin: any origin (the module is embedded in pages anywhere). */
  readonly anyOrigin: boolean;
  /** Allowed origins besides the module's own, normalised (`https://dash.example.com`, `http://10.0.0.2:8080`). */
  readonly origins: ReadonlySet<string>;
}

/** Same-origin only: the module's own pages. */
export const SAME_ORIGIN_ONLY: OriginPolicy = Object.freeze({ anyOrigin: false, origins: new Set<string>() });

/**
 * Reads an allow-list of origins (suggested twin key `http.allowed_origins`): absent means same-origin only,
 * `["*"]` means any, otherwise a list of `scheme://host[:port]`.
 *
 * @example
 * parseOriginPolicy(['https://dash.example.com'], 'http.allowed_origins');
 */
export function parseOriginPolicy(value: unknown, where: string): OriginPolicy {
  if (value === undefined || value === null) return SAME_ORIGIN_ONLY;
  if (!Array.isArray(value)) throw new ConfigError(`${where} must be a list of origins such as "https://dash.example.com", or ["*"]`);
  if (value.length === 1 && value[0] === '*') return Object.freeze({ anyOrigin: true, origins: new Set<string>() });
  const origins = new Set<string>();
  value.forEach((entry: unknown, i) => {
    if (typeof entry !== 'string') throw new ConfigError(`${where}[${i}] must be a string`);
    const origin = normaliseOrigin(entry);
    if (origin === null) {
      throw new ConfigError(`${where}[${i}]: ${JSON.stringify(entry.slice(0, 100))} is not an origin (scheme://host[:port], no path; "*" only alone)`);
    }
    origins.add(origin);
  });
  return Object.freeze({ anyOrigin: false, origins });
}

/** `https://Example.com:443/` -> `https://example.com`; null when it is not an http(s) origin. */
function normaliseOrigin(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) return null;
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/]+\/?$/i.test(text)) return null;
  // WHATWG URLs accept `*` in a host: an allow-list entry like https://*.example.com must not pass as a name.
  if (!/^([a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/i.test(url.hostname)) return null;
  return url.origin;
}

/** What the origin check looks at in a request. */
export interface OriginRequest {
  /** The `Origin` header (absent for non-browser clients: ffmpeg, GStreamer, curl). */
  readonly origin: string | undefined;
  /** The `Host` header: where the browser thinks it is talking to. */
  readonly host: string | undefined;
}

/**
 * Whether a request's origin may use /ws or WHEP. No `Origin` header: allowed, because only browsers send one
 * and only browsers can be made to act for a user by another site. Same origin is compared by host and port
 * only, not scheme, so a TLS-terminating proxy in front of the module does not break its own pages.
 *
 * @example
 * originAllowed(SAME_ORIGIN_ONLY, { origin: 'http://cam.local:8000', host: 'cam.local:8000' }); // true
 * originAllowed(SAME_ORIGIN_ONLY, { origin: 'https://evil.example', host: 'cam.local:8000' }); // false
 */
export function originAllowed(policy: OriginPolicy, request: OriginRequest): boolean {
  if (request.origin === undefined) return true;
  if (policy.anyOrigin) return true;
  const origin = normaliseOrigin(request.origin);
  // `Origin: null` (sandboxed frames, file:// pages) names nobody: only "*" lets it in.
  if (origin === null) return false;
  if (policy.origins.has(origin)) return true;
  if (request.host === undefined) return false;
  return sameHost(new URL(origin), request.host);
}

function sameHost(origin: URL, hostHeader: string): boolean {
  let host: URL;
  try {
    host = new URL(`${origin.protocol}//${hostHeader}`);
  } catch {
    return false;
  }
  if (host.username || host.password || host.pathname !== '/') return false;
  return host.host === origin.host;
}

/** What a CORS preflight (`OPTIONS`) carries. */
export interface PreflightRequest extends OriginRequest {
  /** `Access-Control-Request-Method`. */
  readonly method: string | undefined;
  /** `Access-Control-Request-Headers`, comma-separated. */
  readonly headers: string | undefined;
}

/** Methods and headers WHEP clients use (RFC 9725): POST an offer, PATCH trickle ICE, DELETE the session. */
const WHEP_METHODS = ['POST', 'PATCH', 'DELETE', 'OPTIONS'];
const WHEP_REQUEST_HEADERS = new Set(['authorization', 'content-type', 'if-match']);
const WHEP_EXPOSED_HEADERS = 'Location, ETag, Link, Accept-Patch';
/** How long a browser may cache a preflight answer. */
const PREFLIGHT_MAX_AGE_S = 600;

/** An answer to a preflight or the CORS headers of a response: the status and headers to send. */
export type CorsDecision =
  | { readonly allowed: true; readonly headers: Readonly<Record<string, string>> }
  | { readonly allowed: false; readonly status: 403; readonly reason: string };

/**
 * Answers a WHEP CORS preflight: 204 with the headers when the origin is allowed and asks only for what WHEP
 * uses, 403 otherwise. `Vary: Origin` because the answer depends on it (caches must not share it).
 *
 * @example
 * const d = whepPreflight(policy, { origin: req.headers.origin, host: req.headers.host,
 *   method: req.headers['access-control-request-method'], headers: req.headers['access-control-request-headers'] });
 * d.allowed ? reply.code(204).headers(d.headers).send() : reply.code(d.status).send({ error: d.reason });
 */
export function whepPreflight(policy: OriginPolicy, request: PreflightRequest): CorsDecision {
  if (request.origin === undefined) return { allowed: false, status: 403, reason: 'a CORS preflight needs an Origin header' };
  if (!originAllowed(policy, request)) return { allowed: false, status: 403, reason: 'origin not allowed' };
  const method = (request.method ?? '').toUpperCase();
  if (!WHEP_METHODS.includes(method)) return { allowed: false, status: 403, reason: 'method not allowed for WHEP' };
  const asked = (request.headers ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  if (asked.some((h) => !WHEP_REQUEST_HEADERS.has(h))) return { allowed: false, status: 403, reason: 'request header not allowed for WHEP' };
  return {
    allowed: true,
    headers: {
      'access-control-allow-origin': policy.anyOrigin ? '*' : (request.origin),
      'access-control-allow-methods': WHEP_METHODS.join(', '),
      'access-control-allow-headers': [...WHEP_REQUEST_HEADERS].join(', '),
      'access-control-expose-headers': WHEP_EXPOSED_HEADERS,
      'access-control-max-age': String(PREFLIGHT_MAX_AGE_S),
      vary: 'Origin',
    },
  };
}

/**
 * CORS headers for the actual WHEP response (POST/PATCH/DELETE) to an allowed cross-origin request; none for
 * a same-origin or non-browser one. A refused origin gets 403 before the request is handled.
 *
 * @example
 * const d = whepCorsHeaders(policy, { origin: req.headers.origin, host: req.headers.host });
 * if (!d.allowed) return reply.code(403).send({ error: d.reason });
 * reply.headers(d.headers);
 */
export function whepCorsHeaders(policy: OriginPolicy, request: OriginRequest): CorsDecision {
  if (!originAllowed(policy, request)) return { allowed: false, status: 403, reason: 'origin not allowed' };
  if (request.origin === undefined) return { allowed: true, headers: {} };
  return {
    allowed: true,
    headers: {
      'access-control-allow-origin': policy.anyOrigin ? '*' : request.origin,
      'access-control-expose-headers': WHEP_EXPOSED_HEADERS,
      vary: 'Origin',
    },
  };
}
