import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import azureIotDevice from 'azure-iot-device';
import type { DeviceMethodRequest, DeviceMethodResponse, ModuleClient as ModuleClientType, Twin } from 'azure-iot-device';
import azureIotDeviceMqtt from 'azure-iot-device-mqtt';
import type { Logger } from 'pino';
import { auditTime, filter, firstValueFrom, Subject, type Subscription } from 'rxjs';
import type { ControlPlane, ControlPlaneEvent, StatusDocument } from './ControlPlane.js';
import { applyPatch, reportedPatch } from './reportedPatch.js';

// Both SDK packages are CommonJS: named ESM imports of them fail at run time.
const { ModuleClient, Message, DeviceMethodResponse: MethodResponse } = azureIotDevice;
const { Mqtt } = azureIotDeviceMqtt;

/** The direct methods the module answers; anything else gets 404. */
export const DIRECT_METHODS = ['getStatus', 'restartPipeline', 'setDesired'] as const;

export interface IotHubOptions {
  readonly plane: ControlPlane;
  readonly logger: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /** Module output that pipeline state changes go to (env EVENTS_OUTPUT). */
  readonly eventsOutput?: string;
  /** Reported-property updates are coalesced over this window (env REPORT_INTERVAL_MS). */
  readonly reportIntervalMs?: number;
  /** Where the last applied desired document is kept, to run it at start while the hub is out of reach (env STATE_DIR). */
  readonly stateDir: string;
  /** At most this many output events per `eventWindowMs`; the rest are counted and the count goes out with the next one. */
  readonly maxEvents?: number;
  readonly eventWindowMs?: number;
}

function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** What to tell a user about a failed connection. */
function connectionAdvice(error: unknown): string {
  const name = error instanceof Error ? error.name : '';
  if (name === 'UnauthorizedError') return 'IoT Hub refused the credentials: check the module key / connection string';
  if (/certificate|self.signed|CERT/i.test(String(error))) return 'TLS failed: check the CA certificate (EdgeModuleCACertificateFile)';
  return 'cannot reach IoT Hub';
}

/** The status document's keys: the part of reported properties this module owns (others are left alone). */
const OWN_KEYS = ['config', 'pipelines', 'engine'] as const;

/** Our part of the hub's reported properties, as plain JSON (the SDK's object also holds its `update` function). */
function ownReported(reported: unknown): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(reported ?? {})) as Record<string, unknown>;
  return Object.fromEntries(OWN_KEYS.filter((k) => k in plain).map((k) => [k, plain[k]]));
}

class MethodError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The module twin as the source of desired documents, and IoT Hub as the place status goes: reported
 * properties (coalesced patches), direct methods, and output events. Connects with
 * `ModuleClient.fromEnvironment` (IoT Edge, or EdgeHubConnectionString + optional CA file), keeps retrying
 * while the hub is out of reach, and fetches the twin again after every reconnect so desired changes made
 * while offline are applied. The pipelines keep running throughout.
 */
export class IotHubConnection {
  readonly #plane: ControlPlane;
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;
  readonly #eventsOutput: string;
  readonly #reportIntervalMs: number;
  readonly #statePath: string;
  readonly #maxEvents: number;
  readonly #eventWindowMs: number;
  /** The connected client, or null. */
  #client: ModuleClientType | null = null;
  #twin: Twin | null = null;
  /** What the hub holds as reported properties (as far as we know): patches are computed against it. */
  #hubReported: Record<string, unknown> | null = null;
  /** Sequence numbers of desired documents we applied -> the document, to cache it once applied. */
  readonly #sent = new Map<number, unknown>();
  readonly #subscriptions: Subscription[] = [];
  /** Asks for a reported update now (after a reconnect). */
  readonly #reportNow = new Subject<void>();
  #reporting: Promise<void> = Promise.resolve();
  #retryTimer: NodeJS.Timeout | null = null;
  #attempt = 0;
  #closed = false;
  /** Output events in the current window, and those dropped since the last one sent. */
  #eventCount = 0;
  #eventWindowStart = 0;
  #dropped = 0;

  constructor(options: IotHubOptions) {
    this.#plane = options.plane;
    this.#log = options.logger.child({ component: 'iothub' });
    this.#env = options.env ?? process.env;
    this.#eventsOutput = options.eventsOutput ?? this.#env.EVENTS_OUTPUT ?? 'events';
    this.#reportIntervalMs = options.reportIntervalMs ?? Number(this.#env.REPORT_INTERVAL_MS ?? 1_000);
    this.#statePath = join(options.stateDir, 'last-desired.json');
    this.#maxEvents = options.maxEvents ?? 20;
    this.#eventWindowMs = options.eventWindowMs ?? 10_000;
  }

  /** Runs the cached desired document (if any) and starts connecting. */
  async start(): Promise<void> {
    const cached = await readFile(this.#statePath, 'utf8').then(
      (text) => JSON.parse(text) as unknown,
      () => null,
    );
    if (cached !== null) {
      this.#log.info({ event: 'cached-desired' }, `running the last applied desired document (${this.#statePath}) until IoT Hub answers`);
      this.#plane.applyDesired(cached);
    }
    this.#subscriptions.push(
      this.#plane.events$.subscribe((event) => this.#onPlaneEvent(event)),
      this.#plane.status$.pipe(auditTime(this.#reportIntervalMs)).subscribe((status) => this.#queueReport(status)),
      this.#reportNow.subscribe(() => this.#queueReport(this.#plane.status$.value)),
    );
    void this.#connect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    for (const s of this.#subscriptions) s.unsubscribe();
    // A last report, so the hub shows the stopped state.
    this.#queueReport(this.#plane.status$.value);
    await this.#reporting;
    await this.#client?.close().catch(() => undefined);
    this.#client = null;
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    let client: ModuleClientType | null = null;
    try {
      client = await ModuleClient.fromEnvironment(Mqtt);
      client.on('error', (error: Error) => this.#log.warn(`IoT Hub client error: ${errorText(error)}`));
      client.on('disconnect', () => this.#onDisconnect(client!));
      client.on('connect', () => this.#onReconnect(client!));
      this.#answerUnknownMethods(client);
      for (const name of DIRECT_METHODS) client.onMethod(name, (request, response) => void this.#onMethod(name, request!, response!));
      await client.open();
      const twin = await client.getTwin();
      if (this.#closed) {
        await client.close();
        return;
      }
      this.#client = client;
      this.#twin = twin;
      this.#attempt = 0;
      this.#hubReported = ownReported(twin.properties.reported);
      this.#log.info({ event: 'iothub-connected' }, 'connected to IoT Hub; the module twin drives the pipelines');
      twin.on('properties.desired', () => this.#applyTwin());
      this.#reportNow.next();
    } catch (error) {
      await client?.close().catch(() => undefined);
      this.#scheduleReconnect(error);
    }
  }

  #scheduleReconnect(error: unknown): void {
    if (this.#closed) return;
    const delay = Math.min(1_000 * 2 ** this.#attempt++, 60_000);
    this.#log.error(
      { event: 'iothub-connect-failed', error: this.#plane.redactor.redact(errorText(error)), retryInMs: delay },
      `${connectionAdvice(error)} (${this.#plane.redactor.redact(errorText(error))}); keeping the pipelines as they are, retrying in ${delay} ms`,
    );
    this.#retryTimer = setTimeout(() => void this.#connect(), delay);
  }

  /** The SDK gave up on this connection (its retry policy ran out, or it was refused): start over. */
  #onDisconnect(client: ModuleClientType): void {
    if (client !== this.#client || this.#closed) return;
    this.#client = null;
    this.#twin = null;
    this.#log.warn({ event: 'iothub-disconnected' }, 'disconnected from IoT Hub; pipelines keep running');
    void client.close().catch(() => undefined);
    this.#scheduleReconnect(new Error('connection lost'));
  }

  /** The SDK reconnected by itself: fetch the twin again, or changes made while offline would be missed. */
  #onReconnect(client: ModuleClientType): void {
    if (client !== this.#client || !this.#twin) return;
    this.#log.info({ event: 'iothub-reconnected' }, 'reconnected to IoT Hub; fetching the twin again');
    this.#twin.get().then(
      () => this.#reportNow.next(),
      (error: unknown) => this.#log.warn(`twin fetch after reconnect failed: ${errorText(error)}`),
    );
  }

  #applyTwin(): void {
    if (!this.#twin) return;
    const desired = this.#twin.properties.desired as Record<string, unknown>;
    const { $metadata: _metadata, ...document } = desired;
    const sequence = this.#plane.applyDesired(document);
    this.#sent.set(sequence, document);
  }

  #onPlaneEvent(event: ControlPlaneEvent): void {
    if (event.type === 'config') {
      const document = this.#sent.get(event.sequence);
      this.#sent.delete(event.sequence);
      if (event.status === 'applied' && document !== undefined) void this.#cache(document);
    }
    this.#sendEvent(event);
  }

  async #cache(document: unknown): Promise<void> {
    try {
      await mkdir(join(this.#statePath, '..'), { recursive: true });
      const temp = `${this.#statePath}.tmp`;
      await writeFile(temp, JSON.stringify(document));
      await rename(temp, this.#statePath);
    } catch (error) {
      this.#log.warn(`cannot keep the desired document in ${this.#statePath}: ${errorText(error)}`);
    }
  }

  #queueReport(status: StatusDocument): void {
    this.#reporting = this.#reporting.then(() => this.#report(status));
  }

  async #report(status: StatusDocument): Promise<void> {
    const twin = this.#twin;
    if (!twin || this.#hubReported === null) return;
    const patch = reportedPatch(this.#hubReported, status);
    if (!patch) return;
    try {
      // update() takes a callback only: awaiting it would not wait.
      await new Promise<void>((resolve, reject) =>
        twin.properties.reported.update(patch, (error?: Error) => (error ? reject(error) : resolve())),
      );
      this.#hubReported = applyPatch(this.#hubReported, patch);
    } catch (error) {
      this.#log.warn(`reported properties update failed (will retry with the next change): ${errorText(error)}`);
    }
  }

  #sendEvent(event: ControlPlaneEvent): void {
    const client = this.#client;
    if (!client || event.type !== 'pipeline-state') return;
    const now = Date.now();
    if (now - this.#eventWindowStart >= this.#eventWindowMs) {
      this.#eventWindowStart = now;
      this.#eventCount = 0;
    }
    if (this.#eventCount >= this.#maxEvents) {
      this.#dropped++;
      return;
    }
    this.#eventCount++;
    const body = { ...event, ...(this.#dropped > 0 ? { droppedBefore: this.#dropped } : {}) };
    this.#dropped = 0;
    const message = new Message(JSON.stringify(body));
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    message.properties.add('type', event.type);
    client.sendOutputEvent(this.#eventsOutput, message).catch((error: unknown) => {
      this.#log.warn(`output event not sent: ${errorText(error)}`);
    });
  }

  /** The SDK leaves a method nobody registered unanswered (the caller times out): answer 404 instead. */
  #answerUnknownMethods(client: ModuleClientType): void {
    const transport = (client as unknown as { _transport?: NodeJS.EventEmitter & { emit: (...args: unknown[]) => boolean } })._transport;
    if (!transport || typeof transport.emit !== 'function') return;
    const emit = transport.emit.bind(transport);
    transport.emit = (event: unknown, ...args: unknown[]) => {
      if (typeof event === 'string' && event.startsWith('method_') && transport.listenerCount(event) === 0) {
        const message = args[0] as { requestId?: string } | undefined;
        if (message?.requestId) {
          const response = new MethodResponse(message.requestId, transport as never);
          const name = event.slice('method_'.length);
          response.send(404, { error: `unknown method "${name}"; this module answers ${DIRECT_METHODS.join(', ')}` }).catch(() => undefined);
          return true;
        }
      }
      return emit(event, ...args);
    };
  }

  async #onMethod(name: (typeof DIRECT_METHODS)[number], request: DeviceMethodRequest, response: DeviceMethodResponse): Promise<void> {
    let status = 200;
    let payload: unknown;
    try {
      payload = await this.#method(name, request.payload);
    } catch (error) {
      status = error instanceof MethodError ? error.status : 500;
      payload = { error: this.#plane.redactor.redact(error instanceof Error ? error.message : String(error)) };
    }
    this.#log.info({ event: 'direct-method', method: name, status }, `direct method ${name}: ${status}`);
    await response.send(status, payload).catch((error: unknown) => this.#log.warn(`method response not sent: ${errorText(error)}`));
  }

  async #method(name: (typeof DIRECT_METHODS)[number], payload: unknown): Promise<unknown> {
    switch (name) {
      case 'getStatus':
        return this.#plane.status$.value;
      case 'restartPipeline': {
        const pipeline = (payload as { name?: unknown } | null)?.name;
        if (typeof pipeline !== 'string' || pipeline === '') throw new MethodError(400, 'payload must be {"name": "<pipeline>"}');
        if (!this.#plane.restartPipeline(pipeline)) {
          throw new MethodError(404, `no pipeline "${pipeline}"; running: ${Object.keys(this.#plane.status$.value.pipelines).join(', ') || 'none'}`);
        }
        return { restarted: pipeline };
      }
      case 'setDesired': {
        if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
          throw new MethodError(400, 'payload must be a desired document (an object with "pipeline" and the other twin keys)');
        }
        let sequence = -1;
        const outcome = firstValueFrom(
          this.#plane.events$.pipe(filter((e): e is Extract<ControlPlaneEvent, { type: 'config' }> => e.type === 'config' && e.sequence === sequence)),
        );
        sequence = this.#plane.applyDesired(payload);
        const result = await outcome;
        if (result.status === 'rejected') throw new MethodError(400, result.error ?? 'rejected');
        return { status: result.status };
      }
    }
  }
}
