import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { parse as parseQuery } from 'node:querystring';
import { createServer, type Server as TlsServer } from 'node:tls';
import { Aedes } from 'aedes';
import type { AedesPublishPacket, AuthErrorCode, AuthenticateError, Client, PublishPacket, Subscription } from 'aedes';
import { generateTestCerts, type TestCerts } from './testCerts.js';

/** A twin section as the hub hands it out (plain JSON, `$version` included where the hub adds it). */
export type TwinProperties = Record<string, unknown>;

/** What `$iothub/twin/GET` answers: both sections, each carrying its own `$version`. */
export interface TwinDocument {
  desired: TwinProperties;
  reported: TwinProperties;
}

/** A device-to-cloud message a module published, as IoT Hub routing would see it. */
export interface RecordedEvent {
  readonly deviceId: string;
  readonly moduleId: string;
  /** `$.on`: the output the module sent it on (`sendOutputEvent(outputName, ...)`); undefined for `sendEvent`. */
  readonly outputName: string | undefined;
  /** Every property from the topic, decoded: system ones (`$.on`, `$.mid`, `$.ct`, ...) and application ones. */
  readonly properties: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly topic: string;
  /** `Date.now()` when the broker got it. */
  readonly receivedAt: number;
}

/** A direct method's reply, as the service SDK would return it. */
export interface MethodResult {
  readonly status: number;
  /** The reply body parsed as JSON; the raw text when it is not JSON; `null` when empty. */
  readonly payload: unknown;
}

/** Events an {@link IotHubEmulator} emits, for tests that prefer listeners over the `waitFor*` helpers. */
export interface IotHubEmulatorEvents {
  /** A client passed authentication and got its CONNACK. */
  clientConnected: [clientId: string];
  clientDisconnected: [clientId: string];
  /** A granted subscription, including ones restored from a persistent (clean=false) session on reconnect. */
  subscribed: [clientId: string, topicFilter: string];
  /** A reported-properties patch was applied; the argument is the whole reported section after the merge. */
  reported: [deviceId: string, moduleId: string, reported: TwinProperties];
  event: [event: RecordedEvent];
  /** A CONNECT was refused; `reason` says why, to make failing auth tests readable. */
  authFailed: [clientId: string, reason: string];
}

/** Options for {@link IotHubEmulator}. */
export interface IotHubEmulatorOptions {
  /**
   * The IoT Hub name put into connection strings, usernames and SAS `sr`. It deliberately differs from the
   * host the client dials (`localhost:<port>`, the gateway), as on a real Edge device, so a token signed
   * for the wrong resource is caught. Default `test-hub.azure-devices.net` (never resolved).
   */
  readonly hubHostName?: string;
  /** TCP port on 127.0.0.1; 0 (default) picks a free one, which {@link IotHubEmulator.port} then reports. */
  readonly port?: number;
  /** TLS material; generated (and deleted on close) when omitted. */
  readonly certs?: TestCerts;
}

interface ModuleEntry {
  readonly deviceId: string;
  readonly moduleId: string;
  readonly key: string;
  desired: TwinProperties;
  desiredVersion: number;
  reported: TwinProperties;
  reportedVersion: number;
}

interface PendingMethod {
  readonly clientId: string;
  resolve(result: MethodResult): void;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DESIRED_TOPIC_FILTER = '$iothub/twin/PATCH/properties/desired/#';
const METHODS_TOPIC_FILTER = '$iothub/methods/POST/#';
// Not an enum import: AuthErrorCode is a `const enum` in aedes' typings, which isolated transpilers cannot inline.
const NOT_AUTHORIZED = 5 as AuthErrorCode;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Applies a twin patch the way IoT Hub does: objects merge recursively, `null` deletes, anything else
 * replaces. `$`-prefixed keys (`$version`, `$metadata`) are the hub's, never the patch author's.
 */
function mergePatch(target: TwinProperties, patch: TwinProperties): void {
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) continue;
    if (value === null) {
      delete target[key];
    } else if (isPlainObject(value)) {
      const current = target[key];
      const next: TwinProperties = isPlainObject(current) ? current : {};
      mergePatch(next, value);
      target[key] = next;
    } else {
      target[key] = structuredClone(value);
    }
  }
}

/** The patch that turns `from` into `to` under {@link mergePatch} semantics (removed keys become `null`). */
function diffPatch(from: TwinProperties, to: TwinProperties): TwinProperties {
  const patch: TwinProperties = {};
  for (const key of Object.keys(from)) {
    if (!key.startsWith('$') && !(key in to)) patch[key] = null;
  }
  for (const [key, value] of Object.entries(to)) {
    if (key.startsWith('$')) continue;
    const old = from[key];
    if (isPlainObject(value) && isPlainObject(old)) {
      const sub = diffPatch(old, value);
      if (Object.keys(sub).length > 0) patch[key] = sub;
    } else if (JSON.stringify(old) !== JSON.stringify(value)) {
      patch[key] = structuredClone(value);
    }
  }
  return patch;
}

function stripDollarKeys(doc: TwinProperties): TwinProperties {
  const out: TwinProperties = {};
  mergePatch(out, doc);
  return out;
}

function splitTopicQuery(topic: string): { path: string; query: Record<string, string> } {
  const q = topic.indexOf('?');
  if (q < 0) return { path: topic, query: {} };
  const query: Record<string, string> = {};
  for (const [k, v] of Object.entries(parseQuery(topic.slice(q + 1)))) {
    if (typeof v === 'string') query[k] = v;
    else if (Array.isArray(v) && v.length > 0) query[k] = v[0]!;
  }
  return { path: topic.slice(0, q), query };
}

/** Decodes `k=v&k2=v2` the way the SDK encodes it (encodeURIComponent, so no `+`-as-space). */
function decodeProperties(segment: string): Record<string, string> {
  const props: Record<string, string> = {};
  if (!segment) return props;
  for (const pair of segment.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
    props[key] = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1));
  }
  return props;
}

function encodeProperties(props: Record<string, string>): string {
  return Object.entries(props)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

function parseJsonOrText(payload: Buffer): unknown {
  const text = payload.toString('utf8');
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function authError(message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: NOT_AUTHORIZED });
}

/**
 * A local stand-in for Azure IoT Hub / edgeHub that a real, unmodified `ModuleClient`
 * (azure-iot-device + azure-iot-device-mqtt) can connect to over MQTT/TLS.
 *
 * It is an aedes broker behind `node:tls` on 127.0.0.1 that speaks the IoT Hub topic conventions:
 * SAS-token authentication, module twins (GET, desired patches pushed to the module, reported patches),
 * direct methods, output events and input messages. Hub-to-module traffic is written to the one client
 * it is meant for rather than published on the broker, because IoT Hub's `$iothub/...` topics are
 * per-connection: two modules subscribed to `$iothub/twin/res/#` must not see each other's replies.
 *
 * `stop()`/`start()` drop and restore the listener on the same port while twins, identities and the
 * broker's persistent sessions survive, which is how tests simulate a network outage.
 *
 * @example
 * ```ts
 * const hub = await IotHubEmulator.create();
 * hub.addModule('dev1', 'gst', key);
 * hub.setDesired('dev1', 'gst', { pipelines: {} });
 * const client = ModuleClient.fromConnectionString(hub.connectionString('dev1', 'gst'), Mqtt);
 * client.setOptions({ ca: hub.caCert });
 * await client.open();
 * await hub.waitForReported('dev1', 'gst', (r) => r.state === 'ready', { after: 0, timeoutMs: 20_000 });
 * await hub.close();
 * ```
 */
export class IotHubEmulator extends EventEmitter<IotHubEmulatorEvents> {
  /** The IoT Hub name (connection string `HostName`, SAS `sr`); not what clients dial. */
  readonly hubHostName: string;

  private broker: Aedes | undefined;
  private server: TlsServer | undefined;
  private readonly sockets = new Set<Socket>();
  private certs: TestCerts | undefined;
  private readonly ownsCerts: boolean;
  private listenPort: number;
  private readonly modules = new Map<string, ModuleEntry>();
  private readonly clients = new Map<string, Client>();
  /** Per client id, the granted filters; kept across disconnects because sessions are persistent (clean=false). */
  private readonly subscriptions = new Map<string, Set<string>>();
  private readonly pendingMethods = new Map<string, PendingMethod>();
  private readonly recordedEvents: RecordedEvent[] = [];
  /** Wakes every `waitUntil` after any state change, so waits are event-driven rather than polled. */
  private readonly changes = new EventEmitter();
  private readonly waiterRejects = new Set<(err: Error) => void>();
  private nextRid = 1;
  private closed = false;
  private starting: Promise<void> | undefined;

  constructor(options: IotHubEmulatorOptions = {}) {
    super();
    this.hubHostName = options.hubHostName ?? 'test-hub.azure-devices.net';
    this.listenPort = options.port ?? 0;
    this.certs = options.certs;
    this.ownsCerts = options.certs === undefined;
    this.changes.setMaxListeners(0);
  }

  /** Constructs and {@link IotHubEmulator.start | starts} an emulator. */
  static async create(options: IotHubEmulatorOptions = {}): Promise<IotHubEmulator> {
    const hub = new IotHubEmulator(options);
    await hub.start();
    return hub;
  }

  /** The TCP port on 127.0.0.1; stable across `stop()`/`start()`. Throws before the first `start()`. */
  get port(): number {
    if (this.listenPort === 0) throw new Error('IotHubEmulator has not been started');
    return this.listenPort;
  }

  /** `localhost:<port>`: what goes into `GatewayHostName` / `IOTEDGE_GATEWAYHOSTNAME` (the SDK dials `mqtts://<it>`). */
  get gatewayHostName(): string {
    return `localhost:${this.port}`;
  }

  /** PEM of the CA that signed the broker's certificate; pass it as `client.setOptions({ ca })`. */
  get caCert(): string {
    return this.requireCerts().caCert;
  }

  /** File path of {@link IotHubEmulator.caCert}, e.g. for `EdgeModuleCACertificateFile`. */
  get caCertPath(): string {
    return this.requireCerts().caCertPath;
  }

  /** Whether the TLS listener is up (false between `stop()` and `start()`). */
  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Every event recorded so far, oldest first. */
  get events(): readonly RecordedEvent[] {
    return this.recordedEvents;
  }

  /**
   * Starts listening; the first call also creates the broker and, if none were given, the certificates.
   * After `stop()` it listens on the same port again, so the SDK's retries find it.
   */
  async start(): Promise<void> {
    if (this.closed) throw new Error('IotHubEmulator is closed');
    if (this.server) return;
    // Concurrent callers share one attempt instead of racing to bind the port twice.
    this.starting ??= this.listen().finally(() => { this.starting = undefined; });
    return this.starting;
  }

  private async listen(): Promise<void> {
    if (!this.certs) this.certs = await generateTestCerts();
    if (!this.broker) this.broker = await this.createBroker();
    const broker = this.broker;
    const server = createServer(
      { key: this.certs.serverKey, cert: this.certs.serverCert, minVersion: 'TLSv1.2' },
      (tlsSocket) => broker.handle(tlsSocket),
    );
    // Track the raw TCP sockets: destroying those also kills connections still in the TLS handshake.
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    // A client that rejects our certificate surfaces here; it is the client's failure to report, not ours.
    server.on('tlsClientError', () => {});
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: this.listenPort }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('unexpected server address');
    this.listenPort = address.port;
    this.server = server;
  }

  /**
   * Simulates the hub going away: closes the listener and drops every connection. Twins, identities
   * and persistent sessions are kept; changes made while stopped are visible after `start()`.
   */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    // aedes unregisters clients asynchronously after their sockets close; wait so isConnected() is false on return.
    await this.waitUntil(() => (this.clients.size === 0 ? true : undefined), 5_000, 'all clients to disconnect');
  }

  /** Stops for good: closes the broker, rejects pending waits, removes generated certificates. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.stop();
    this.closed = true;
    const broker = this.broker;
    this.broker = undefined;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    const err = new Error('IotHubEmulator closed');
    for (const reject of [...this.waiterRejects]) reject(err);
    this.pendingMethods.clear();
    if (this.ownsCerts && this.certs) await this.certs.cleanup();
  }

  /**
   * Registers a module identity with an empty twin. Returns its primary key: `keyBase64`, or a new
   * random 32-byte key (what IoT Hub generates) when omitted.
   */
  addModule(deviceId: string, moduleId: string, keyBase64?: string): string {
    const key = keyBase64 ?? randomBytes(32).toString('base64');
    const id = `${deviceId}/${moduleId}`;
    const existing = this.modules.get(id);
    if (existing) {
      if (existing.key !== key) throw new Error(`module ${id} already registered with another key`);
      return key;
    }
    this.modules.set(id, {
      deviceId, moduleId, key,
      desired: {}, desiredVersion: 1,
      reported: {}, reportedVersion: 1,
    });
    return key;
  }

  /**
   * A module connection string that reaches this emulator: `HostName` is the hub name (used for the
   * SAS `sr` and MQTT username), `GatewayHostName=localhost:<port>` is where the SDK connects, exactly
   * as for a module talking to edgeHub. The client still needs the CA: `setOptions({ ca: caCert })`.
   */
  connectionString(deviceId: string, moduleId: string): string {
    const entry = this.requireModule(deviceId, moduleId);
    return `HostName=${this.hubHostName};DeviceId=${deviceId};ModuleId=${moduleId};` +
      `SharedAccessKey=${entry.key};GatewayHostName=${this.gatewayHostName}`;
  }

  /** The MQTT client id the SDK uses for a module: `<deviceId>/<moduleId>`. */
  static clientId(deviceId: string, moduleId: string): string {
    return `${deviceId}/${moduleId}`;
  }

  /** Whether a client with this id currently holds an authenticated connection. */
  isConnected(clientId: string): boolean {
    return this.clients.has(clientId);
  }

  /** Resolves once `clientId` is connected (at once if it already is). */
  waitForConnection(clientId: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return this.waitUntil(() => (this.clients.has(clientId) ? true : undefined), timeoutMs,
      `client ${clientId} to connect`).then(() => undefined);
  }

  /** Resolves once `clientId` is not connected (at once if it is not). */
  waitForDisconnection(clientId: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return this.waitUntil(() => (this.clients.has(clientId) ? undefined : true), timeoutMs,
      `client ${clientId} to disconnect`).then(() => undefined);
  }

  /**
   * Resolves once `clientId` holds a subscription to exactly `topicFilter` (e.g. `$iothub/methods/POST/#`).
   * Needed because the SDK subscribes asynchronously after `onMethod()`/`on('properties.desired')`.
   * Subscriptions of a persistent session count even while the client is offline.
   */
  waitForSubscription(clientId: string, topicFilter: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return this.waitUntil(() => (this.subscriptions.get(clientId)?.has(topicFilter) ? true : undefined),
      timeoutMs, `client ${clientId} to subscribe to ${topicFilter}`).then(() => undefined);
  }

  /** The twin as `$iothub/twin/GET` would return it (a deep copy, `$version` included). */
  getTwin(deviceId: string, moduleId: string): TwinDocument {
    const entry = this.requireModule(deviceId, moduleId);
    return {
      desired: { ...structuredClone(entry.desired), $version: entry.desiredVersion },
      reported: { ...structuredClone(entry.reported), $version: entry.reportedVersion },
    };
  }

  /**
   * Replaces the whole desired section (as a service-side twin replace). A connected module subscribed to
   * desired updates gets the difference as a patch (removed keys as `null`), so the SDK's merged view
   * ends up equal to `doc`. Returns the new `$version`.
   */
  setDesired(deviceId: string, moduleId: string, doc: TwinProperties): number {
    const entry = this.requireModule(deviceId, moduleId);
    const next = stripDollarKeys(doc);
    const patch = diffPatch(entry.desired, next);
    entry.desired = next;
    entry.desiredVersion++;
    this.pushDesired(entry, patch);
    this.changed();
    return entry.desiredVersion;
  }

  /**
   * Merges `patch` into the desired section (objects merge, `null` deletes), bumps `$version` and pushes
   * the patch to the module if it is connected and subscribed. Patches made while the module is offline
   * are not queued — like IoT Hub, the module only sees them by fetching the twin again.
   * Returns the new `$version`.
   */
  patchDesired(deviceId: string, moduleId: string, patch: TwinProperties): number {
    const entry = this.requireModule(deviceId, moduleId);
    mergePatch(entry.desired, patch);
    entry.desiredVersion++;
    this.pushDesired(entry, stripDollarKeysKeepingNulls(patch));
    this.changed();
    return entry.desiredVersion;
  }

  /** The reported section's `$version` now: take it before a change and pass it as `after` to {@link waitForReported}. */
  reportedVersion(deviceId: string, moduleId: string): number {
    return this.requireModule(deviceId, moduleId).reportedVersion;
  }

  /**
   * Resolves with the reported section (`$version` included) once `predicate` holds for a version newer than
   * `options.after` (a {@link reportedVersion} taken before the change under test, so that no earlier document can
   * satisfy it) — checked at once and after every reported patch.
   */
  waitForReported<T extends object = TwinProperties>(
    deviceId: string,
    moduleId: string,
    predicate: (reported: T & { $version: number }) => boolean,
    options: { readonly after: number; readonly timeoutMs?: number },
  ): Promise<T & { $version: number }> {
    const entry = this.requireModule(deviceId, moduleId);
    let lastSeen = '';
    return this.waitUntil(() => {
      const reported = { ...structuredClone(entry.reported), $version: entry.reportedVersion } as T & { $version: number };
      lastSeen = JSON.stringify(reported);
      return entry.reportedVersion > options.after && predicate(reported) ? reported : undefined;
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, () => `reported properties of ${deviceId}/${moduleId} newer than $version ${options.after} to match (last: ${lastSeen})`);
  }

  /**
   * Invokes a direct method like the service SDK does and resolves with the module's reply. Waits (within
   * `timeoutMs`) for the module to be connected and subscribed to `$iothub/methods/POST/#` first, since a
   * request published earlier would be lost. Rejects on timeout (IoT Hub would answer 504).
   */
  async invokeMethod(
    deviceId: string,
    moduleId: string,
    methodName: string,
    payload: unknown,
    timeoutMs = DEFAULT_TIMEOUT_MS,
  ): Promise<MethodResult> {
    this.requireModule(deviceId, moduleId);
    const clientId = IotHubEmulator.clientId(deviceId, moduleId);
    const deadline = Date.now() + timeoutMs;
    const client = await this.waitUntil(
      () => (this.subscriptions.get(clientId)?.has(METHODS_TOPIC_FILTER) ? this.clients.get(clientId) : undefined),
      timeoutMs,
      `${clientId} to be connected and subscribed to ${METHODS_TOPIC_FILTER} before invoking ${methodName}`,
    );
    const rid = String(this.nextRid++);
    let result: MethodResult | undefined;
    this.pendingMethods.set(rid, { clientId, resolve: (r) => { result = r; this.changed(); } });
    try {
      await this.writeTo(client, `$iothub/methods/POST/${methodName}/?$rid=${rid}`,
        JSON.stringify(payload === undefined ? null : payload));
      return await this.waitUntil(() => result, Math.max(1, deadline - Date.now()),
        `${clientId} to answer method ${methodName} ($rid=${rid})`);
    } finally {
      this.pendingMethods.delete(rid);
    }
  }

  /**
   * Resolves with the first recorded event matching `predicate`, including events that arrived before
   * the call (so a fast module cannot race the test); use {@link IotHubEmulator.clearEvents} between steps.
   */
  waitForEvent(predicate: (event: RecordedEvent) => boolean, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<RecordedEvent> {
    let scanned = 0;
    return this.waitUntil(() => {
      for (; scanned < this.recordedEvents.length; scanned++) {
        const event = this.recordedEvents[scanned]!;
        if (predicate(event)) return event;
      }
      return undefined;
    }, timeoutMs, 'a matching event');
  }

  /** Forgets recorded events. */
  clearEvents(): void {
    this.recordedEvents.length = 0;
  }

  /**
   * Routes a message to a module input (what `client.on('inputMessage', (inputName, msg) => ...)` receives).
   * Published at QoS 1 through the broker, so a persistent session gets it even after a reconnect.
   */
  async sendInputMessage(
    deviceId: string,
    moduleId: string,
    inputName: string,
    body: string | Buffer,
    properties: Record<string, string> = {},
  ): Promise<void> {
    this.requireModule(deviceId, moduleId);
    const broker = this.requireBroker();
    // The SDK's topic regex needs a segment after the input name, hence the trailing '/' when there are no properties.
    const topic = `devices/${deviceId}/modules/${moduleId}/inputs/${inputName}/${encodeProperties(properties)}`;
    const packet: PublishPacket = {
      cmd: 'publish', topic, payload: typeof body === 'string' ? Buffer.from(body) : body,
      qos: 1, retain: false, dup: false,
    };
    await new Promise<void>((resolve, reject) => broker.publish(packet, (err) => (err ? reject(err) : resolve())));
  }

  /** Drops one client's connection (the broker and listener stay up), e.g. to test a single module's reconnect. */
  async disconnectClient(clientId: string): Promise<void> {
    const client = this.clients.get(clientId);
    if (!client) return;
    client.conn.destroy();
    await this.waitForDisconnection(clientId, 5_000);
  }

  // ---------------------------------------------------------------------------------------------------

  private async createBroker(): Promise<Aedes> {
    const broker = await Aedes.createBroker({
      authenticate: (client, username, password, done) => {
        const reason = this.checkCredentials(client.id, username, password);
        if (reason === undefined) {
          done(null, true);
        } else {
          this.emit('authFailed', client.id, reason);
          done(authError(reason), false);
        }
      },
      authorizePublish: (client, packet, done) => {
        if (!client || this.mayPublish(client.id, packet.topic)) done(null);
        else done(new Error(`${client.id} may not publish to ${packet.topic}`));
      },
      authorizeSubscribe: (client, sub, done) => {
        // A null subscription makes aedes answer SUBACK 0x80 (failure) as IoT Hub does for foreign topics.
        done(null, this.maySubscribe(client.id, sub.topic) ? sub : null);
      },
    });
    broker.on('clientReady', (client) => {
      this.clients.set(client.id, client);
      this.changed();
      this.emit('clientConnected', client.id);
    });
    broker.on('clientDisconnect', (client) => {
      // aedes also reports the old connection of a client id that reconnected; only forget the current one.
      if (this.clients.get(client.id) !== client) return;
      this.clients.delete(client.id);
      this.changed();
      this.emit('clientDisconnected', client.id);
    });
    broker.on('subscribe', (subs: Subscription[], client: Client) => {
      let set = this.subscriptions.get(client.id);
      if (!set) this.subscriptions.set(client.id, (set = new Set()));
      for (const sub of subs) {
        // aedes reports refused filters with qos 128 (SUBACK failure) in the same list.
        if ((sub.qos as number) === 128) continue;
        set.add(sub.topic);
        this.emit('subscribed', client.id, sub.topic);
      }
      this.changed();
    });
    broker.on('unsubscribe', (topics: string[], client: Client) => {
      const set = this.subscriptions.get(client.id);
      for (const topic of topics) set?.delete(topic);
      this.changed();
    });
    broker.on('client', (client) => {
      // A clean session starts with no subscriptions; a persistent one gets them re-announced by aedes.
      if (client.clean) this.subscriptions.delete(client.id);
    });
    broker.on('publish', (packet: AedesPublishPacket, client: Client | null) => {
      if (client) this.onModulePublish(client, packet);
    });
    // Socket-level errors (a reset connection, our own stop()) are expected in these tests.
    broker.on('clientError', () => {});
    broker.on('connectionError', () => {});
    return broker;
  }

  /** Returns why the CONNECT must be refused, or undefined to accept it. */
  private checkCredentials(clientId: string, username: string | undefined, password: Buffer | undefined): string | undefined {
    const entry = this.modules.get(clientId);
    if (!entry) return `unknown identity ${clientId}`;
    const sas = password?.toString('utf8') ?? '';
    const prefix = 'SharedAccessSignature ';
    if (!sas.startsWith(prefix)) return 'password is not a SharedAccessSignature';
    const fields: Record<string, string> = {};
    for (const part of sas.slice(prefix.length).split('&')) {
      const eq = part.indexOf('=');
      if (eq > 0) fields[part.slice(0, eq)] = part.slice(eq + 1);
    }
    const { sr, sig, se } = fields;
    if (!sr || !sig || !se) return 'SharedAccessSignature lacks sr, sig or se';
    const expectedResource = `${this.hubHostName}/devices/${entry.deviceId}/modules/${entry.moduleId}`;
    if (decodeURIComponent(sr).toLowerCase() !== expectedResource.toLowerCase()) {
      return `sr ${decodeURIComponent(sr)} is not ${expectedResource}`;
    }
    const expiry = Number(se);
    if (!Number.isFinite(expiry) || expiry * 1000 < Date.now()) return `token expired (se=${se})`;
    // The signed string uses sr exactly as sent (already URL-encoded), per azure-iot-common's stringToSign.
    const expected = createHmac('sha256', Buffer.from(entry.key, 'base64')).update(`${sr}\n${se}`).digest();
    const given = Buffer.from(decodeURIComponent(sig), 'base64');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'signature does not match the key';
    // Checked last so that a token for the wrong hub is reported as a wrong sr, the more telling reason.
    if (!username?.startsWith(`${this.hubHostName}/${clientId}/`)) return `unexpected username ${username}`;
    return undefined;
  }

  private identityOf(clientId: string): ModuleEntry | undefined {
    return this.modules.get(clientId);
  }

  private mayPublish(clientId: string, topic: string): boolean {
    const entry = this.identityOf(clientId);
    if (!entry) return false;
    return topic.startsWith('$iothub/twin/GET/') ||
      topic.startsWith('$iothub/twin/PATCH/properties/reported/') ||
      topic.startsWith('$iothub/methods/res/') ||
      topic.startsWith(`devices/${entry.deviceId}/modules/${entry.moduleId}/messages/events/`);
  }

  private maySubscribe(clientId: string, topic: string): boolean {
    const entry = this.identityOf(clientId);
    if (!entry) return false;
    return topic === '$iothub/twin/res/#' ||
      topic === DESIRED_TOPIC_FILTER ||
      topic === METHODS_TOPIC_FILTER ||
      topic === `devices/${entry.deviceId}/modules/${entry.moduleId}/inputs/#` ||
      topic === `devices/${entry.deviceId}/messages/devicebound/#`;
  }

  private onModulePublish(client: Client, packet: AedesPublishPacket): void {
    const entry = this.identityOf(client.id);
    if (!entry) return;
    const topic = packet.topic;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload ?? '');
    const { path, query } = splitTopicQuery(topic);
    const rid = query.$rid;

    if (path === '$iothub/twin/GET/' && rid !== undefined) {
      void this.writeTo(client, `$iothub/twin/res/200/?$rid=${rid}`,
        JSON.stringify(this.getTwin(entry.deviceId, entry.moduleId))).catch(() => {});
      return;
    }
    if (path === '$iothub/twin/PATCH/properties/reported/' && rid !== undefined) {
      let patch: unknown;
      try {
        patch = JSON.parse(payload.toString('utf8'));
      } catch {
        patch = undefined;
      }
      if (!isPlainObject(patch)) {
        // The SDK fails a twin request only when the body has errorCode; the status code alone is ignored.
        void this.writeTo(client, `$iothub/twin/res/400/?$rid=${rid}`,
          JSON.stringify({ errorCode: 400004, message: 'reported patch must be a JSON object' })).catch(() => {});
        return;
      }
      mergePatch(entry.reported, patch);
      entry.reportedVersion++;
      void this.writeTo(client, `$iothub/twin/res/204/?$rid=${rid}&$version=${entry.reportedVersion}`, '')
        .catch(() => {});
      this.changed();
      this.emit('reported', entry.deviceId, entry.moduleId,
        { ...structuredClone(entry.reported), $version: entry.reportedVersion });
      return;
    }
    const methodRes = /^\$iothub\/methods\/res\/(\d+)\/$/.exec(path);
    if (methodRes && rid !== undefined) {
      const pending = this.pendingMethods.get(rid);
      if (pending && pending.clientId === client.id) {
        pending.resolve({ status: Number(methodRes[1]), payload: parseJsonOrText(payload) });
      }
      return;
    }
    const eventsPrefix = `devices/${entry.deviceId}/modules/${entry.moduleId}/messages/events/`;
    if (topic.startsWith(eventsPrefix)) {
      // The SDK appends the property bag after the prefix and ends the topic with '/'.
      const properties = decodeProperties(topic.slice(eventsPrefix.length).replace(/\/$/, ''));
      const event: RecordedEvent = {
        deviceId: entry.deviceId,
        moduleId: entry.moduleId,
        outputName: properties['$.on'],
        properties,
        body: Buffer.from(payload),
        topic,
        receivedAt: Date.now(),
      };
      this.recordedEvents.push(event);
      this.changed();
      this.emit('event', event);
    }
  }

  private pushDesired(entry: ModuleEntry, patch: TwinProperties): void {
    if (Object.keys(patch).length === 0) return;
    const clientId = IotHubEmulator.clientId(entry.deviceId, entry.moduleId);
    const client = this.clients.get(clientId);
    if (!client || !this.subscriptions.get(clientId)?.has(DESIRED_TOPIC_FILTER)) return;
    const version = entry.desiredVersion;
    void this.writeTo(client, `$iothub/twin/PATCH/properties/desired/?$version=${version}`,
      JSON.stringify({ ...patch, $version: version })).catch(() => {});
  }

  /** Writes a QoS 0 PUBLISH to one client only (see the class comment for why not broker.publish). */
  private writeTo(client: Client, topic: string, body: string): Promise<void> {
    const packet: PublishPacket = { cmd: 'publish', topic, payload: Buffer.from(body), qos: 0, retain: false, dup: false };
    return new Promise((resolve, reject) => client.publish(packet, (err) => (err ? reject(err) : resolve())));
  }

  private changed(): void {
    this.changes.emit('change');
  }

  /**
   * Resolves with `check()`'s first non-undefined result, evaluating it now and after every state change,
   * or rejects after `timeoutMs` with a message naming what was awaited.
   */
  private waitUntil<T>(check: () => T | undefined, timeoutMs: number, what: string | (() => string)): Promise<T> {
    if (this.closed) return Promise.reject(new Error('IotHubEmulator closed'));
    let first: T | undefined;
    try {
      first = check();
    } catch (err) {
      return Promise.reject(err);
    }
    if (first !== undefined) return Promise.resolve(first);
    return new Promise<T>((resolve, reject) => {
      const finish = (err: Error | undefined, value?: T): void => {
        clearTimeout(timer);
        this.changes.off('change', onChange);
        this.waiterRejects.delete(onClose);
        if (err) reject(err);
        else resolve(value as T);
      };
      const onChange = (): void => {
        let value: T | undefined;
        try {
          value = check();
        } catch (err) {
          finish(err as Error);
          return;
        }
        if (value !== undefined) finish(undefined, value);
      };
      const onClose = (err: Error): void => finish(err);
      const timer = setTimeout(() => {
        finish(new Error(`Timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`));
      }, timeoutMs);
      this.changes.on('change', onChange);
      this.waiterRejects.add(onClose);
    });
  }

  private requireModule(deviceId: string, moduleId: string): ModuleEntry {
    const entry = this.modules.get(`${deviceId}/${moduleId}`);
    if (!entry) throw new Error(`unknown module ${deviceId}/${moduleId}: call addModule() first`);
    return entry;
  }

  private requireBroker(): Aedes {
    if (!this.broker) throw new Error('IotHubEmulator has not been started');
    return this.broker;
  }

  private requireCerts(): TestCerts {
    if (!this.certs) throw new Error('IotHubEmulator has not been started');
    return this.certs;
  }
}

/** Like {@link stripDollarKeys} but keeps `null`s: a pushed patch must still carry its deletions. */
function stripDollarKeysKeepingNulls(patch: TwinProperties): TwinProperties {
  const out: TwinProperties = {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) continue;
    out[key] = isPlainObject(value) ? stripDollarKeysKeepingNulls(value) : structuredClone(value);
  }
  return out;
}
