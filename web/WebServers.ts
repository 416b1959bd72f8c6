import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { BehaviorSubject, Subscription } from 'rxjs';
import type { StatusDocument } from '../actors/ControlPlane.js';
import type { Metrics } from '../actors/Metrics.js';
import type { RecordingsPort } from '../actors/ModuleRecordings.js';
import { displayHost } from '../config/defaults.js';
import type { HttpSettings, MetricsSettings, ResolvedConfig } from '../config/desired.js';
import { boundedFastify, createWebApp } from './app.js';
import { countRequests, metricsRoute } from './metricsRoute.js';
import { recordingsRoute } from './recordingsRoute.js';
import { statusRoutes } from './statusRoutes.js';
import type { WebRtcGateway } from './WebRtcGateway.js';

/** What the web servers follow and serve. */
export interface WebServersOptions {
  /** The config that runs now: each server follows its own settings in it. */
  readonly applied$: BehaviorSubject<ResolvedConfig | null>;
  /** The status document, for /api/status. */
  readonly status$: BehaviorSubject<StatusDocument>;
  readonly metrics: Metrics;
  /** WebRTC signalling (/ws) and WHEP, on the web server. */
  readonly webrtc: WebRtcGateway;
  readonly logger: Logger;
  /** Recorded segments, for /api/recordings (absent: no such route). */
  readonly recordings?: RecordingsPort;
}

interface Running<T> {
  readonly settings: T;
  readonly app: FastifyInstance;
}

/**
 * Keeps the HTTP servers in line with the applied config: the web server on :8000 (pages, /media, /metrics,
 * /api/status; off with `http_server: false`) and the metrics-only server on :9600. A server is restarted only
 * when its own settings change; a port that cannot be bound is logged and the rest keeps running.
 */
export class WebServers {
  readonly #applied$: BehaviorSubject<ResolvedConfig | null>;
  readonly #status$: BehaviorSubject<StatusDocument>;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  #web: Running<HttpSettings> | null = null;
  #metricsServer: Running<MetricsSettings> | null = null;
  /** Reconciliations run one after the other. */
  #queue: Promise<void> = Promise.resolve();
  #subscription: Subscription | null = null;

  /** WebRTC signalling (/ws) and WHEP, on the web server. */
  readonly #webrtc: WebRtcGateway;
  /** Recorded segments (/api/recordings). */
  readonly #recordings: RecordingsPort | undefined;

  constructor(options: WebServersOptions) {
    this.#applied$ = options.applied$;
    this.#status$ = options.status$;
    this.#metrics = options.metrics;
    this.#webrtc = options.webrtc;
    this.#recordings = options.recordings;
    this.#log = options.logger.child({ component: 'http' });
  }

  start(): void {
    this.#subscription = this.#applied$.subscribe((config) => {
      if (!config) return;
      // A failed reconcile is logged and the next config tries again: the queue itself must never reject.
      this.#queue = this.#queue
        .then(() => this.#reconcile(config))
        .catch((error: unknown) => this.#log.error({ event: 'http-reconcile-failed' }, `web servers not updated: ${(error as Error).message ?? String(error)}`));
    });
  }

  async close(): Promise<void> {
    this.#subscription?.unsubscribe();
    this.#webrtc.closeAll('module stopping');
    await this.#queue;
    await Promise.all([this.#web?.app.close(), this.#metricsServer?.app.close()]);
    this.#web = null;
    this.#metricsServer = null;
  }

  async #reconcile(config: ResolvedConfig): Promise<void> {
    const http = config.http;
    if (!same(this.#web?.settings, http)) {
      if (this.#web) this.#webrtc.closeAll('web server restarting');
      await this.#web?.app.close();
      this.#web = null;
      if (http.enabled) {
        const app = createWebApp({
          mediaRoot: http.mediaRoot,
          logger: false,
          extraRoutes: (scope) => {
            countRequests(scope, this.#metrics);
            metricsRoute(scope, this.#metrics);
            statusRoutes(scope, this.#status$);
            if (this.#recordings) recordingsRoute(scope, this.#recordings);
            this.#webrtc.routes(scope);
          },
        });
        this.#web = await this.#listen(app, http, 'http');
        if (this.#web) this.#webrtc.attach(this.#web.app.server);
      } else {
        this.#log.info({ event: 'http-off' }, 'web server off (http_server: false)');
      }
    }
    const metrics = config.metrics;
    if (!same(this.#metricsServer?.settings, metrics)) {
      await this.#metricsServer?.app.close();
      this.#metricsServer = null;
      if (metrics.port !== null) {
        const app = boundedFastify(false);
        metricsRoute(app, this.#metrics);
        this.#metricsServer = await this.#listen(app, { ...metrics, port: metrics.port }, 'metrics');
      }
    }
  }

  async #listen<T extends { port: number; address: string }>(app: FastifyInstance, settings: T, kind: 'http' | 'metrics'): Promise<Running<T> | null> {
    try {
      await app.listen({ host: settings.address, port: settings.port });
    } catch (error) {
      this.#log.error({ event: `${kind}-failed` }, `cannot listen on ${settings.address}:${settings.port}: ${(error as Error).message}`);
      await app.close().catch(() => undefined);
      return null;
    }
    const { port } = app.server.address() as AddressInfo;
    const host = displayHost(settings.address);
    const where =
      kind === 'http'
        ? `http://${host}:${port}/ (status page); players: /wwwroot/webrtc.html, /wwwroot/hls.html; /metrics, /api/status, /media/`
        : `http://${host}:${port}/metrics`;
    this.#log.info({ event: `${kind}-listening`, port }, `${kind === 'http' ? 'web server' : 'metrics'}: ${where}`);
    return { settings, app };
  }
}

function same(a: unknown, b: unknown): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}
