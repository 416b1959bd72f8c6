import type { Logger } from 'pino';
import { BehaviorSubject, Subject } from 'rxjs';
import { AccessControl } from '../auth/AccessControl.js';
import type { RightsChange } from '../auth/diff.js';
import type { AuthSettings } from '../auth/settings.js';
import { CertificateError, type ServerCertificate } from '../certs/certificate.js';
import { CertificateManager, type CertificateManagerOptions } from '../certs/CertificateManager.js';
import type { TlsSettings } from '../certs/settings.js';
import { ConfigError } from '../config/errors.js';

/** What of an applied config {@link Security.apply} takes. */
export interface SecurityConfig {
  readonly auth: AuthSettings | null;
  readonly tls: TlsSettings | null;
}

/** Where the certificate in force came from, for the status document (no key material, nothing secret). */
export interface TlsStatus {
  readonly source: ServerCertificate['source'];
  readonly fingerprint256: string;
  readonly notAfter: string;
}

export interface SecurityOptions {
  readonly logger: Logger;
  /** For tests: how often certificate files are read again, the renewal retry delay. */
  readonly certificates?: CertificateManagerOptions;
}

/** The TLS settings as one comparable text (null: off). */
function tlsKey(tls: TlsSettings | null): string {
  return JSON.stringify(tls);
}

/**
 * The module's security settings in force, following the applied config: who may do what ({@link access}, one
 * {@link AccessControl} for every surface, updated live) and the server certificate ({@link certificate$}: HTTPS,
 * WSS and RTSPS all use it; renewals are pushed there). Getting a certificate is part of checking a document
 * ({@link prepare}): one that cannot be had, or whose key does not match, refuses the document with the reason,
 * and what runs keeps running.
 *
 * @example
 * const security = new Security({ logger });
 * await security.prepare(next.tls);          // in the config machine's validation
 * const change = security.apply(next);       // when the document is applied
 * security.certificate$.subscribe((cert) => https.setSecureContext(...));
 */
export class Security {
  /** The access decision of every surface (open until a config with `auth` is applied). */
  readonly access = new AccessControl(null);
  /** The server certificate in force (null: TLS off); a renewal is a new value. */
  readonly certificate$ = new BehaviorSubject<ServerCertificate | null>(null);
  /** Every applied change of users or rights that touches someone (RightsChange.none changes are not sent). */
  readonly changes$ = new Subject<RightsChange>();
  readonly #log: Logger;
  readonly #certificateOptions: CertificateManagerOptions;
  /** The TLS settings the certificate in force was had for, and its manager (renewals). */
  #tls: { key: string; manager: CertificateManager | null } | null = null;
  /** A certificate had while checking a document that is not applied yet. */
  #pending: { key: string; manager: CertificateManager | null } | null = null;
  /** Whether a config was applied yet (the first one logs the access mode whatever it is). */
  #applied = false;
  #closed = false;

  constructor(options: SecurityOptions) {
    this.#log = options.logger.child({ component: 'security' });
    this.#certificateOptions = options.certificates ?? {};
  }

  /** What the status document shows of the certificate. */
  get tlsStatus(): TlsStatus | null {
    const cert = this.certificate$.value;
    return cert ? { source: cert.source, fingerprint256: cert.fingerprint256, notAfter: cert.notAfter.toISOString() } : null;
  }

  /**
   * Gets the certificate a document's TLS settings name, unless those are the settings in force: a
   * {@link ConfigError} naming the file (and the certificate's fingerprint, never the key) when it cannot be
   * had or does not match its key.
   */
  async prepare(tls: TlsSettings | null): Promise<void> {
    const key = tlsKey(tls);
    if (key === (this.#tls?.key ?? tlsKey(null)) || key === this.#pending?.key) return;
    if (tls === null) {
      this.#setPending({ key, manager: null });
      return;
    }
    let manager: CertificateManager;
    try {
      manager = await CertificateManager.start(tls, this.#certificateOptions);
    } catch (error) {
      if (error instanceof CertificateError) throw new ConfigError(`tls: ${error.message}`);
      throw error;
    }
    if (this.#closed) {
      manager.close();
      return;
    }
    this.#setPending({ key, manager });
  }

  /** Keeps one prepared certificate: the latest document's (an earlier one that was not applied is let go). */
  #setPending(pending: { key: string; manager: CertificateManager | null }): void {
    if (this.#pending?.manager !== pending.manager) this.#pending?.manager?.close();
    this.#pending = pending;
  }

  /** Puts a checked document's settings in force; returns whose rights changed (their viewers are closed). */
  apply(config: SecurityConfig): RightsChange {
    this.#applyTls(config.tls);
    const before = this.access.mode;
    const change = this.access.update(config.auth);
    const mode = this.access.mode;
    if (!this.#applied || mode !== before) {
      if (mode === 'open') {
        this.#log.warn(
          { event: 'auth-open' },
          'auth: open. The twin has no "auth" key: anyone who reaches the module\'s ports may watch every stream and read the status and the metrics (docs/auth.md)',
        );
      } else {
        const users = config.auth!.users.size;
        this.#log.info({ event: 'auth-protected', users, jwt: config.auth!.jwt !== null, requireTls: config.auth!.requireTls }, `auth: protected (${users} user${users === 1 ? '' : 's'}${config.auth!.jwt ? ', JWT bearer tokens' : ''})`);
      }
    } else if (!change.none) {
      this.#log.info({ event: 'auth-changed', users: [...change.users], anonymous: change.anonymous, tokens: change.tokens }, 'auth: users or rights changed; viewers whose rights changed are disconnected');
    }
    this.#applied = true;
    if (!change.none) this.changes$.next(change);
    return change;
  }

  /** Stops renewing. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending?.manager?.close();
    this.#tls?.manager?.close();
  }

  #applyTls(tls: TlsSettings | null): void {
    const key = tlsKey(tls);
    if (key === (this.#tls?.key ?? tlsKey(null))) return;
    let manager: CertificateManager | null = null;
    if (this.#pending?.key === key) manager = this.#pending.manager;
    else {
      this.#pending?.manager?.close();
      if (tls !== null) this.#log.error({ event: 'tls-not-prepared' }, 'TLS settings applied without a certificate: TLS stays off');
    }
    this.#pending = null;
    this.#tls?.manager?.close();
    this.#tls = { key, manager };
    if (manager === null) {
      if (this.certificate$.value !== null) this.#log.info({ event: 'tls-off' }, 'TLS off');
      this.certificate$.next(null);
      return;
    }
    manager.observer.on('renewed', (cert) => {
      if (this.#tls?.manager !== manager) return;
      this.#log.info({ event: 'tls-renewed', source: cert.source, fingerprint: cert.fingerprint256, notAfter: cert.notAfter.toISOString() }, `TLS certificate renewed (${cert.fingerprint256})`);
      this.certificate$.next(cert);
    });
    manager.observer.on('renewfailed', ({ error, retryInMs }) => {
      if (this.#tls?.manager !== manager) return;
      this.#log.warn({ event: 'tls-renew-failed', retryInMs }, `TLS certificate not renewed, the current one stays: ${error.message}`);
    });
    const cert = manager.current;
    const fields = { event: 'tls-certificate', source: cert.source, subject: cert.subject, fingerprint: cert.fingerprint256, notAfter: cert.notAfter.toISOString() };
    if (cert.source === 'self-signed') {
      this.#log.warn(fields, `TLS: self-signed certificate, SHA-256 fingerprint ${cert.fingerprint256}: compare it with what a browser or client shows before trusting it`);
    } else {
      this.#log.info(fields, `TLS certificate from ${cert.source} (${cert.subject}), SHA-256 fingerprint ${cert.fingerprint256}, valid until ${cert.notAfter.toISOString()}`);
    }
    this.certificate$.next(cert);
  }
}
