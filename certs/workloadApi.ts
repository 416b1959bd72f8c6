import { request, type RequestOptions } from 'node:http';
import { checkCertificate, CertificateError, type ServerCertificate } from './certificate.js';

/** The workload API version that has `certificate/server` (iotedged and aziot-edged both serve it). */
export const SERVER_CERT_API_VERSION = '2019-01-30';

/** Where the IoT Edge security daemon is and who this module is, from the `IOTEDGE_*` variables. */
export interface WorkloadIdentity {
  /** `unix:///var/run/iotedge/workload.sock` or `http://host:port`. */
  readonly workloadUri: string;
  readonly moduleId: string;
  readonly generationId: string;
}

/**
 * The workload identity IoT Edge gives a module, or null outside IoT Edge (a variable missing).
 *
 * @example
 * const identity = workloadIdentityFromEnv(process.env);
 * if (identity) cert = await requestServerCertificate(identity, { commonName: 'cam.local', expiresAt });
 */
export function workloadIdentityFromEnv(env: NodeJS.ProcessEnv): WorkloadIdentity | null {
  const workloadUri = env.IOTEDGE_WORKLOADURI;
  const moduleId = env.IOTEDGE_MODULEID;
  const generationId = env.IOTEDGE_MODULEGENERATIONID;
  if (!workloadUri || !moduleId || !generationId) return null;
  return { workloadUri, moduleId, generationId };
}

/** The workload API refused or failed a request (the message holds its status and message, never key material). */
export class WorkloadApiError extends CertificateError {
  override readonly name = 'WorkloadApiError';
  constructor(
    message: string,
    /** HTTP status, or null when no answer came (no socket, timeout). */
    readonly status: number | null,
  ) {
    super(message);
  }
}

/** What to ask the daemon for. */
export interface ServerCertificateRequest {
  readonly commonName: string;
  /** Asked expiry; the daemon may shorten it (to its CA's own), the certificate's notAfter is what counts. */
  readonly expiresAt: Date;
  /** Bound on the whole request (default 10 s): a daemon that hangs must not stall start-up forever. */
  readonly timeoutMs?: number;
}

/** Responses larger than this are not a certificate. */
const MAX_RESPONSE_BYTES = 1 << 20;

function endpoint(workloadUri: string, path: string): RequestOptions {
  let url: URL;
  try {
    url = new URL(workloadUri);
  } catch {
    throw new WorkloadApiError(`IOTEDGE_WORKLOADURI ${JSON.stringify(workloadUri)} is not a URI`, null);
  }
  if (url.protocol === 'unix:') return { socketPath: url.pathname, path };
  if (url.protocol === 'http:') return { host: url.hostname, port: url.port || 80, path: `${url.pathname.replace(/\/$/, '')}${path}` };
  throw new WorkloadApiError(`IOTEDGE_WORKLOADURI must be unix:// or http://, got ${url.protocol}//`, null);
}

/**
 * Asks the IoT Edge workload API for a server certificate:
 * `POST /modules/{module}/genid/{genid}/certificate/server?api-version=2019-01-30` with
 * `{"commonName", "expiration"}`, answered with `{certificate, privateKey: {bytes}, expiration}`. The
 * certificate chains to the device's edge CA, which clients of the edge device already trust. The pair is
 * checked with {@link checkCertificate} before it is returned.
 *
 * @example
 * const cert = await requestServerCertificate(workloadIdentityFromEnv(process.env)!, {
 *   commonName: process.env.IOTEDGE_GATEWAYHOSTNAME ?? os.hostname(), expiresAt: new Date(Date.now() + 90 * 86_400_000),
 * });
 */
export async function requestServerCertificate(identity: WorkloadIdentity, ask: ServerCertificateRequest): Promise<ServerCertificate> {
  const path =
    `/modules/${encodeURIComponent(identity.moduleId)}/genid/${encodeURIComponent(identity.generationId)}` +
    `/certificate/server?api-version=${SERVER_CERT_API_VERSION}`;
  const body = JSON.stringify({ commonName: ask.commonName, expiration: ask.expiresAt.toISOString() });
  const target = endpoint(identity.workloadUri, path);
  const timeoutMs = ask.timeoutMs ?? 10_000;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request({ ...target, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) req.destroy(new WorkloadApiError('the workload API answered more than 1 MiB', res.statusCode ?? null));
        else chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new WorkloadApiError(`the workload API did not answer within ${timeoutMs} ms`, null)), timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(err instanceof WorkloadApiError ? err : new WorkloadApiError(`the workload API at ${identity.workloadUri} cannot be reached (${err.code ?? err.message})`, null));
    });
    req.end(body);
  });
  if (status < 200 || status > 299) {
    let message = '';
    try {
      const parsed = JSON.parse(text) as { message?: unknown };
      if (typeof parsed.message === 'string') message = `: ${parsed.message.slice(0, 200)}`;
    } catch {
      // Not JSON: the status says enough.
    }
    throw new WorkloadApiError(`the workload API refused a server certificate for module ${identity.moduleId} (HTTP ${status})${message}`, status);
  }
  let parsed: { certificate?: unknown; privateKey?: { bytes?: unknown } };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new WorkloadApiError('the workload API answered something that is not JSON', status);
  }
  const certificate = parsed.certificate;
  const key = parsed.privateKey?.bytes;
  if (typeof certificate !== 'string' || typeof key !== 'string') {
    throw new WorkloadApiError('the workload API answer lacks "certificate" or "privateKey.bytes"', status);
  }
  return checkCertificate(certificate, key, 'workload', 'the workload API\'s server certificate');
}
