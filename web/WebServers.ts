import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { BehaviorSubject, Subscription } from 'rxjs';
import type { StatusDocument } from '../actors/ControlPlane.js';
import type { Metrics } from '../actors/Metrics.js';
import type { RecordingsPort } from '../actors/ModuleRecordings.js';
import type { ServerCertificate } from '../certs/certificate.js';
import { displayHost } from '../config/defaults.js';
import type { HttpSettings, MetricsSettings, ResolvedConfig } from '../config/desired.js';
import { boundedFastify, createWebApp } from './app.js';
import { countRequests, metricsRoute } from './metricsRoute.js';
import { recordingsRoute } from './recordingsRoute.js';
import { addTls, type TlsSide } from './plainAndTls.js';
import { statusRoutes } from './statusRoutes.js';
import type { WebAuth } from './WebAuth.js';
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
  /** Who may do what on both servers. */
  readonly auth: WebAuth;
  /** The server certificate (null: plain HTTP only); with one, both ports speak HTTPS beside HTTP. */
  readonly certificate$: BehaviorSubject<ServerCertificate | null>;
  readonly logger: Logger;
  /** Recorded segments, for /api/recordings (absent: no such route). */
  readonly recordings?: RecordingsPort;
}

interface Running<T> {
  readonly settings: T;
  readonly app: FastifyInstance;
  /** The HTTPS side of the port, while a certificate is configured. */
  readonly tls: TlsSide | null;
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
  #certificates: Subscription | null = null;

  /** WebRTC signalling (/ws) and WHEP, on the web server. */
  readonly #webrtc: WebRtcGateway;
  /** Recorded segments (/api/recordings). */
  readonly #recordings: RecordingsPort | undefined;
  readonly #auth: WebAuth;
  readonly #certificate$: BehaviorSubject<ServerCertificate | null>;

  constructor(options: WebServersOptions) {
    this.#applied$ = options.applied$;
    this.#status$ = options.status$;
    this.#metrics = options.metrics;
    this.#webrtc = options.webrtc;
    this.#recordings = options.recordings;
    this.#auth = options.auth;
    this.#certificate$ = options.certificate$;
    this.#log = options.logger.child({ component: 'http' });
  }

  start(): void {
    const reconcile = () => {
      const config = this.#applied$.value;
      if (!config) return;
      // A failed reconcile is logged and the next config tries again: the queue itself must never reject.
      this.#queue = this.#queue
        .then(() => this.#reconcile(config))
        .catch((error: unknown) => this.#log.error({ event: 'http-reconcile-failed' }, `web servers not updated: ${(error as Error).message ?? String(error)}`));
    };
    this.#subscription = this.#applied$.subscribe(reconcile);
    // A renewed certificate is swapped in without a restart; TLS turned on or off restarts the servers.
    this.#certificates = this.#certificate$.subscribe((cert) => {
      const servers = [this.#web, this.#metricsServer].filter((s) => s !== null);
      if (cert && servers.every((s) => s.tls !== null)) for (const server of servers) server.tls!.setCertificate(cert);
      else reconcile();
    });
  }

  async close(): Promise<void> {
    this.#subscription?.unsubscribe();
    this.#certificates?.unsubscribe();
    this.#webrtc.closeAll('module stopping');
    await this.#queue;
    await Promise.all([this.#web?.app.close(), this.#metricsServer?.app.close()]);
    this.#web = null;
    this.#metricsServer = null;
  }

  async #reconcile(config: ResolvedConfig): Promise<void> {
    const http = config.http;
    const cert = this.#certificate$.value;
    const tlsChanged = (server: Running<unknown> | null) => server !== null && (server.tls !== null) !== (cert !== null);
    if (!same(this.#web?.settings, http) || tlsChanged(this.#web)) {
      if (this.#web) this.#webrtc.closeAll('web server restarting');
      await this.#web?.app.close();
      this.#web = null;
      if (http.enabled) {
        const app = createWebApp({
          mediaRoot: http.mediaRoot,
          logger: false,
          extraRoutes: (scope) => {
            this.#auth.guard(scope, 'web');
            this.#auth.sessionRoute(scope);
            countRequests(scope, this.#metrics);
            metricsRoute(scope, this.#metrics);
            statusRoutes(scope, this.#status$);
            if (this.#recordings) recordingsRoute(scope, this.#recordings);
            this.#webrtc.routes(scope);
          },
        });
        this.#web = await this.#listen(app, http, 'http');
        if (this.#web) this.#webrtc.attach(this.#web.app.server);
        if (this.#web?.tls) this.#webrtc.attach(this.#web.tls.server);
      } else {
        this.#log.info({ event: 'http-off' }, 'web server off (http_server: false)');
      }
    }
    const metrics = config.metrics;
    if (!same(this.#metricsServer?.settings, metrics) || tlsChanged(this.#metricsServer)) {
      await this.#metricsServer?.app.close();
      this.#metricsServer = null;
      if (metrics.port !== null) {
        const app = boundedFastify(false);
        this.#auth.guard(app, 'metrics');
        metricsRoute(app, this.#metrics);
        this.#metricsServer = await this.#listen(app, { ...metrics, port: metrics.port }, 'metrics');
      }
    }
  }

  async #listen<T extends { port: number; address: string }>(app: FastifyInstance, settings: T, kind: 'http' | 'metrics'): Promise<Running<T> | null> {
    const cert = this.#certificate$.value;
    const tls = cert ? addTls(app, cert) : null;
    // TLS connections are the HTTPS server's: they end with the app.
    if (tls) app.addHook('preClose', async () => tls.close());
    try {
      await app.listen({ host: settings.address, port: settings.port });
    } catch (error) {
      this.#log.error({ event: `${kind}-failed` }, `cannot listen on ${settings.address}:${settings.port}: ${(error as Error).message}`);
      await app.close().catch(() => undefined);
      return null;
    }
    const { port } = app.server.address() as AddressInfo;
    const host = displayHost(settings.address);
    const scheme = tls ? 'https' : 'http';
    const where =
      kind === 'http'
        ? `${scheme}://${host}:${port}/ (status page); players: /wwwroot/webrtc.html, /wwwroot/hls.html; /metrics, /api/status, /media/`
        : `${scheme}://${host}:${port}/metrics`;
    const both = tls ? ' (plain http:// on the same port too)' : '';
    this.#log.info({ event: `${kind}-listening`, port, tls: tls !== null }, `${kind === 'http' ? 'web server' : 'metrics'}: ${where}${both}`);
    return { settings, app, tls };
  }
}

function same(a: unknown, b: unknown): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}
