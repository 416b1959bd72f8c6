import { DEFAULT_AUTH } from '../config/defaults.js';
import { ConfigError } from '../config/errors.js';
import { expand } from '../config/expand.js';
import { USER_NAME } from './credentials.js';
import { parsePasswordHash, PasswordHashFormatError, type PasswordHash } from './passwordHash.js';
import { staticKeyOf } from './jwtKey.js';
import { DEFAULT_RATE_LIMIT, type RateLimitSettings } from './RateLimiter.js';
import { NO_RIGHTS, parseRights, rightsOf, RightSyntaxError, type Rights } from './rights.js';

/** The twin key these settings live under. */
export const AUTH_KEY = 'auth';

/** One declared user: a password (expanded from the environment) or a stored hash, and the user's rights. */
export interface UserSettings {
  readonly name: string;
  /** The expanded password: RTSP Digest needs it, and only the engine's RTSPAuth and the checker ever see it. */
  readonly password: string | null;
  /** A parsed `password_hash` (web surfaces only: RTSP's Basic and Digest both need the password itself). */
  readonly hash: PasswordHash | null;
  /** The user's own rights united with those of its roles. */
  readonly rights: Rights;
}

/** JSON Web Tokens as bearer credentials (twin key `auth.jwt`). */
export interface JwtSettings {
  /** Where the identity provider publishes its keys (https, or http on loopback for tests). */
  readonly jwksUrl: string | null;
  /** A static verification key: a PEM public key or certificate, or a JWK as JSON. */
  readonly publicKey: string | null;
  /** A shared HMAC secret (HS256/384/512), at least 32 characters. */
  readonly secret: string | null;
  /** Required `iss`; required when keys come from a JWKS URL (one provider signs for many tenants). */
  readonly issuer: string | null;
  /** Required `aud`: a token minted for another service must not open this one. */
  readonly audience: readonly string[];
  /** The claim holding the token's rights: a list of strings or one space-separated string (OAuth `scope`). */
  readonly rightsClaim: string;
  /** Signature algorithms accepted; never `none`. */
  readonly algorithms: readonly string[];
  readonly clockToleranceS: number;
  /** How long a JWKS request may take before the token is refused (and cached keys used when there are some). */
  readonly jwksTimeoutMs: number;
}

/** The twin's `auth` key, checked and expanded. */
export interface AuthSettings {
  /** Refuse credentials on plain-text connections (HTTP, RTSP): only HTTPS and RTSPS take them. */
  readonly requireTls: boolean;
  readonly users: ReadonlyMap<string, UserSettings>;
  /** Rights of requests without credentials (default none). */
  readonly anonymous: Rights;
  readonly jwt: JwtSettings | null;
  readonly rateLimit: RateLimitSettings;
  /** The realm in challenges (`WWW-Authenticate: Basic realm="..."`). */
  readonly realm: string;
}

/** {@link parseAuthSettings}'s result. */
export interface ResolvedAuth {
  /** null: no `auth` key, the module is open (as before auth existed). */
  readonly settings: AuthSettings | null;
  /**
   * Every value to hide, for `Redactor.add`: the expanded variables by name, and derived forms that could
   * appear on the wire or in a log (the base64 `user:password` of a Basic header, hashes, literal passwords).
   */
  readonly secrets: ReadonlyMap<string, string>;
  /** Things that work but should not be so (a password written in the twin): for the log, no secrets inside. */
  readonly warnings: readonly string[];
}

const KNOWN_KEYS = new Set(['require_tls', 'users', 'roles', 'anonymous', 'jwt', 'rate_limit', 'realm']);
const USER_KEYS = new Set(['password', 'password_hash', 'rights', 'roles']);
const JWT_KEYS = new Set(['jwks_url', 'public_key', 'secret', 'issuer', 'audience', 'rights_claim', 'algorithms', 'clock_tolerance_s', 'jwks_timeout_ms']);
const ROLE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];
const MIN_SECRET_LENGTH = 32;
const MAX_PASSWORD_LENGTH = 1024;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Quotes a twin value for an error message; only ever called with values that are not secret. */
function quote(value: unknown): string {
  if (typeof value !== 'string') return (JSON.stringify(value) ?? String(value)).slice(0, 80);
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
}

function unknownKeys(value: Record<string, unknown>, known: ReadonlySet<string>, where: string): void {
  for (const key of Object.keys(value)) {
    // A misspelt key here would silently drop a protection: refuse it, unlike top-level twin keys.
    if (!known.has(key)) throw new ConfigError(`${where}.${key} is not a setting (known: ${[...known].join(', ')})`);
  }
}

function rightsAt(value: unknown, where: string): Rights {
  if (value === undefined || value === null) return NO_RIGHTS;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new ConfigError(`${where} must be a list of rights such as ["rtsp:player", "webrtc"]`);
  try {
    return parseRights(value as string[]);
  } catch (err) {
    if (err instanceof RightSyntaxError) throw new ConfigError(`${where}: ${err.message}`);
    throw err;
  }
}

function stringList(value: unknown, where: string): string[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value) || value.length === 0 || value.some((v) => typeof v !== 'string' || v === '')) {
    throw new ConfigError(`${where} must be a string or a list of strings`);
  }
  return value as string[];
}

/**
 * Reads the twin's `auth` key: users (passwords from `$VAR`s, or scrypt hashes), roles, anonymous rights,
 * JWT settings and the failed-login limit. Pure: the environment comes in as `env`. Throws {@link ConfigError}
 * naming the key (and the value, when it is not secret); `undefined`/`null` means no auth, the module is open.
 *
 * @example
 * const { settings, secrets, warnings } = parseAuthSettings({
 *   users: { alice: { password: '$ALICE_PASSWORD', rights: ['rtsp:player', 'webrtc'] } },
 *   anonymous: ['status'],
 * }, process.env);
 * redactor.add(secrets);
 */
export function parseAuthSettings(value: unknown, env: NodeJS.ProcessEnv): ResolvedAuth {
  const secrets = new Map<string, string>();
  const warnings: string[] = [];
  if (value === undefined || value === null) return { settings: null, secrets, warnings };
  if (!isObject(value)) throw new ConfigError(`${AUTH_KEY} must be an object`);
  unknownKeys(value, KNOWN_KEYS, AUTH_KEY);
  // Derived forms first: Redactor keeps the last name given for a value, so a variable's own name wins.
  const derived = new Map<string, string>();
  const expandSecret = (template: unknown, where: string): string => {
    if (typeof template !== 'string' || template === '') throw new ConfigError(`${where} must be a non-empty string`);
    const { text, values } = expand(template, env, where);
    for (const [k, v] of values) secrets.set(k, v);
    derived.set(where, text);
    return text;
  };

  const requireTls = value.require_tls ?? DEFAULT_AUTH.requireTls;
  if (typeof requireTls !== 'boolean') throw new ConfigError(`${AUTH_KEY}.require_tls must be true or false, got ${quote(requireTls)}`);
  const realm = value.realm ?? DEFAULT_AUTH.realm;
  if (typeof realm !== 'string' || !/^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}$/.test(realm)) {
    throw new ConfigError(`${AUTH_KEY}.realm must be 1-64 printable ASCII characters without quotes or backslashes`);
  }

  const roles = new Map<string, Rights>();
  if (value.roles !== undefined && value.roles !== null) {
    if (!isObject(value.roles)) throw new ConfigError(`${AUTH_KEY}.roles must be an object of role -> rights`);
    for (const [name, rights] of Object.entries(value.roles)) {
      if (!ROLE_NAME.test(name)) throw new ConfigError(`${AUTH_KEY}.roles: ${quote(name)} is not a role name (letters, digits, '.', '_', '-')`);
      roles.set(name, rightsAt(rights, `${AUTH_KEY}.roles.${name}`));
    }
  }

  const users = new Map<string, UserSettings>();
  if (value.users !== undefined && value.users !== null) {
    if (!isObject(value.users)) throw new ConfigError(`${AUTH_KEY}.users must be an object of user name -> settings`);
    for (const [name, user] of Object.entries(value.users)) {
      if (user === null) continue; // a twin patch deletes with null
      const where = `${AUTH_KEY}.users.${name}`;
      if (!USER_NAME.test(name)) throw new ConfigError(`${AUTH_KEY}.users: ${quote(name)} is not a user name (1-64 letters, digits, '.', '_', '@', '+', '-')`);
      if (!isObject(user)) throw new ConfigError(`${where} must be an object with "password" or "password_hash"`);
      unknownKeys(user, USER_KEYS, where);
      const hasPassword = user.password !== undefined && user.password !== null;
      const hasHash = user.password_hash !== undefined && user.password_hash !== null;
      if (hasPassword === hasHash) throw new ConfigError(`${where} needs exactly one of "password" or "password_hash"`);
      let password: string | null = null;
      let hash: PasswordHash | null = null;
      if (hasPassword) {
        if (typeof user.password === 'string' && !user.password.includes('$')) {
          warnings.push(`${where}.password is written in the twin, where anyone who can read the twin sees it: use "$VARIABLE" or password_hash`);
        }
        password = expandSecret(user.password, `${where}.password`);
        if (password.length > MAX_PASSWORD_LENGTH) throw new ConfigError(`${where}.password is longer than ${MAX_PASSWORD_LENGTH} characters`);
        if (/[\x00-\x1f\x7f]/.test(password)) throw new ConfigError(`${where}.password holds control characters`);
        derived.set(`${where}.basic`, Buffer.from(`${name}:${password}`, 'utf8').toString('base64'));
      } else {
        const text = expandSecret(user.password_hash, `${where}.password_hash`);
        try {
          hash = parsePasswordHash(text);
        } catch (err) {
          if (err instanceof PasswordHashFormatError) throw new ConfigError(`${where}.password_hash: ${err.message}`);
          throw err;
        }
      }
      const own = rightsAt(user.rights, `${where}.rights`);
      const fromRoles: Rights[] = [];
      if (user.roles !== undefined && user.roles !== null) {
        for (const role of stringList(user.roles, `${where}.roles`)) {
          const rights = roles.get(role);
          if (!rights) throw new ConfigError(`${where}.roles: no role ${quote(role)} in ${AUTH_KEY}.roles`);
          fromRoles.push(rights);
        }
      }
      const rights = rightsOf(own, ...fromRoles);
      if (hash && (rights.actions.has('rtsp') || rights.mounts.size > 0)) {
        warnings.push(`${where} has RTSP rights but only a password_hash: RTSP (Basic and Digest) needs the password, so this user can watch over WebRTC and HTTP only`);
      }
      users.set(name, { name, password, hash, rights });
    }
  }

  const anonymous = rightsAt(value.anonymous, `${AUTH_KEY}.anonymous`);
  const jwt = value.jwt === undefined || value.jwt === null ? null : jwtSettingsOf(value.jwt, expandSecret);
  const rateLimit = rateLimitOf(value.rate_limit);
  if (users.size === 0 && jwt === null) {
    warnings.push(`${AUTH_KEY} declares no users and no jwt: only what ${AUTH_KEY}.anonymous allows is possible`);
  }
  const allSecrets = new Map<string, string>([...derived, ...secrets]);
  return { settings: { requireTls, users, anonymous, jwt, rateLimit, realm }, secrets: allSecrets, warnings };
}

function jwtSettingsOf(value: unknown, expandSecret: (template: unknown, where: string) => string): JwtSettings {
  const where = `${AUTH_KEY}.jwt`;
  if (!isObject(value)) throw new ConfigError(`${where} must be an object`);
  unknownKeys(value, JWT_KEYS, where);
  const sources = ['jwks_url', 'public_key', 'secret'].filter((k) => value[k] !== undefined && value[k] !== null);
  if (sources.length !== 1) throw new ConfigError(`${where} needs exactly one of jwks_url, public_key or secret`);

  let jwksUrl: string | null = null;
  if (value.jwks_url !== undefined && value.jwks_url !== null) {
    if (typeof value.jwks_url !== 'string') throw new ConfigError(`${where}.jwks_url must be a URL`);
    let url: URL;
    try {
      url = new URL(value.jwks_url);
    } catch {
      throw new ConfigError(`${where}.jwks_url ${quote(value.jwks_url)} is not a URL`);
    }
    const loopback = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
      throw new ConfigError(`${where}.jwks_url must be https:// (keys fetched over plain HTTP could be swapped on the way)`);
    }
    if (url.username || url.password) throw new ConfigError(`${where}.jwks_url must not carry user information`);
    jwksUrl = url.href;
  }
  const publicKey = value.public_key === undefined || value.public_key === null ? null : expandSecret(value.public_key, `${where}.public_key`);
  if (publicKey !== null && !/-----BEGIN (PUBLIC KEY|CERTIFICATE|RSA PUBLIC KEY)-----/.test(publicKey) && !publicKey.trim().startsWith('{')) {
    throw new ConfigError(`${where}.public_key must be a PEM public key or certificate, or a JWK as JSON`);
  }
  const secret = value.secret === undefined || value.secret === null ? null : expandSecret(value.secret, `${where}.secret`);
  if (secret !== null && secret.length < MIN_SECRET_LENGTH) throw new ConfigError(`${where}.secret must be at least ${MIN_SECRET_LENGTH} characters`);

  const issuer = value.issuer ?? null;
  if (issuer !== null && (typeof issuer !== 'string' || issuer === '')) throw new ConfigError(`${where}.issuer must be a string`);
  if (jwksUrl !== null && issuer === null) throw new ConfigError(`${where}.issuer is required with jwks_url (a provider signs tokens for many issuers and tenants)`);
  if (value.audience === undefined || value.audience === null) throw new ConfigError(`${where}.audience is required (the "aud" tokens for this module carry)`);
  const audience = stringList(value.audience, `${where}.audience`);
  const rightsClaim = value.rights_claim ?? DEFAULT_AUTH.jwt.rightsClaim;
  if (typeof rightsClaim !== 'string' || !/^[A-Za-z0-9_:./-]{1,128}$/.test(rightsClaim)) throw new ConfigError(`${where}.rights_claim must be a claim name`);

  const allowed = secret !== null ? HMAC_ALGORITHMS : ASYMMETRIC_ALGORITHMS;
  const algorithms = value.algorithms === undefined || value.algorithms === null ? allowed : stringList(value.algorithms, `${where}.algorithms`);
  for (const alg of algorithms) {
    if (!allowed.includes(alg)) {
      throw new ConfigError(`${where}.algorithms: ${quote(alg)} is not usable with ${secret !== null ? 'a secret' : 'public keys'} (allowed: ${allowed.join(', ')})`);
    }
  }
  const clockToleranceS = value.clock_tolerance_s ?? DEFAULT_AUTH.jwt.clockToleranceS;
  if (typeof clockToleranceS !== 'number' || !Number.isInteger(clockToleranceS) || clockToleranceS < 0 || clockToleranceS > 600) {
    throw new ConfigError(`${where}.clock_tolerance_s must be a whole number of seconds from 0 to 600, got ${quote(clockToleranceS)}`);
  }
  const jwksTimeoutMs = value.jwks_timeout_ms ?? DEFAULT_AUTH.jwt.jwksTimeoutMs;
  if (typeof jwksTimeoutMs !== 'number' || !Number.isInteger(jwksTimeoutMs) || jwksTimeoutMs < 100 || jwksTimeoutMs > 60_000) {
    throw new ConfigError(`${where}.jwks_timeout_ms must be a whole number of milliseconds from 100 to 60000, got ${quote(jwksTimeoutMs)}`);
  }
  staticKeyOf({ publicKey, secret }); // a key Node cannot read is a config error now, not a refused token later
  return { jwksUrl, publicKey, secret, issuer, audience, rightsClaim, algorithms, clockToleranceS, jwksTimeoutMs };
}

function rateLimitOf(value: unknown): RateLimitSettings {
  const where = `${AUTH_KEY}.rate_limit`;
  if (value === undefined || value === null) return DEFAULT_RATE_LIMIT;
  if (!isObject(value)) throw new ConfigError(`${where} must be an object`);
  unknownKeys(value, new Set(['max_failures', 'window_s', 'block_s']), where);
  const number = (key: string, fallback: number, max: number): number => {
    const v = value[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new ConfigError(`${where}.${key} must be a whole number from 1 to ${max}, got ${quote(v)}`);
    return v;
  };
  return {
    maxFailures: number('max_failures', DEFAULT_RATE_LIMIT.maxFailures, 1000),
    windowMs: number('window_s', DEFAULT_RATE_LIMIT.windowMs / 1000, 86_400) * 1000,
    blockMs: number('block_s', DEFAULT_RATE_LIMIT.blockMs / 1000, 86_400) * 1000,
    maxClients: DEFAULT_RATE_LIMIT.maxClients,
  };
}
