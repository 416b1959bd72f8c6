import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { checkCertificate, type ServerCertificate } from './certificate.js';
import { EC_P256, loadX509 } from './x509.js';

/** What a self-signed certificate names and how long it lasts. */
export interface SelfSignedOptions {
  /** Subject CN (a host name). */
  readonly commonName: string;
  /** Host names and IP addresses for subjectAltName (the CN is added when missing). */
  readonly altNames?: readonly string[];
  readonly validityDays?: number;
  readonly now?: Date;
}

/**
 * Generates an EC P-256 self-signed server certificate with @peculiar/x509 (pure JavaScript on WebCrypto:
 * no openssl binary is needed at run time, which the module's image does not carry). For a first try: a
 * client must be told to trust it, by its SHA-256 fingerprint (`fingerprint256`, log it) or the PEM.
 *
 * @example
 * const cert = await generateSelfSigned({ commonName: 'cam.local', altNames: ['10.0.0.5'] });
 * log.warn({ fingerprint: cert.fingerprint256 }, 'self-signed certificate: clients must trust this fingerprint');
 */
export async function generateSelfSigned(options: SelfSignedOptions): Promise<ServerCertificate> {
  const x509 = await loadX509();
  const now = options.now ?? new Date();
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];
  const names = [...new Set([options.commonName, ...(options.altNames ?? [])])];
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'), // positive, as RFC 5280 wants
    name: [{ CN: [options.commonName] }],
    // A minute back: a client whose clock is a little behind must not see a certificate from the future.
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + (options.validityDays ?? 365) * 86_400_000),
    signingAlgorithm: EC_P256,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }))),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as unknown as webcrypto.CryptoKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
  return checkCertificate(cert.toString('pem'), keyPem, 'self-signed', 'self-signed certificate', now);
}
