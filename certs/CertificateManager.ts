import { EventEmitter } from 'node:events';
import { CertificateError, loadCertificateFiles, type ServerCertificate } from './certificate.js';
import { generateSelfSigned } from './selfSigned.js';
import type { TlsSettings } from './settings.js';
import { requestServerCertificate } from './workloadApi.js';

/** Observer events: a new certificate is in place (servers reload it), or getting one failed (kept the old one). */
export type CertificateManagerEvents = {
  renewed: [ServerCertificate];
  renewfailed: [{ readonly error: CertificateError; readonly retryInMs: number; readonly current: ServerCertificate }];
};

/** Options for tests: a clock, and how often certificate files are looked at again. */
export interface CertificateManagerOptions {
  readonly now?: () => number;
  /** Files (`source: files`) are re-read this often, so a certificate renewed on disk is picked up (default 60 s). */
  readonly filePollMs?: number;
  /** First delay after a failed renewal; doubles up to 10 minutes. */
  readonly retryMs?: number;
}

/** setTimeout fires at once for delays above 2^31-1 ms (~24.8 days): longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_RETRY_MS = 10 * 60_000;

/**
 * Holds the module's server certificate and keeps it fresh: loaded from files (re-read when they change on
 * disk), issued by the IoT Edge workload API (renewed before it expires), or self-signed (re-made before it
 * expires). A failed renewal keeps the current certificate and retries with backoff. Start-up failures
 * reject {@link start}; later ones are `renewfailed` events, and each new certificate is a `renewed` event
 * for the web server (`server.setSecureContext`) and the engine's RTSPS server.
 *
 * @example
 * const certs = await CertificateManager.start(tls.settings);
 * certs.observer.on('renewed', (cert) => { https.setSecureContext({ cert: cert.certificatePem, key: cert.privateKeyPem }); });
 * log.info({ source: certs.current.source, fingerprint: certs.current.fingerprint256 }, 'TLS certificate');
 */
export class CertificateManager {
  /** Monitoring and reload events. */
  readonly observer = new EventEmitter<CertificateManagerEvents>();
  readonly #settings: TlsSettings;
  readonly #now: () => number;
  readonly #filePollMs: number;
  readonly #retryMs: number;
  /** The certificate in force. */
  #current: ServerCertificate;
  /** The pending renewal or file check. */
  #timer: NodeJS.Timeout | null = null;
  /** When the pending timer's work is due (ms since the epoch). */
  #dueAt = 0;
  /** Consecutive failed renewals, for the backoff. */
  #failures = 0;
  #closed = false;

  private constructor(settings: TlsSettings, first: ServerCertificate, options: CertificateManagerOptions) {
    this.#settings = settings;
    this.#current = first;
    this.#now = options.now ?? Date.now;
    this.#filePollMs = options.filePollMs ?? 60_000;
    this.#retryMs = options.retryMs ?? 5_000;
    this.#schedule();
  }

  /** Gets the first certificate (rejects with {@link CertificateError} when none can be had) and starts renewing. */
  static async start(settings: TlsSettings, options: CertificateManagerOptions = {}): Promise<CertificateManager> {
    const first = await obtain(settings, options.now ?? Date.now);
    return new CertificateManager(settings, first, options);
  }

  get current(): ServerCertificate {
    return this.#current;
  }

  /** When the next renewal (or file check) is due, in ms since the epoch; null once closed. */
  get nextCheckAt(): number | null {
    return this.#closed ? null : this.#dueAt;
  }

  /** Stops renewing. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** When the current certificate should be replaced. */
  #renewAt(): number {
    const cert = this.#current;
    const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
    const before = this.#settings.renewBeforeMs ?? lifetime / 5;
    return cert.notAfter.getTime() - Math.min(before, lifetime);
  }

  #schedule(delayMs?: number): void {
    if (this.#closed) return;
    const now = this.#now();
    // Files are polled (whoever renews them on disk decides when); at least a second between attempts, so a
    // certificate issued with too short a life cannot make this spin.
    const planned = delayMs !== undefined ? now + delayMs : this.#settings.source === 'files' ? now + this.#filePollMs : this.#renewAt();
    this.#dueAt = Math.max(planned, now + 1000);
    this.#arm();
  }

  #arm(): void {
    if (this.#closed) return;
    const wait = Math.max(0, Math.min(this.#dueAt - this.#now(), MAX_TIMER_MS));
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#now() < this.#dueAt) this.#arm(); // a long wait, taken in steps
      else void this.#renew();
    }, wait);
    // A renewal alone must not keep the process alive: the servers do that.
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    try {
      const next = await obtain(this.#settings, this.#now);
      if (this.#closed) return;
      this.#failures = 0;
      if (next.fingerprint256 !== this.#current.fingerprint256) {
        this.#current = next;
        this.observer.emit('renewed', next);
      } else if (this.#settings.source === 'files' && this.#now() >= this.#renewAt()) {
        // The files have not been renewed and expiry is near: say so, and keep looking.
        const error = new CertificateError(`${this.#settings.certFile}: the certificate expires on ${next.notAfter.toISOString()} and has not been replaced on disk`);
        this.observer.emit('renewfailed', { error, retryInMs: this.#filePollMs, current: this.#current });
      }
      this.#schedule();
    } catch (err) {
      if (this.#closed) return;
      this.#failures += 1;
      const retryInMs = Math.min(this.#retryMs * 2 ** (this.#failures - 1), MAX_RETRY_MS);
      const error = err instanceof CertificateError ? err : new CertificateError(String(err));
      this.observer.emit('renewfailed', { error, retryInMs, current: this.#current });
      this.#schedule(retryInMs);
    }
  }
}

async function obtain(settings: TlsSettings, now: () => number): Promise<ServerCertificate> {
  switch (settings.source) {
    case 'files':
      return loadCertificateFiles(settings.certFile!, settings.keyFile!);
    case 'workload':
      return requestServerCertificate(settings.workload!, {
        commonName: settings.commonName,
        expiresAt: new Date(now() + settings.validityDays * 86_400_000),
      });
    case 'self-signed':
      return generateSelfSigned({ commonName: settings.commonName, altNames: settings.altNames, validityDays: settings.validityDays, now: new Date(now()) });
  }
}
