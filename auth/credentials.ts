/**
 * Reading credentials off the wire: the HTTP `Authorization` header (Basic, RFC 7617; Bearer, RFC 6750) and the
 * `token` query parameter that pages and websockets use when they cannot set a header. Everything here is
 * hostile input: bounded, ASCII-checked, and never echoed back in a reason.
 */

/** Longest header or token accepted: JWTs with many claims stay well under it, and nothing legit comes near. */
export const MAX_CREDENTIAL_LENGTH = 8192;
/** A user name as the twin may declare it (no `:`, which ends the name in Basic). */
export const USER_NAME = /^[A-Za-z0-9._@+-]{1,64}$/;

/** What a request carried. `malformed` reasons are fixed texts, safe to log and to send. */
export type Credentials =
  | { readonly kind: 'none' }
  | { readonly kind: 'basic'; readonly user: string; readonly password: string }
  | { readonly kind: 'bearer'; readonly token: string }
  | { readonly kind: 'malformed'; readonly reason: string };

const NONE: Credentials = Object.freeze({ kind: 'none' });
/** Printable ASCII plus space and tab: what an Authorization header may hold (Node gives headers as latin1). */
const HEADER_TEXT = /^[\x20-\x7e\t]*$/;
/** RFC 7235 token68. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** No control characters in a decoded user or password. */
const CONTROL = /[\x00-\x1f\x7f]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function malformed(reason: string): Credentials {
  return { kind: 'malformed', reason };
}

/**
 * Parses an `Authorization` header value. An absent or empty header is `none`; anything it cannot read is
 * `malformed` with a fixed reason (never the header's text).
 *
 * @example
 * parseAuthorization('Basic YWxpY2U6czNjcmV0'); // { kind: 'basic', user: 'alice', password: 's3cret' }
 * parseAuthorization('Bearer eyJ...');          // { kind: 'bearer', token: 'eyJ...' }
 * parseAuthorization('Basic %%%');              // { kind: 'malformed', reason: 'Basic credentials are not base64' }
 */
export function parseAuthorization(header: string | readonly string[] | undefined): Credentials {
  if (header === undefined) return NONE;
  // Node joins nothing for Authorization, but a raw header list may repeat it: two credentials are one too many.
  if (typeof header !== 'string') return header.length === 0 ? NONE : header.length === 1 ? parseAuthorization(header[0]) : malformed('more than one Authorization header');
  if (header.length > MAX_CREDENTIAL_LENGTH) return malformed('Authorization header too long');
  if (!HEADER_TEXT.test(header)) return malformed('Authorization header is not ASCII');
  const text = header.trim();
  if (text === '') return NONE;
  const space = text.indexOf(' ');
  const scheme = (space < 0 ? text : text.slice(0, space)).toLowerCase();
  const value = space < 0 ? '' : text.slice(space + 1).trim();
  if (scheme === 'basic') return parseBasic(value);
  if (scheme === 'bearer') return parseToken(value);
  return malformed('unsupported Authorization scheme (use Basic or Bearer)');
}

/** The base64 part of a Basic header: `user:password` in UTF-8 (RFC 7617 `charset="UTF-8"`). */
function parseBasic(value: string): Credentials {
  if (value === '' || value.length % 4 !== 0 || !BASE64.test(value)) return malformed('Basic credentials are not base64');
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(value, 'base64'));
  } catch {
    return malformed('Basic credentials are not UTF-8');
  }
  const colon = decoded.indexOf(':');
  if (colon <= 0) return malformed('Basic credentials must be user:password');
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (CONTROL.test(decoded)) return malformed('Basic credentials hold control characters');
  return basicCredentials(user, password);
}

/**
 * Credentials given as a user and a password (RTSP URL userinfo, a sign-in form), checked as Basic ones are.
 *
 * @example
 * basicCredentials('alice', 's3cret'); // { kind: 'basic', user: 'alice', password: 's3cret' }
 */
export function basicCredentials(user: string, password: string): Credentials {
  if (user.length === 0 || user.length > 256 || password.length > 1024) return malformed('user or password too long or empty');
  if (CONTROL.test(user) || CONTROL.test(password)) return malformed('user or password holds control characters');
  return { kind: 'basic', user, password };
}

/**
 * A bearer token from a header or a `token` query parameter: token68 characters, bounded length.
 *
 * @example
 * parseToken(new URL(request.url, 'http://x').searchParams.get('token') ?? '');
 */
export function parseToken(value: string | null | undefined): Credentials {
  if (value === null || value === undefined || value === '') return value === '' ? malformed('empty bearer token') : NONE;
  if (value.length > MAX_CREDENTIAL_LENGTH) return malformed('bearer token too long');
  if (!TOKEN68.test(value)) return malformed('bearer token has characters a token cannot hold');
  return { kind: 'bearer', token: value };
}

/** `token=<anything>` in a query string. */
const TOKEN_PARAMETER = /([?&]token=)[^&#]*/gi;

/**
 * A URL safe to log: the value of a `token` query parameter replaced by `***`. Request logs must go through
 * this, since pages and websockets carry their token in the URL.
 *
 * @example
 * maskTokenParameter('/ws?mode=shared&token=eyJhbGciOi...'); // '/ws?mode=shared&token=***'
 */
export function maskTokenParameter(url: string): string {
  return url.replace(TOKEN_PARAMETER, '$1***');
}
