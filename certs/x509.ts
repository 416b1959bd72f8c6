import { webcrypto } from 'node:crypto';

/** The @peculiar/x509 module, loaded on first use. */
export type X509Module = typeof import('@peculiar/x509');

let loaded: Promise<X509Module> | undefined;

/**
 * Loads @peculiar/x509 for making certificates (self-signed, and the test CA's issuing). Loaded lazily because
 * it needs a global `Reflect` metadata polyfill (its dependency tsyringe refuses to load without one): only a
 * module that actually generates a certificate pays for it and carries the polyfill.
 *
 * @example
 * const x509 = await loadX509();
 * const cert = await x509.X509CertificateGenerator.createSelfSigned({ ... });
 */
export function loadX509(): Promise<X509Module> {
  loaded ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    // Node's webcrypto is the WebCrypto API; the library's types name the DOM's `Crypto`, absent from Node's lib.
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return loaded;
}

/** The key algorithm for generated certificates: EC P-256 (fast to make on an edge device, accepted everywhere). */
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
