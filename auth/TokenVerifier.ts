import type { KeyObject } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type RemoteJWKSet } from 'jose';
import { lenientRights, type Rights } from './rights.js';
import type { JwtSettings } from './settings.js';
import { staticKeyOf } from './jwtKey.js';

/** A token that checked out: who it names, what it may do, until when. */
export interface VerifiedToken {
  /** `sub`, or `client_id`/`azp` for client-credential tokens without one. */
  readonly subject: string;
  readonly rights: Rights;
  /** `exp` in milliseconds since the epoch: a long-lived websocket is closed then. */
  readonly expiresAt: number;
}

/** Why a token was refused; `reason` is a fixed text (never the token or its claims), safe to log and send. */
export class TokenRejectedError extends Error {
  override readonly name = 'TokenRejectedError';
  constructor(
    /** `expired`: refused for its age alone (a client may refresh); `unavailable`: keys could not be had. */
    readonly kind: 'invalid' | 'expired' | 'unavailable',
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** Keys are re-fetched at most this often when a token names an unknown `kid` (a rotation). */
const JWKS_COOLDOWN_MS = 30_000;
/** Fetched keys are trusted this long before a refresh is tried; after that, still used if the refresh fails. */
const JWKS_MAX_AGE_MS = 10 * 60_000;

/**
 * Checks bearer tokens (JWS-signed JWTs) against the configured keys with `jose`: signature with an allowed
 * algorithm (never `none`), `exp` required, `iss`/`aud` as configured, and the rights claim read leniently
 * (rights it does not know are ignored). A JWKS URL is fetched with a bounded timeout; when a refresh fails
 * the last keys fetched keep working, so an identity provider outage does not lock viewers out.
 *
 * @example
 * const verifier = new TokenVerifier(settings.jwt);
 * const { subject, rights } = await verifier.verify(token); // throws TokenRejectedError
 */
export class TokenVerifier {
  readonly #settings: JwtSettings;
  /** The remote set (JWKS URL) or a resolver over the static key. */
  readonly #remote: RemoteJWKSet | null;
  readonly #static: KeyObject | null;
  /** Clock in milliseconds for `exp`/`nbf` and the JWKS back-off (injected in tests). */
  readonly #now: () => number;
  /** When a JWKS refresh last failed: for a cool-down, cached keys are used without asking again. */
  #failedAt = -Infinity;

  constructor(settings: JwtSettings, options: { readonly now?: () => number; readonly jwksMaxAgeMs?: number } = {}) {
    this.#settings = settings;
    this.#now = options.now ?? Date.now;
    this.#static = staticKeyOf(settings);
    this.#remote = settings.jwksUrl
      ? createRemoteJWKSet(new URL(settings.jwksUrl), {
          timeoutDuration: settings.jwksTimeoutMs,
          cooldownDuration: JWKS_COOLDOWN_MS,
          cacheMaxAge: options.jwksMaxAgeMs ?? JWKS_MAX_AGE_MS,
        })
      : null;
  }

  /** The settings this verifier was built from (to tell whether new settings need a new one). */
  get settings(): JwtSettings {
    return this.#settings;
  }

  /** Verifies `token`; resolves with what it grants or rejects with {@link TokenRejectedError}. */
  async verify(token: string): Promise<VerifiedToken> {
    const options = {
      algorithms: [...this.#settings.algorithms],
      audience: [...this.#settings.audience],
      ...(this.#settings.issuer !== null ? { issuer: this.#settings.issuer } : {}),
      clockTolerance: this.#settings.clockToleranceS,
      requiredClaims: ['exp'],
      currentDate: new Date(this.#now()),
    };
    let payload: JWTPayload;
    try {
      if (this.#static) payload = (await jwtVerify(token, this.#static, options)).payload;
      else payload = (await jwtVerify(token, this.#keys(), options)).payload;
    } catch (err) {
      throw rejection(err);
    }
    const subject = [payload.sub, payload.client_id, payload.azp].find((s): s is string => typeof s === 'string' && s !== '');
    if (subject === undefined) throw new TokenRejectedError('invalid', 'token names no subject (sub)');
    return { subject: subject.slice(0, 256), rights: rightsFromClaim(payload[this.#settings.rightsClaim]), expiresAt: (payload.exp ?? 0) * 1000 };
  }

  /** The remote set, falling back to the last keys it fetched when fetching fails (timeout, 5xx, no route). */
  #keys(): JWTVerifyGetKey {
    const remote = this.#remote!;
    return async (header, input) => {
      const cached = remote.jwks();
      // Right after a failed refresh, do not make every request wait for the timeout again.
      if (cached && this.#now() - this.#failedAt < JWKS_COOLDOWN_MS) return createLocalJWKSet(cached)(header, input);
      try {
        return await remote(header, input);
      } catch (err) {
        if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSEAlgNotAllowed) throw err;
        this.#failedAt = this.#now();
        const last = remote.jwks();
        if (!last) {
          if (err instanceof errors.JWKSTimeout) throw err;
          throw new TokenRejectedError('unavailable', 'the identity provider\'s keys (jwks_url) could not be fetched');
        }
        return createLocalJWKSet(last)(header, input);
      }
    };
  }
}

/** Rights from the claim: a list of strings, or one space-separated string as OAuth's `scope`. */
function rightsFromClaim(claim: unknown): Rights {
  if (typeof claim === 'string') return lenientRights(claim.split(' ').filter((s) => s !== '').slice(0, 256));
  if (Array.isArray(claim)) return lenientRights(claim.filter((s): s is string => typeof s === 'string').slice(0, 256));
  return lenientRights([]);
}

function rejection(err: unknown): TokenRejectedError {
  if (err instanceof TokenRejectedError) return err;
  if (err instanceof errors.JWTExpired) return new TokenRejectedError('expired', 'token expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    // `claim` names which check failed (aud, iss, nbf): useful, and no value of the token.
    return new TokenRejectedError('invalid', `token claim "${err.claim}" check failed`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new TokenRejectedError('invalid', 'token signed with an algorithm that is not allowed');
  if (err instanceof errors.JWSSignatureVerificationFailed) return new TokenRejectedError('invalid', 'token signature does not verify');
  if (err instanceof errors.JWKSNoMatchingKey) return new TokenRejectedError('invalid', 'token signed by a key the identity provider does not publish');
  if (err instanceof errors.JWKSTimeout) return new TokenRejectedError('unavailable', 'the identity provider\'s keys (jwks_url) did not arrive in time');
  if (err instanceof errors.JOSEError) return new TokenRejectedError('invalid', 'token is not a valid signed JWT');
  return new TokenRejectedError('invalid', 'token could not be verified');
}
