import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The workload API version azure-iot-device sends (`WORKLOAD_API_VERSION` in its
 * iotedge_authentication_provider); any version is accepted, this is only what we advertise.
 */
export const WORKLOAD_API_VERSION = '2018-06-28';

/** Inputs for {@link edgeEnvironment}. */
export interface EdgeEnvironmentOptions {
  /** `unix:///path/to/workload.sock` (or `http://127.0.0.1:<port>`). */
  readonly workloadUri: string;
  readonly deviceId: string;
  readonly moduleId: string;
  readonly generationId: string;
  /** The IoT Hub name: goes into the SAS `sr` and the MQTT username (`IotHubEmulator.hubHostName`). */
  readonly iothubHostName: string;
  /**
   * Where the SDK connects: `mqtts://<this>`. May carry a port (`localhost:18883`,
   * `IotHubEmulator.gatewayHostName`); without one the SDK dials 8883.
   */
  readonly gatewayHostName: string;
}

/**
 * The `IOTEDGE_*` variables the IoT Edge runtime gives a module, which make
 * `ModuleClient.fromEnvironment(Mqtt)` authenticate through the workload API instead of a connection string.
 *
 * `fromEnvironment` prefers `EdgeHubConnectionString`/`IotHubConnectionString` when either is set, so those
 * must be absent from the environment the module runs with ({@link applyEnvironment} removes them).
 */
export function edgeEnvironment(options: EdgeEnvironmentOptions): Record<string, string> {
  return {
    IOTEDGE_WORKLOADURI: options.workloadUri,
    IOTEDGE_DEVICEID: options.deviceId,
    IOTEDGE_MODULEID: options.moduleId,
    IOTEDGE_MODULEGENERATIONID: options.generationId,
    IOTEDGE_IOTHUBHOSTNAME: options.iothubHostName,
    IOTEDGE_GATEWAYHOSTNAME: options.gatewayHostName,
    IOTEDGE_AUTHSCHEME: 'sasToken',
    // Not read by the Node SDK (it pins its own version), but the runtime sets it and other SDKs use it.
    IOTEDGE_APIVERSION: WORKLOAD_API_VERSION,
  };
}

/** Variables whose presence would make `fromEnvironment` skip the IoT Edge path. */
const CONNECTION_STRING_VARIABLES = ['EdgeHubConnectionString', 'IotHubConnectionString', 'EdgeModuleCACertificateFile'];

/**
 * Sets `env` on `process.env` for an in-process `fromEnvironment` call and returns a function that restores
 * the previous values. Also unsets the connection-string variables that would shadow the IoT Edge path.
 */
export function applyEnvironment(env: Record<string, string>): () => void {
  const keys = new Set([...Object.keys(env), ...CONNECTION_STRING_VARIABLES]);
  const saved = new Map<string, string | undefined>();
  for (const key of keys) saved.set(key, process.env[key]);
  for (const key of CONNECTION_STRING_VARIABLES) delete process.env[key];
  Object.assign(process.env, env);
  return () => {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

interface WorkloadModule {
  readonly key: string;
  readonly generationId: string;
}

/** A request the emulator served, for tests that assert the module really went through the workload API. */
export interface WorkloadRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

/**
 * A stand-in for the IoT Edge security daemon's workload API (aziot-edged / iotedged) on a unix socket.
 *
 * It implements the two calls `ModuleClient.fromEnvironment` makes: `GET /trust-bundle` (the CA the
 * edgeHub certificate chains to) and `POST /modules/<m>/genid/<g>/sign` (HMAC-SHA256 with the module key,
 * which the daemon keeps so the module never sees it). With it, tests exercise the exact code path a
 * module runs on a real Edge device.
 *
 * @example
 * ```ts
 * const workload = await WorkloadApiEmulator.create(hub.caCert);
 * workload.addModule('gst', key, 'gen-1');
 * const restore = applyEnvironment(workload.edgeEnvironment({
 *   deviceId: 'dev1', moduleId: 'gst', iothubHostName: hub.hubHostName, gatewayHostName: hub.gatewayHostName,
 * }));
 * const client = await ModuleClient.fromEnvironment(Mqtt);
 * restore();
 * ```
 */
export class WorkloadApiEmulator {
  /** Every request served, in order. */
  readonly requests: WorkloadRequest[] = [];

  private readonly modules = new Map<string, WorkloadModule>();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;

  private constructor(
    private trustBundle: string,
    /** Directory holding the socket; removed on close. */
    readonly dir: string,
    /** Absolute path of the unix socket. */
    readonly socketPath: string,
  ) {}

  /**
   * Starts the API on a unix socket in a new temp directory. `trustBundlePem` is what `/trust-bundle`
   * returns (`IotHubEmulator.caCert`).
   */
  static async create(trustBundlePem: string): Promise<WorkloadApiEmulator> {
    const dir = await mkdtemp(join(tmpdir(), 'gst-iotedge-workload-'));
    // Short names: unix socket paths are limited to ~107 bytes.
    const api = new WorkloadApiEmulator(trustBundlePem, dir, join(dir, 'workload.sock'));
    try {
      await api.listen();
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return api;
  }

  /** `unix://<socketPath>`, the form the IoT Edge runtime uses for `IOTEDGE_WORKLOADURI`. */
  get workloadUri(): string {
    return `unix://${this.socketPath}`;
  }

  /** Replaces what `/trust-bundle` returns, e.g. to test a module that gets a CA it cannot use. */
  setTrustBundle(pem: string): void {
    this.trustBundle = pem;
  }

  /** Lets the API sign for `moduleId` with `keyBase64` (use the key given to `IotHubEmulator.addModule`). */
  addModule(moduleId: string, keyBase64: string, generationId = 'gen-1'): void {
    this.modules.set(moduleId, { key: keyBase64, generationId });
  }

  /** {@link edgeEnvironment} filled in with this API's URI and the module's generation id. */
  edgeEnvironment(options: Omit<EdgeEnvironmentOptions, 'workloadUri' | 'generationId'>): Record<string, string> {
    const module = this.modules.get(options.moduleId);
    if (!module) throw new Error(`unknown module ${options.moduleId}: call addModule() first`);
    return edgeEnvironment({ ...options, workloadUri: this.workloadUri, generationId: module.generationId });
  }

  /** Stops the server and removes the socket's directory. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of this.sockets) socket.destroy();
      await closed;
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  private async listen(): Promise<void> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.reply(req, res, 500, { message: String(err) }));
    });
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://workload');
    if (!url.searchParams.get('api-version')) {
      this.reply(req, res, 400, { message: 'api-version query parameter is required' });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/trust-bundle') {
      this.reply(req, res, 200, { certificate: this.trustBundle });
      return;
    }
    const sign = /^\/modules\/([^/]+)\/genid\/([^/]+)\/sign$/.exec(url.pathname);
    if (req.method === 'POST' && sign) {
      const moduleId = decodeURIComponent(sign[1]!);
      const generationId = decodeURIComponent(sign[2]!);
      const module = this.modules.get(moduleId);
      // The real daemon scopes keys by module *and* generation: a stale generation id must not sign.
      if (!module || module.generationId !== generationId) {
        this.reply(req, res, 404, { message: `module ${moduleId} (generation ${generationId}) not found` });
        return;
      }
      let body: { keyId?: unknown; algo?: unknown; data?: unknown };
      try {
        body = JSON.parse(await readBody(req)) as typeof body;
      } catch {
        this.reply(req, res, 400, { message: 'body is not JSON' });
        return;
      }
      if (body.algo !== 'HMACSHA256' || typeof body.data !== 'string') {
        this.reply(req, res, 400, { message: 'expected {"keyId","algo":"HMACSHA256","data":"<base64>"}' });
        return;
      }
      const digest = createHmac('sha256', Buffer.from(module.key, 'base64'))
        .update(Buffer.from(body.data, 'base64'))
        .digest('base64');
      this.reply(req, res, 200, { digest });
      return;
    }
    this.reply(req, res, 404, { message: `no route for ${req.method} ${url.pathname}` });
  }

  private reply(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
    this.requests.push({ method: req.method ?? '', path: req.url ?? '', status });
    // The SDK's REST client parses the body only when content-type says JSON.
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
