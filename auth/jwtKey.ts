import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { ConfigError } from '../config/errors.js';

/** The static key settings of `auth.jwt` (settings.ts JwtSettings has them). */
export interface StaticKeySettings {
  /** A PEM public key or certificate, or a JWK. */
  readonly publicKey: string | null;
  /** A shared HMAC secret. */
  readonly secret: string | null;
}

/**
 * The key a static `public_key` setting names: a PEM public key or certificate, or a JWK. Throws
 * {@link ConfigError} (without quoting the key) when Node cannot read it.
 *
 * @example
 * staticKeyOf(settings.jwt); // KeyObject for jose's jwtVerify (TokenVerifier); settings.ts calls it to check the key
 */
export function staticKeyOf(jwt: StaticKeySettings): KeyObject | null {
  if (jwt.secret !== null) return createSecretKey(Buffer.from(jwt.secret, 'utf8'));
  if (jwt.publicKey === null) return null;
  try {
    const text = jwt.publicKey.trim();
    if (text.startsWith('{')) {
      const jwk = JSON.parse(text) as Record<string, unknown>;
      if ('d' in jwk || 'k' in jwk) throw new ConfigError('auth.jwt.public_key is a private or secret JWK: give the public key only');
      return createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    }
    return createPublicKey(text);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError('auth.jwt.public_key is not a public key Node can read (PEM "PUBLIC KEY", certificate, or JWK)');
  }
}
