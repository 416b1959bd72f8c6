import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { basicCredentials, parseAuthorization, parseToken, type Credentials } from './credentials.js';
import { rightsChange, type RightsChange } from './diff.js';
import { LruMap } from './LruMap.js';
import { DEFAULT_SCRYPT_PARAMS, hashPassword, parsePasswordHash, verifyPassword, type PasswordHash } from './passwordHash.js';
import { RateLimiter } from './RateLimiter.js';
import { ALL_RIGHTS, grants, type Action } from './rights.js';
import type { AuthSettings, UserSettings } from './settings.js';
import { TokenRejectedError, TokenVerifier } from './TokenVerifier.js';
import type { Principal } from './principal.js';

export type { Principal } from './principal.js';

/** The principal of the open module. */
export const OPEN_PRINCIPAL: Principal = Object.freeze({ id: 'open', kind: 'open', name: '', rights: ALL_RIGHTS, expiresAt: null });

/** One request's credentials, from whichever surface it came (HTTP, websocket, RTSP, a sign-in form). */
export interface AuthRequest {
  /** The client's address (`request.socket.remoteAddress`), for the failed-login limit. */
  readonly address: string;
  /** Whether the connection is TLS (HTTPS, WSS, RTSPS). */
  readonly secure: boolean;
  /** The `Authorization` header. */
  readonly authorization?: string | readonly string[] | undefined;
  /** The `token` query parameter (pages and websockets cannot set headers). */
  readonly token?: string | null | undefined;
  /** A user and password given apart (RTSP URL userinfo, a sign-in form). */
  readonly credentials?: { readonly user: string; readonly password: string } | undefined;
}

/** Why authentication failed: a fixed vocabulary, used for the metric label and the log. */
export type AuthFailureReason =
  | 'malformed'
  | 'unknown-user'
  | 'bad-password'
  | 'bad-token'
  | 'expired-token'
  | 'rate-limited'
  | 'tls-required'
  | 'keys-unavailable';

/** A refusal to answer with: status, a message without secrets, challenge headers, Retry-After. */
export interface AuthRefusal {
  readonly status: 400 | 401 | 403 | 429 | 503;
  readonly reason: AuthFailureReason | 'forbidden' | 'sign-in-required';
  /** Safe to send and to log: never the credentials, never whether the user exists. */
  readonly message: string;
  /** `WWW-Authenticate` values (one header each); empty when asking again would not help or would be unsafe. */
  readonly challenges: readonly string[];
  /** Seconds for `Retry-After` (rate limited), else null. */
  readonly retryAfterS: number | null;
}

/** What {@link AccessControl.authenticate} resolves with. */
export type AuthResult = { readonly ok: true; readonly principal: Principal } | ({ readonly ok: false } & AuthRefusal);

/** A failed login, for the log and the `auth_failures_total{reason}` metric; no secret inside. */
export interface LoginFailure {
  readonly address: string;
  readonly method: 'basic' | 'bearer' | 'unknown';
  readonly reason: AuthFailureReason;
  /** The user name, only when it names a declared user (a mistyped name may be a password typed in the wrong field). */
  readonly user: string | null;
  /** Milliseconds the client is now blocked for (0: not blocked). */
  readonly blockedForMs: number;
}

/** Observer events: for monitoring, so metrics code never reaches into the decision. */
export type AccessControlEvents = {
  loginfailed: [LoginFailure];
  login: [{ readonly principal: Principal; readonly address: string }];
};

/** How long a successful check of a hashed password is remembered, so scrypt runs once per login, not per request. */
const VERIFIED_TTL_MS = 5 * 60_000;
const VERIFIED_MAX = 1024;

/**
 * The access decision for every surface: who a request is ({@link authenticate}) and whether it may do
 * something ({@link authorize}). Without settings (no `auth` key) the module is open: everyone is
 * {@link OPEN_PRINCIPAL}. Settings can be replaced live with {@link update}, which says whose rights changed.
 *
 * Passwords are compared in constant time; an unknown user costs the same as a wrong password (a dummy
 * scrypt runs), so timing does not tell which users exist. Failed logins count per client address; a blocked
 * client is answered 429 without its credentials being looked at.
 *
 * @example
 * const access = new AccessControl(parseAuthSettings(desired.auth, process.env).settings);
 * const result = await access.authenticate({ address: req.ip, secure: false, authorization: req.headers.authorization });
 * if (!result.ok) return refuse(reply, result);
 * if (!access.authorize(result.principal, 'metrics')) return refuse(reply, access.refusal(result.principal, false));
 */
export class AccessControl {
  /** Monitoring events: `loginfailed`, `login`. */
  readonly observer = new EventEmitter<AccessControlEvents>();
  /** null: open. */
  #settings: AuthSettings | null;
  #limiter: RateLimiter;
  #verifier: TokenVerifier | null;
  /** HMAC(user, password) of recent successful hashed-password checks -> the user settings checked against. */
  readonly #verified: LruMap<string, UserSettings>;
  /** Key of that HMAC, per process: the cache never holds anything a dump could turn back into a password. */
  readonly #cacheKey = randomBytes(32);
  /** Compared against for unknown users, so they take as long as known ones. */
  #dummyHash: Promise<PasswordHash> | null = null;
  readonly #now: () => number;

  constructor(settings: AuthSettings | null, options: { readonly now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
    this.#settings = settings;
    this.#limiter = new RateLimiter(settings?.rateLimit, this.#now);
    this.#verifier = settings?.jwt ? new TokenVerifier(settings.jwt, { now: this.#now }) : null;
    this.#verified = new LruMap(VERIFIED_MAX, this.#now);
  }

  /** `open` without an `auth` key (shown in the status document and logged at start), else `protected`. */
  get mode(): 'open' | 'protected' {
    return this.#settings === null ? 'open' : 'protected';
  }

  get settings(): AuthSettings | null {
    return this.#settings;
  }

  /**
   * Replaces the settings (a twin change) and returns whose rights changed, so only their viewers are closed.
   * The failed-login counts stay (unless the limit itself changed), and so do fetched JWKS keys when the token
   * settings are the same.
   *
   * @example
   * const change = access.update(next.settings);
   * gateway.closeWhere((peer) => change.affects(peer.principal, peer.secure));
   */
  update(settings: AuthSettings | null): RightsChange {
    const change = rightsChange(this.#settings, settings);
    const before = this.#settings;
    this.#settings = settings;
    if (JSON.stringify(before?.rateLimit) !== JSON.stringify(settings?.rateLimit)) this.#limiter = new RateLimiter(settings?.rateLimit, this.#now);
    if (JSON.stringify(before?.jwt ?? null) !== JSON.stringify(settings?.jwt ?? null)) {
      this.#verifier = settings?.jwt ? new TokenVerifier(settings.jwt, { now: this.#now }) : null;
    }
    this.#verified.clear();
    return change;
  }

  /**
   * Who a request is. No credentials: the anonymous principal (whose rights may be none; {@link authorize}
   * decides). Credentials that do not check out, or come over plain text when TLS is required: a refusal.
   */
  async authenticate(request: AuthRequest): Promise<AuthResult> {
    const settings = this.#settings;
    if (settings === null) return { ok: true, principal: OPEN_PRINCIPAL };
    const credentials = this.#credentialsOf(request);
    if (credentials.kind === 'none') return { ok: true, principal: this.#anonymous(settings) };
    if (settings.requireTls && !request.secure) {
      // Checked before anything else: the credentials were exposed already, but they are not accepted, so
      // no client can come to depend on sending them in clear.
      return this.#refuse(request, credentials, 'tls-required', false);
    }
    const retryAfterMs = this.#limiter.retryAfterMs(request.address);
    if (retryAfterMs > 0) return { ok: false, ...rateLimited(retryAfterMs) };
    if (credentials.kind === 'malformed') return this.#refuse(request, credentials, 'malformed', true);
    if (credentials.kind === 'basic') {
      const user = settings.users.get(credentials.user);
      const ok = await this.#checkPassword(settings, user, credentials.password, credentials.user);
      // Settings replaced while scrypt ran: decide again on the new ones, or the principal would carry rights
      // that the change (already reported by update()) did not account for.
      if (this.#settings !== settings) return this.authenticate(request);
      if (!user) return this.#refuse(request, credentials, 'unknown-user', true);
      if (!ok) return this.#refuse(request, credentials, 'bad-password', true);
      return this.#accept(request, { id: `user:${user.name}`, kind: 'user', name: user.name, rights: user.rights, expiresAt: null });
    }
    if (!this.#verifier) return this.#refuse(request, credentials, 'bad-token', true);
    try {
      const token = await this.#verifier.verify(credentials.token);
      if (this.#settings !== settings) return this.authenticate(request);
      return this.#accept(request, { id: `token:${token.subject}`, kind: 'token', name: token.subject, rights: token.rights, expiresAt: token.expiresAt });
    } catch (err) {
      if (err instanceof TokenRejectedError && err.kind === 'unavailable') {
        // Not the client's fault: not counted, and 503 so it retries later instead of asking the user again.
        return { ok: false, status: 503, reason: 'keys-unavailable', message: 'tokens cannot be checked right now', challenges: [], retryAfterS: 5 };
      }
      const reason = err instanceof TokenRejectedError && err.kind === 'expired' ? 'expired-token' : 'bad-token';
      return this.#refuse(request, credentials, reason, true);
    }
  }

  /**
   * Whether `principal` may do `action` (on `resource`: the RTSP mount, with or without its `/`). A token
   * principal past its `exp` may do nothing.
   *
   * @example
   * access.authorize(principal, 'rtsp', '/player');
   * access.authorize(principal, 'webrtc');
   */
  authorize(principal: Principal, action: Action, resource?: string): boolean {
    if (principal.expiresAt !== null && principal.expiresAt <= this.#now()) return false;
    return grants(principal.rights, action, resource);
  }

  /**
   * The answer for a principal {@link authorize} said no to: 401 with a challenge for the anonymous (sign in),
   * 403 for someone signed in without the right. On a plain connection with `require_tls`, 403 and no
   * challenge, so no browser offers to send a password in clear.
   */
  refusal(principal: Principal, secure: boolean): AuthRefusal {
    const settings = this.#settings;
    if (principal.kind !== 'anonymous' || settings === null) {
      return { status: 403, reason: 'forbidden', message: 'not allowed', challenges: [], retryAfterS: null };
    }
    if (settings.requireTls && !secure) {
      return { status: 403, reason: 'tls-required', message: 'sign in over TLS (https://, wss://, rtsps://)', challenges: [], retryAfterS: null };
    }
    return { status: 401, reason: 'sign-in-required', message: 'sign in required', challenges: this.challenges(), retryAfterS: null };
  }

  /** `WWW-Authenticate` values for this configuration: Basic when users exist, Bearer when tokens are accepted. */
  challenges(error?: 'invalid_token'): string[] {
    const settings = this.#settings;
    if (settings === null) return [];
    const out: string[] = [];
    if (settings.users.size > 0) out.push(`Basic realm="${settings.realm}", charset="UTF-8"`);
    if (settings.jwt) out.push(`Bearer realm="${settings.realm}"${error ? `, error="${error}"` : ''}`);
    return out;
  }

  #credentialsOf(request: AuthRequest): Credentials {
    const given: Credentials[] = [];
    const header = parseAuthorization(request.authorization);
    if (header.kind !== 'none') given.push(header);
    if (request.token !== undefined && request.token !== null) given.push(parseToken(request.token));
    if (request.credentials) given.push(basicCredentials(request.credentials.user, request.credentials.password));
    if (given.length > 1) return { kind: 'malformed', reason: 'more than one credential in one request' };
    return given[0] ?? { kind: 'none' };
  }

  #anonymous(settings: AuthSettings): Principal {
    return { id: 'anonymous', kind: 'anonymous', name: '', rights: settings.anonymous, expiresAt: null };
  }

  /** Constant-time for plain passwords; scrypt (once per login, then cached) for hashes and for unknown users. */
  async #checkPassword(settings: AuthSettings, user: UserSettings | undefined, password: string, name: string): Promise<boolean> {
    // Unknown users cost what known ones cost: a plain comparison when every user has a plain password.
    const plain = user ? user.password : [...settings.users.values()].every((u) => u.password !== null) ? this.#cacheKey.toString('hex') : null;
    if (plain !== null) {
      const a = createHash('sha256').update(password.normalize('NFC'), 'utf8').digest();
      const b = createHash('sha256').update(plain.normalize('NFC'), 'utf8').digest();
      return timingSafeEqual(a, b) && user !== undefined;
    }
    const cacheKey = createHmac('sha256', this.#cacheKey).update(name).update('\0').update(password).digest('base64');
    if (user && this.#verified.get(cacheKey) === user) return true;
    if (!user) {
      this.#dummyHash ??= hashPassword(randomBytes(16).toString('base64'), DEFAULT_SCRYPT_PARAMS).then(parsePasswordHash);
      await verifyPassword(password, await this.#dummyHash);
      return false;
    }
    const ok = await verifyPassword(password, user.hash!);
    if (ok) this.#verified.set(cacheKey, user, VERIFIED_TTL_MS);
    return ok;
  }

  #accept(request: AuthRequest, principal: Principal): AuthResult {
    this.#limiter.succeed(request.address);
    this.observer.emit('login', { principal, address: request.address });
    return { ok: true, principal };
  }

  #refuse(request: AuthRequest, credentials: Credentials, reason: AuthFailureReason, count: boolean): AuthResult {
    const blockedForMs = count ? this.#limiter.fail(request.address) : 0;
    const method = credentials.kind === 'basic' ? 'basic' : credentials.kind === 'bearer' ? 'bearer' : 'unknown';
    const user = credentials.kind === 'basic' && this.#settings?.users.has(credentials.user) ? credentials.user : null;
    this.observer.emit('loginfailed', { address: request.address, method, reason, user, blockedForMs });
    if (reason === 'tls-required') {
      return { ok: false, status: 403, reason, message: 'credentials are accepted over TLS only (https://, wss://, rtsps://)', challenges: [], retryAfterS: null };
    }
    if (blockedForMs > 0) return { ok: false, ...rateLimited(blockedForMs) };
    const message = reason === 'expired-token' ? 'token expired' : reason === 'malformed' && credentials.kind === 'malformed' ? credentials.reason : 'credentials not accepted';
    const tokenError = method === 'bearer' ? 'invalid_token' : undefined;
    return { ok: false, status: 401, reason, message, challenges: this.challenges(tokenError), retryAfterS: null };
  }
}

function rateLimited(retryAfterMs: number): AuthRefusal {
  return { status: 429, reason: 'rate-limited', message: 'too many failed sign-ins: try again later', challenges: [], retryAfterS: Math.ceil(retryAfterMs / 1000) };
}
