import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EC_P256, loadX509 } from '../../certs/x509.js';
import type { TestCerts } from './testCerts.js';

/** A request the emulator served. */
export interface CertificateRequest {
  readonly path: string;
  readonly status: number;
  readonly commonName: string | null;
  readonly expiration: string | null;
}

/**
 * The workload API's `POST /modules/{m}/genid/{g}/certificate/server` (api-version 2019-01-30) on a unix
 * socket, as the IoT Edge security daemon serves it: it makes a key, issues a server certificate for the
 * asked common name from a test CA (testCerts.ts), and answers `{certificate, privateKey: {type, bytes},
 * expiration}` with 201. Apart from {@link WorkloadApiEmulator} (which serves the SDK's trust-bundle and
 * sign calls) so that neither needs the other; the route can move into it when both are wanted on one socket.
 *
 * @example
 * const api = await WorkloadCertificateEmulator.create(await generateTestCerts(), { lifetimeMs: 4000 });
 * api.addModule('gst', 'gen-1');
 * const cert = await requestServerCertificate({ workloadUri: api.workloadUri, moduleId: 'gst', generationId: 'gen-1' }, {...});
 */
export class WorkloadCertificateEmulator {
  /** Every request served, in order. */
  readonly requests: CertificateRequest[] = [];
  /** Issued certificates live at most this long, whatever was asked (short, to test renewal). */
  lifetimeMs: number;
  /** The next this many requests fail with 500 (a daemon restarting). */
  failNext = 0;
  /** Answer with a key that does not belong to the certificate. */
  mismatchedKey = false;
  /** Accept connections and never answer. */
  hang = false;

  readonly #modules = new Map<string, string>();
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;

  private constructor(
    readonly ca: TestCerts,
    readonly dir: string,
    readonly socketPath: string,
    lifetimeMs: number,
  ) {
    this.lifetimeMs = lifetimeMs;
  }

  /** Starts on a unix socket in a new temp directory, issuing from `ca`. */
  static async create(ca: TestCerts, options: { lifetimeMs?: number } = {}): Promise<WorkloadCertificateEmulator> {
    const dir = await mkdtemp(join(tmpdir(), 'gst-iotedge-wlcert-'));
    const api = new WorkloadCertificateEmulator(ca, dir, join(dir, 'workload.sock'), options.lifetimeMs ?? 90 * 86_400_000);
    try {
      await api.#listen();
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return api;
  }

  /** `unix://<socketPath>`, as IoT Edge sets `IOTEDGE_WORKLOADURI`. */
  get workloadUri(): string {
    return `unix://${this.socketPath}`;
  }

  /** Lets `moduleId` (at `generationId`) get certificates; others get 404, as from the real daemon. */
  addModule(moduleId: string, generationId = 'gen-1'): void {
    this.#modules.set(moduleId, generationId);
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of this.#sockets) socket.destroy();
      await closed;
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  async #listen(): Promise<void> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => this.#reply(req, res, 500, { message: String(err) }, null));
    });
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (this.hang) return;
    const url = new URL(req.url ?? '/', 'http://workload');
    if (url.searchParams.get('api-version') !== '2019-01-30') {
      this.#reply(req, res, 400, { message: 'api-version 2019-01-30 is required' }, null);
      return;
    }
    const route = /^\/modules\/([^/]+)\/genid\/([^/]+)\/certificate\/server$/.exec(url.pathname);
    if (req.method !== 'POST' || !route) {
      this.#reply(req, res, 404, { message: `no route for ${req.method} ${url.pathname}` }, null);
      return;
    }
    const moduleId = decodeURIComponent(route[1]!);
    if (this.#modules.get(moduleId) !== decodeURIComponent(route[2]!)) {
      this.#reply(req, res, 404, { message: `module ${moduleId} not found` }, null);
      return;
    }
    let body: { commonName?: unknown; expiration?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
    } catch {
      this.#reply(req, res, 400, { message: 'body is not JSON' }, null);
      return;
    }
    const asked = typeof body.expiration === 'string' ? Date.parse(body.expiration) : NaN;
    if (typeof body.commonName !== 'string' || body.commonName === '' || Number.isNaN(asked)) {
      this.#reply(req, res, 400, { message: 'expected {"commonName": "<name>", "expiration": "<ISO 8601>"}' }, body);
      return;
    }
    if (this.failNext > 0) {
      this.failNext -= 1;
      this.#reply(req, res, 500, { message: 'the security daemon is restarting' }, body);
      return;
    }
    const issued = await this.#issue(body.commonName, new Date(Math.min(asked, Date.now() + this.lifetimeMs)));
    this.#reply(req, res, 201, { certificate: issued.certificate, privateKey: { type: 'key', bytes: issued.key }, expiration: issued.expiration }, body);
  }

  /** A key and a certificate for `commonName` (and localhost, 127.0.0.1), signed by the CA, CA appended. */
  async #issue(commonName: string, notAfter: Date): Promise<{ certificate: string; key: string; expiration: string }> {
    const x509 = await loadX509();
    const caKeyDer = createPrivateKey(this.ca.caKey).export({ format: 'der', type: 'pkcs8' });
    const caKey = await webcrypto.subtle.importKey('pkcs8', caKeyDer, EC_P256, false, ['sign']);
    const caCert = new x509.X509Certificate(this.ca.caCert);
    const keys = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: `01${randomBytes(8).toString('hex')}`,
      subject: `CN=${commonName}`,
      issuer: caCert.subject,
      notBefore: new Date(Date.now() - 1000),
      notAfter,
      signingAlgorithm: EC_P256,
      publicKey: keys.publicKey as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[0]['publicKey'],
      signingKey: caKey as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys']['privateKey'],
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([
          { type: 'dns', value: commonName },
          { type: 'dns', value: 'localhost' },
          { type: 'ip', value: '127.0.0.1' },
        ]),
      ],
    });
    const keyFor = this.mismatchedKey ? (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])).privateKey : keys.privateKey;
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keyFor));
    const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
    return { certificate: `${cert.toString('pem')}\n${this.ca.caCert}`, key, expiration: notAfter.toISOString() };
  }

  #reply(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, asked: { commonName?: unknown; expiration?: unknown } | null): void {
    this.requests.push({
      path: req.url ?? '',
      status,
      commonName: typeof asked?.commonName === 'string' ? asked.commonName : null,
      expiration: typeof asked?.expiration === 'string' ? asked.expiration : null,
    });
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  }
}
