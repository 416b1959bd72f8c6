import { join } from 'node:path';
import azureIotDevice from 'azure-iot-device';
import type { DeviceMethodRequest, DeviceMethodResponse, ModuleClient as ModuleClientType, Twin } from 'azure-iot-device';
import azureIotDeviceMqtt from 'azure-iot-device-mqtt';
import type { Logger } from 'pino';
import { auditTime, filter, firstValueFrom, Subject, type Subscription } from 'rxjs';
import { createActor, fromPromise } from 'xstate';
import { DEFAULT_ANALYSIS_OUTPUT, DEFAULT_RECORDINGS_OUTPUT } from '../config/defaults.js';
import { iotHubConnectionMachine, type IotHubConnectionActor } from '../machines/iotHubConnection.js';
import type { ControlPlane, ControlPlaneEvent, StatusDocument } from './ControlPlane.js';
import { applyPatch, capReported, reportedPatch } from './reportedPatch.js';
import { StateFile } from './stateDir.js';

// Both SDK packages are CommonJS: named ESM imports of them fail at run time.
const { ModuleClient, Message, DeviceMethodResponse: MethodResponse } = azureIotDevice;
const { Mqtt } = azureIotDeviceMqtt;

/** How long the last report and the disconnect may take when the module stops. */
export const IOT_HUB_CLOSE_TIMEOUT_MS = 2_000;

/** The direct methods the module answers; anything else gets 404. */
export const DIRECT_METHODS = ['getStatus', 'restartPipeline', 'setDesired'] as const;

export interface IotHubOptions {
  readonly plane: ControlPlane;
  readonly logger: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /** Module output that pipeline state changes go to (env EVENTS_OUTPUT). */
  readonly eventsOutput?: string;
  /** Module output that analyzers' detections go to (env ANALYSIS_OUTPUT, default `inference`). */
  readonly analysisOutput?: string;
  /** Module output that a message per uploaded recording segment goes to (env RECORDINGS_OUTPUT, default `recordings`). */
  readonly recordingsOutput?: string;
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

/**
 * Our part of the hub's reported properties, as plain JSON (the SDK's object also holds its `update` function): the
 * keys of the status document; others (another writer's) are left alone.
 */
function ownReported(reported: unknown, status: StatusDocument): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(reported ?? {})) as Record<string, unknown>;
  return Object.fromEntries([...Object.keys(status), 'truncated'].filter((k) => k in plain).map((k) => [k, plain[k]]));
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
  /** Where detections go (their rate limit is each analyzer's own, `analyzers.<name>.events`). */
  readonly #analysisOutput: string;
  /** Where uploaded segments are announced (one message per segment and target, not rate-limited: at most one per segment length). */
  readonly #recordingsOutput: string;
  readonly #reportIntervalMs: number;
  /** The last applied desired document, run at start until the hub answers. */
  readonly #lastDesired: StateFile;
  /** Connecting, connected and in sync, re-fetching, waiting to retry. */
  readonly #connection: IotHubConnectionActor;
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
    this.#analysisOutput = options.analysisOutput ?? (this.#env.ANALYSIS_OUTPUT || DEFAULT_ANALYSIS_OUTPUT);
    this.#recordingsOutput = options.recordingsOutput ?? (this.#env.RECORDINGS_OUTPUT || DEFAULT_RECORDINGS_OUTPUT);
    this.#reportIntervalMs = options.reportIntervalMs ?? Number(this.#env.REPORT_INTERVAL_MS ?? 1_000);
    this.#lastDesired = new StateFile(join(options.stateDir, 'last-desired.json'));
    this.#maxEvents = options.maxEvents ?? 20;
    this.#eventWindowMs = options.eventWindowMs ?? 10_000;
    this.#connection = createActor(
      iotHubConnectionMachine.provide({
        actors: {
          connect: fromPromise(() => this.#connect()),
          fetchTwin: fromPromise(async () => {
            await this.#twin?.get();
          }),
          disconnect: fromPromise(() => this.#disconnect()),
        },
      }),
    );
    this.#connection.on('synced', () => {
      this.#applyTwin();
      this.#reportNow.next();
    });
    this.#connection.on('connectFailed', ({ error, retryInMs }) => {
      const text = this.#plane.redactor.redact(errorText(error));
      this.#log.error(
        { event: 'iothub-connect-failed', error: text, retryInMs },
        `${connectionAdvice(error)} (${text}); keeping the pipelines as they are, retrying in ${retryInMs} ms`,
      );
    });
    this.#connection.on('fetchFailed', ({ error, retryInMs }) => {
      this.#log.warn({ event: 'iothub-fetch-failed', retryInMs }, `twin fetch after reconnect failed (${this.#plane.redactor.redact(errorText(error))}); retrying in ${retryInMs} ms`);
    });
    this.#connection.on('disconnected', () => this.#log.warn({ event: 'iothub-disconnected' }, 'disconnected from IoT Hub; pipelines keep running'));
  }

  /** Runs the cached desired document (if any) and starts connecting. */
  async start(): Promise<void> {
    const cached = await this.#lastDesired.read().catch((error: unknown) => {
      // A corrupt cache (a crash mid-write on an old version, a full disk) costs the head start, nothing else.
      this.#log.warn({ event: 'cached-desired-unreadable' }, `ignoring ${this.#lastDesired.path}: ${errorText(error)}`);
      return null;
    });
    if (cached !== null) {
      this.#log.info({ event: 'cached-desired' }, `running the last applied desired document (${this.#lastDesired.path}) until IoT Hub answers`);
      this.#plane.applyDesired(cached);
    }
    this.#subscriptions.push(
      this.#plane.events$.subscribe((event) => this.#onPlaneEvent(event)),
      this.#plane.status$.pipe(auditTime(this.#reportIntervalMs)).subscribe((status) => this.#queueReport(status)),
      this.#reportNow.subscribe(() => this.#queueReport(this.#plane.status$.value)),
    );
    this.#connection.start();
  }

  /** A last report (bounded by `timeoutMs`, so a hub that does not answer cannot hold up the exit), then disconnects. */
  async close(timeoutMs = IOT_HUB_CLOSE_TIMEOUT_MS): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#subscriptions) s.unsubscribe();
    this.#queueReport(this.#plane.status$.value);
    const done = new Promise<void>((resolve) => this.#connection.subscribe({ complete: resolve }));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([
      (async () => {
        await this.#reporting;
        this.#connection.send({ type: 'CLOSE' });
        await done;
        await this.#lastDesired.settled();
      })(),
      deadline,
    ]);
    clearTimeout(timer);
    // Past the deadline the connection is closed regardless (the process is about to exit).
    this.#connection.send({ type: 'CLOSE' });
  }

  /** Opens a client and fetches the twin (the machine's `connect`); rejects on failure, leaving nothing open. */
  async #connect(): Promise<void> {
    let client: ModuleClientType | null = null;
    try {
      client = await ModuleClient.fromEnvironment(Mqtt);
      const own = client;
      own.on('error', (error: Error) => this.#log.warn(`IoT Hub client error: ${this.#plane.redactor.redact(errorText(error))}`));
      own.on('disconnect', () => {
        if (own === this.#client) this.#connection.send({ type: 'DISCONNECTED' });
      });
      own.on('connect', () => {
        if (own !== this.#client || !this.#twin) return;
        this.#log.info({ event: 'iothub-reconnected' }, 'reconnected to IoT Hub; fetching the twin again');
        this.#connection.send({ type: 'RECONNECTED' });
      });
      this.#answerUnknownMethods(own);
      for (const name of DIRECT_METHODS) own.onMethod(name, (request, response) => void this.#onMethod(name, request!, response!));
      await own.open();
      const twin = await own.getTwin();
      this.#client = own;
      this.#twin = twin;
      this.#hubReported = ownReported(twin.properties.reported, this.#plane.status$.value);
      this.#log.info({ event: 'iothub-connected' }, 'connected to IoT Hub; the module twin drives the pipelines');
      // The SDK calls this at once with the whole document, then per patch (merged). Applied only while in sync.
      twin.on('properties.desired', () => {
        if (this.#connection.getSnapshot().matches({ connected: 'synced' })) this.#applyTwin();
      });
    } catch (error) {
      await client?.close().catch(() => undefined);
      throw error;
    }
  }

  async #disconnect(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    this.#twin = null;
    await client?.close().catch(() => undefined);
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
      if (event.status === 'applied' && document !== undefined) this.#cache(document);
    }
    if (event.type === 'detection') this.#sendDetection(event);
    else if (event.type === 'recording-uploaded') this.#sendRecording(event);
    else this.#sendEvent(event);
  }

  /** One uploaded segment: where it is (URL without query string), when it starts, how long and big it is. */
  #sendRecording(event: Extract<ControlPlaneEvent, { type: 'recording-uploaded' }>): void {
    const client = this.#client;
    if (!client) return;
    const message = new Message(JSON.stringify(event));
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    message.properties.add('type', 'recording-uploaded');
    message.properties.add('camera', event.camera);
    message.properties.add('stream', event.stream);
    client.sendOutputEvent(this.#recordingsOutput, message).catch((error: unknown) => {
      this.#log.warn(`recording message not sent: ${errorText(error)}`);
    });
  }

  /** One detection, flat as Stream Analytics reads it (camera, timestamp, class, score, box; `dropped` by the limit). */
  #sendDetection(event: Extract<ControlPlaneEvent, { type: 'detection' }>): void {
    const client = this.#client;
    if (!client) return;
    const message = new Message(JSON.stringify(event));
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    message.properties.add('type', 'detection');
    message.properties.add('class', event.class);
    client.sendOutputEvent(this.#analysisOutput, message).catch((error: unknown) => {
      this.#log.warn(`detection not sent: ${errorText(error)}`);
    });
  }

  #cache(document: unknown): void {
    this.#lastDesired.write(document).catch((error: unknown) => {
      this.#log.warn(`cannot keep the desired document in ${this.#lastDesired.path}: ${errorText(error)}`);
    });
  }

  #queueReport(status: StatusDocument): void {
    this.#reporting = this.#reporting.then(() => this.#report(status));
  }

  async #report(status: StatusDocument): Promise<void> {
    const twin = this.#twin;
    if (!twin || this.#hubReported === null) return;
    const patch = reportedPatch(this.#hubReported, capReported(status));
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
    if (!client || (event.type !== 'pipeline-state' && event.type !== 'analyzer-down')) return;
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

  /**
   * The SDK leaves a method nobody registered unanswered (the caller times out): answer 404 instead. There is no
   * public API for this: the SDK subscribes to `$iothub/methods/POST/#` once and dispatches each request as a
   * `method_<name>` event on its (private) MQTT transport, dropping it when no handler listens. So the transport's
   * `emit` is wrapped. test/unit/iotHubSdk.test.ts fails when the SDK no longer looks like this (and
   * test/integration/iotHub.test.ts "answers an unknown method with 404" when the behaviour breaks).
   */
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
