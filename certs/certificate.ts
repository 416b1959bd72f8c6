import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/** Where a certificate came from (shown in status and logs). */
export type CertificateSource = 'files' | 'workload' | 'self-signed';

/** A server certificate and its key, checked to belong together. */
export interface ServerCertificate {
  /** PEM: the leaf first, then any chain, as servers send it. */
  readonly certificatePem: string;
  /** PEM private key of the leaf (PKCS#8 or the key's traditional form, as given). */
  readonly privateKeyPem: string;
  readonly source: CertificateSource;
  readonly subject: string;
  readonly subjectAltName: string | null;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SHA-256 of the leaf's DER, `AB:CD:...`, as browsers and `openssl x509 -fingerprint -sha256` show it. */
  readonly fingerprint256: string;
}

/** A certificate or key that cannot be used: missing, unreadable, not matching, expired. Never holds key material. */
export class CertificateError extends Error {
  override readonly name: string = 'CertificateError';
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The certificates of a PEM bundle, leaf first.
 *
 * @example
 * const [leaf, ...chain] = pemCertificates(readFileSync('/certs/fullchain.pem', 'utf8'));
 */
export function pemCertificates(pem: string): string[] {
  return pem.match(PEM_CERTIFICATE) ?? [];
}

/**
 * Parses a certificate (chain) and its key and checks that they belong together: GIO's
 * `TlsCertificate.newFromPem` and Node's `tls` accept a key that does not match, and then every handshake
 * fails with an obscure error, so a mismatch is caught here, at start-up, with a clear message.
 *
 * @example
 * const cert = checkCertificate(certPem, keyPem, 'files', 'tls.cert_file');
 * log.info({ fingerprint: cert.fingerprint256 }, 'TLS certificate');
 */
export function checkCertificate(certificatePem: string, privateKeyPem: string, source: CertificateSource, where: string, now: Date = new Date()): ServerCertificate {
  const pems = pemCertificates(certificatePem);
  if (pems.length === 0) throw new CertificateError(`${where}: no PEM certificate (-----BEGIN CERTIFICATE-----) found`);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(pems[0]!);
  } catch {
    throw new CertificateError(`${where}: the certificate cannot be parsed`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch {
    // Node's message can quote the input: say what is wrong without it.
    throw new CertificateError(`${where}: the private key cannot be read (an unencrypted PEM private key is needed)`);
  }
  if (!leaf.checkPrivateKey(key)) {
    throw new CertificateError(`${where}: the private key does not belong to the certificate (subject ${leaf.subject.replace(/\n/g, ', ')}, fingerprint ${leaf.fingerprint256})`);
  }
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now.getTime()) {
    throw new CertificateError(`${where}: the certificate expired on ${notAfter.toISOString()} (fingerprint ${leaf.fingerprint256})`);
  }
  const chain = pems.join('\n') + '\n';
  return {
    certificatePem: chain,
    privateKeyPem: privateKeyPem.endsWith('\n') ? privateKeyPem : `${privateKeyPem}\n`,
    source,
    subject: leaf.subject.replace(/\n/g, ', '),
    subjectAltName: leaf.subjectAltName ?? null,
    notBefore: new Date(leaf.validFrom),
    notAfter,
    fingerprint256: leaf.fingerprint256,
  };
}

/**
 * Reads a certificate and a key from files (the key may also be in the certificate file: give the same path)
 * and checks them with {@link checkCertificate}.
 *
 * @example
 * const cert = await loadCertificateFiles('/certs/server.pem', '/certs/server.key');
 */
export async function loadCertificateFiles(certificatePath: string, keyPath: string): Promise<ServerCertificate> {
  const read = async (path: string, what: string): Promise<string> => {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new CertificateError(`${what} ${path} cannot be read (${code})`);
    }
  };
  const [certificatePem, keyPem] = await Promise.all([read(certificatePath, 'certificate file'), read(keyPath, 'key file')]);
  return checkCertificate(certificatePem, keyPem, 'files', `${certificatePath} + ${keyPath}`);
}
