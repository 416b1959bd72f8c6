import type { Subscription } from 'rxjs';
import { mountsLosingAccess } from '../auth/rtspSpec.js';
import type { EngineEvent, RtspAuthSpec, RtspConfig, RtspTlsSpec } from '../ipc/protocol.js';
import { errorMessage } from '../config/errors.js';
import { allElements, asProxySrc, gi, GLib, Gst, type GstElement } from './gst.js';
import { applyRtspAuth } from './rtspAuth.js';
import type { SampleHub } from './SampleHub.js';

const GstRtspServer = gi.require('GstRtspServer', '1.0');
type Server = InstanceType<typeof GstRtspServer.RTSPServer>;
/** Up to this many sessions, viewers are counted every time; above, at most every RECOUNT_MS unless their number changes. */
const FEW_SESSIONS = 16;
const RECOUNT_MS = 5_000;
/**
 * RTP bytes are read from the media's RTP sessions at most this often: node-gtk keeps a copy of a boxed property
 * it returns (an rtpsession's `stats` structure, ~300 B and more per viewer), measured as the engine's RSS growing
 * 0.12 MB a minute with 10 RTSP viewers when read every second (bench/soak.ts with SOAK_WEBRTC_VIEWERS=0).
 */
export const BYTES_READ_MS = 15_000;
type Factory = InstanceType<typeof GstRtspServer.RTSPMediaFactory>;
type Media = InstanceType<typeof GstRtspServer.RTSPMedia>;
type SessionPool = InstanceType<typeof GstRtspServer.RTSPSessionPool>;
type Session = InstanceType<typeof GstRtspServer.RTSPSession>;
type SessionMedia = InstanceType<typeof GstRtspServer.RTSPSessionMedia>;

/**
 * `filter()` without a callback: GStreamer then returns every item (its documentation allows NULL; the generated
 * types do not say so).
 */
interface ListAll<T> {
  filter(func: null): T[] | null;
}
const sessionsOf = (pool: SessionPool): Session[] => (pool as SessionPool & ListAll<Session>).filter(null) ?? [];
const sessionMediasOf = (session: Session): SessionMedia[] => (session as Session & ListAll<SessionMedia>).filter(null) ?? [];

/** `videosrc` -> `video`: the seed's naming of appsrc/proxysrc fed from appsink/proxysink. */
export function streamNameOf(source: string): string | null {
  return source.endsWith('src') && source.length > 3 ? source.slice(0, -3) : null;
}

interface Mount {
  readonly launch: string;
  readonly factory: Factory;
  /** Feeds of the media built from this mount (one while shared), ended when the media is unprepared. */
  readonly feeds: Set<Subscription>;
  /**
   * The prepared media (shared: one per server, since the factory's key holds the port) with the RTP bytes each
   * produced when last read, to read RTP session counters from.
   */
  readonly media: Map<Media, number>;
  /** RTP bytes sent to viewers so far. */
  bytesSent: number;
}

/** Viewers per mount and per media, with the number of sessions and the time they were counted. */
interface ViewerCount {
  readonly sessions: number;
  readonly at: number;
  readonly viewers: Record<string, number>;
  readonly byMedia: ReadonlyMap<Media, number>;
}

/** Octets sent by the session's own (internal) RTP sources, from the `stats` structure of an RTPSession. */
export function octetsSent(statsText: string): number {
  let total = 0;
  for (const source of statsText.split('application/x-rtp-source-stats').slice(1)) {
    if (!/internal\\?=\\?\(boolean\\?\)true/.test(source)) continue;
    const octets = /octets-sent\\?=\\?\(guint64\\?\)(\d+)/.exec(source);
    if (octets) total += Number(octets[1]);
  }
  return total;
}

/**
 * The RTSP server in the engine: one shared media per mount (all viewers of a mount watch one pipeline), fed
 * from the sample hub when its launch line starts from `appsrc name=videosrc` (or `proxysrc name=videosrc`). A
 * new main pipeline changes the producer behind the hub, not the media, so viewers stay connected. Viewer
 * counts are the sessions that have set the mount up (its RTSP state is not read: see #countViewers).
 *
 * With a certificate, a second RTSPServer serves RTSPS on its own port (TLS takes over a whole port) from the
 * same mount points. Users and rights (media/rtspAuth.ts) apply to both, live: a change replaces the RTSPAuth
 * objects and permissions, and closes the viewers of the mounts where someone lost access (GstRtspServer does
 * not tell which connection is which user, so it is per mount).
 */
export class RtspServer {
  readonly #hub: SampleHub;
  readonly #emit: (event: EngineEvent) => void;
  /** Finds a running pipeline's element by name (proxysink for proxysrc). */
  readonly #findElement: (name: string) => GstElement | null;
  #server: Server | null = null;
  #sourceId = 0;
  /** The RTSPS server (same mount points), while a certificate is configured. */
  #tlsServer: Server | null = null;
  #tlsSourceId = 0;
  /** The RTSPS server's bound port. */
  #tlsPort = 0;
  /** The RTSPS settings in force (port, address, certificate). */
  #tls: RtspTlsSpec | null = null;
  /** The users and rights in force (null: open). */
  #auth: RtspAuthSpec | null = null;
  /** Whether RTSPAuth objects are set on the servers (open with a plain server only: none, as before auth). */
  #authSet = false;
  /** The bound port (differs from the asked one when that was 0). */
  #port = 0;
  /** Port and address as asked, to tell whether a new config needs a new server. */
  #requestedPort = -1;
  #address = '';
  readonly #mounts = new Map<string, Mount>();
  /** The last viewer count, with the number of sessions and the time it was taken. */
  #lastCount: ViewerCount = { sessions: -1, at: 0, viewers: {}, byMedia: new Map() };
  /** When RTP bytes were last read (see BYTES_READ_MS). */
  #bytesReadAt = Number.NEGATIVE_INFINITY;
  /** Viewers per mount at that read (as text), and per media. */
  #viewersAtRead = '';
  readonly #watchingAtRead = new WeakMap<object, number>();
  /** proxysrc elements of live media, re-pointed when a new producer pipeline starts. */
  readonly #proxySources = new Set<GstElement>();

  constructor(hub: SampleHub, emit: (event: EngineEvent) => void, findElement: (name: string) => GstElement | null) {
    this.#hub = hub;
    this.#emit = emit;
    this.#findElement = findElement;
  }

  /**
   * Applies a config: recreates a server when its port or address change, remounts what changed, and puts
   * users, rights and the RTSPS certificate in force (a new certificate reaches new TLS connections; the
   * open ones keep theirs).
   */
  configure(config: RtspConfig): void {
    if (config.mounts.length === 0) {
      this.close();
      this.#emit({ type: 'rtsp', port: null, tlsPort: null, mounts: [], error: null });
      return;
    }
    if (!this.#server || this.#requestedPort !== config.port || this.#address !== config.address) {
      this.close();
      const error = this.#listen(config.port, config.address);
      if (error) {
        this.#emit({ type: 'rtsp', port: null, tlsPort: null, mounts: [], error });
        return;
      }
    }
    let tlsError: string | null = null;
    const tls = config.tls;
    if (this.#tlsServer && (tls === null || tls.port !== this.#tls?.port || tls.address !== this.#tls.address)) this.#closeTls();
    const tlsStarted = tls !== null && this.#tlsServer === null;
    if (tlsStarted) tlsError = this.#listenTls(tls);
    const mountPoints = this.#server!.getMountPoints()!;
    const wanted = new Map(config.mounts.map((m) => [m.path, m.launch]));
    let added = false;
    for (const [path, mount] of this.#mounts) {
      if (wanted.get(path) === mount.launch) continue;
      mountPoints.removeFactory(path);
      this.#disconnectViewers(path);
      for (const feed of mount.feeds) feed.unsubscribe();
      this.#mounts.delete(path);
    }
    const kept = [...this.#mounts.keys()];
    for (const [path, launch] of wanted) {
      if (this.#mounts.has(path)) continue;
      const mount = this.#mount(path, launch);
      mountPoints.addFactory(path, mount.factory);
      this.#mounts.set(path, mount);
      added = true;
    }
    tlsError = this.#applyAuth(config.auth, this.#tlsServer ? tls : null, added || tlsStarted, kept) ?? tlsError;
    // The cached viewer count is per mount: count again for the new set.
    this.#lastCount = { sessions: -1, at: 0, viewers: {}, byMedia: new Map() };
    const tlsPort = this.#tlsServer ? this.#tlsPort : null;
    this.#emit({ type: 'rtsp', port: this.#port, tlsPort, mounts: [...this.#mounts.keys()], error: tlsError });
  }

  /**
   * Sets users, rights and the RTSPS certificate on both servers and every mount when any of them changed (or
   * mounts were added, which need permissions); closes the viewers of kept mounts where someone lost access.
   * Returns an error when the RTSPS certificate cannot be used (the RTSPS server is then closed).
   */
  #applyAuth(auth: RtspAuthSpec | null, tls: RtspTlsSpec | null, fresh: boolean, kept: readonly string[]): string | null {
    const before = this.#auth;
    const authChanged = JSON.stringify(before) !== JSON.stringify(auth);
    const certChanged = tls !== null && (this.#tls === null || tls.certificatePem !== this.#tls.certificatePem || tls.privateKeyPem !== this.#tls.privateKeyPem);
    const needed = auth !== null || tls !== null;
    this.#auth = auth;
    this.#tls = tls;
    if (!needed && !this.#authSet) return null; // open, plain only: no RTSPAuth at all, as before auth existed
    if (!authChanged && !certChanged && !fresh && this.#authSet === needed) return null;
    let error: string | null = null;
    const factories = new Map([...this.#mounts].map(([path, mount]) => [path, mount.factory]));
    const apply = (withTls: RtspTlsSpec | null) =>
      applyRtspAuth({ plain: this.#server, tls: withTls && this.#tlsServer ? { server: this.#tlsServer, certificate: withTls } : null, factories }, auth);
    try {
      apply(tls);
    } catch (failure) {
      error = `RTSPS off: ${errorMessage(failure)}`;
      this.#closeTls();
      this.#tls = null;
      apply(null);
    }
    this.#authSet = auth !== null || this.#tlsServer !== null;
    if (authChanged) for (const path of mountsLosingAccess(before, auth, kept)) this.#disconnectViewers(path);
    return error;
  }

  /**
   * Per mount: viewers (sessions that set the mount up, read from the server: signals with an RTSPContext hang
   * node-gtk) and RTP bytes sent to them. A shared media sends each packet once per viewer, so the bytes its
   * RTP sessions produced since the last read count once per viewer watching. Call it about once a second; bytes are
   * read every BYTES_READ_MS and when a mount's viewer count changes.
   */
  stats(): Record<string, { viewers: number; bytesSent: number }> {
    const { viewers, byMedia } = this.#countViewers();
    const result: Record<string, { viewers: number; bytesSent: number }> = {};
    const now = performance.now();
    // Read on a timer and whenever a mount's viewers changed, so a short visit is still counted.
    const counts = JSON.stringify(viewers);
    const readBytes = now - this.#bytesReadAt >= BYTES_READ_MS || counts !== this.#viewersAtRead;
    if (readBytes) {
      this.#bytesReadAt = now;
      this.#viewersAtRead = counts;
    }
    for (const [path, mount] of this.#mounts) {
      if (!readBytes) {
        result[path] = { viewers: viewers[path]!, bytesSent: mount.bytesSent };
        continue;
      }
      // Each media's viewers; a mount whose sessions could not be told apart by media (one media, as without
      // RTSPS) gives all of them to its only media.
      const known = [...mount.media.keys()].reduce((sum, media) => sum + (byMedia.get(media) ?? 0), 0);
      for (const [media, last] of mount.media) {
        let produced = 0;
        for (let i = 0; i < media.nStreams(); i++) {
          const session = media.getStream(i)?.getRtpsession() as { stats?: { toString(): string } } | null;
          if (session?.stats) produced += octetsSent(session.stats.toString());
        }
        const delta = produced >= last ? produced - last : produced;
        mount.media.set(media, produced);
        const watching = known === viewers[path] ? (byMedia.get(media) ?? 0) : mount.media.size === 1 ? viewers[path]! : 0;
        // The bytes since the last read went to the viewers of then, or of now (one joined or left in between).
        mount.bytesSent += delta * Math.max(watching, this.#watchingAtRead.get(media) ?? 0);
        this.#watchingAtRead.set(media, watching);
      }
      result[path] = { viewers: viewers[path]!, bytesSent: mount.bytesSent };
    }
    return result;
  }

  /**
   * Viewers per mount. Walking the sessions costs a few node-gtk calls per viewer, which added up to several
   * percent of a core at 100 viewers when done every second: with many sessions and no change in their
   * number, the last count is reused for up to {@link RECOUNT_MS}.
   */
  #countViewers(): ViewerCount {
    const pools = this.#servers().map((server) => server.getSessionPool()).filter((pool) => pool !== null);
    const sessions = pools.reduce((sum, pool) => sum + pool.getNSessions(), 0);
    const now = Date.now();
    const fresh = sessions <= FEW_SESSIONS || sessions !== this.#lastCount.sessions || now - this.#lastCount.at >= RECOUNT_MS;
    if (!fresh) return this.#lastCount;
    const viewers: Record<string, number> = Object.fromEntries([...this.#mounts.keys()].map((p) => [p, 0]));
    const byMedia = new Map<Media, number>();
    const paths = [...this.#mounts.keys()];
    // A session's mount by its media: one lookup instead of a `matches()` call per mount and viewer; `matches()`
    // stays for a media not recorded here (between its preparation and our `media-configure`).
    const pathOf = new Map<Media, string>();
    for (const [path, mount] of this.#mounts) for (const media of mount.media.keys()) pathOf.set(media, path);
    // Lists, not filter callbacks: unpatched node-gtk ran each callback call in a new V8 context, 0.5 ms (16
    // viewers: 16 ms a second; 500 viewers: a quarter of a second at each recount). Patched (scripts/patch-node-gtk.mjs)
    // a call costs 4 us, but without a callback GStreamer returns its list and no JS runs under its locks.
    for (const pool of pools) {
      for (const session of sessionsOf(pool)) {
        for (const sessionMedia of sessionMediasOf(session)) {
          // Every session media set up counts, whatever its RTSP state: getRtspState() takes the session media's
          // lock, which a client thread holds while it tears the media down and emits `unprepared` towards
          // the JS thread, where node-gtk makes it wait for us: the engine hung (gdb: the JS thread in
          // gst_rtsp_session_media_get_rtsp_state, a client thread in Closure::Marshal under teardown).
          const media = sessionMedia.getMedia();
          const path = paths.length === 1 ? paths[0] : ((media && pathOf.get(media)) ?? paths.find((p) => sessionMedia.matches(p)[0]));
          if (path) viewers[path]!++;
          if (media) byMedia.set(media, (byMedia.get(media) ?? 0) + 1);
        }
      }
    }
    this.#lastCount = { sessions, at: now, viewers, byMedia };
    return this.#lastCount;
  }

  /** The servers listening now: the plain one, and the RTSPS one when there is one. */
  #servers(): Server[] {
    return [this.#server, this.#tlsServer].filter((server) => server !== null);
  }

  /** A producer pipeline started: point live proxysrcs at its proxysinks. */
  producerStarted(): void {
    for (const source of this.#proxySources) this.#linkProxy(source);
  }

  close(): void {
    this.#closeTls();
    this.#auth = null;
    this.#tls = null;
    this.#authSet = false;
    if (!this.#server) return;
    for (const path of this.#mounts.keys()) this.#server.getMountPoints()?.removeFactory(path);
    this.#server.clientFilter(() => GstRtspServer.RTSPFilterResult.REMOVE);
    for (const mount of this.#mounts.values()) for (const feed of mount.feeds) feed.unsubscribe();
    this.#mounts.clear();
    if (this.#sourceId) GLib.sourceRemove(this.#sourceId);
    this.#server = null;
    this.#sourceId = 0;
  }

  /** Closes the RTSPS server and its connections; the plain one and the mounts stay. */
  #closeTls(): void {
    if (!this.#tlsServer) return;
    this.#tlsServer.clientFilter(() => GstRtspServer.RTSPFilterResult.REMOVE);
    if (this.#tlsSourceId) GLib.sourceRemove(this.#tlsSourceId);
    this.#tlsServer = null;
    this.#tlsSourceId = 0;
    this.#tlsPort = 0;
  }

  /** Starts the RTSPS server on the plain server's mount points (the caller sets its auth, which holds the certificate). */
  #listenTls(tls: RtspTlsSpec): string | null {
    const server = new GstRtspServer.RTSPServer();
    server.address = tls.address;
    server.service = String(tls.port);
    server.setMountPoints(this.#server!.getMountPoints());
    const id = server.attach(null);
    if (!id) return `RTSPS cannot listen on ${tls.address}:${tls.port} (in use?)`;
    this.#tlsServer = server;
    this.#tlsSourceId = id;
    this.#tlsPort = server.getBoundPort();
    return null;
  }

  #listen(port: number, address: string): string | null {
    const server = new GstRtspServer.RTSPServer();
    server.address = address;
    server.service = String(port);
    const id = server.attach(null);
    if (!id) return `cannot listen on ${address}:${port} (in use?)`;
    this.#server = server;
    this.#sourceId = id;
    this.#port = server.getBoundPort();
    this.#requestedPort = port;
    this.#address = address;
    return null;
  }

  /** Closes the connections of every client with a session on `path`. */
  #disconnectViewers(path: string): void {
    const { KEEP, REMOVE } = GstRtspServer.RTSPFilterResult;
    for (const server of this.#servers()) this.#disconnectOn(server, path, KEEP, REMOVE);
  }

  #disconnectOn(server: Server, path: string, KEEP: number, REMOVE: number): void {
    server.clientFilter((_server, client) =>
      this.#guard(`closing the viewers of ${path}`, KEEP, () => {
        let watching = false;
        client.sessionFilter((_client, session) =>
          this.#guard(`closing the viewers of ${path}`, KEEP, () => {
            session.filter((_session, media) =>
              this.#guard(`closing the viewers of ${path}`, KEEP, () => {
                if (media.matches(path)[0]) watching = true;
                return KEEP;
              }),
            );
            return KEEP;
          }),
        );
        return watching ? REMOVE : KEEP;
      }),
    );
  }

  #mount(path: string, launch: string): Mount {
    const factory = new GstRtspServer.RTSPMediaFactory();
    factory.setLaunch(launch.trim().startsWith('(') ? launch : `( ${launch} )`);
    factory.setShared(true);
    const mount: Mount = { launch, factory, feeds: new Set(), media: new Map(), bytesSent: 0 };
    factory.on('media-configure', (media: Media) => this.#guard(`RTSP ${path}: media-configure`, undefined, () => this.#configureMedia(mount, media)));
    return mount;
  }

  #configureMedia(mount: Mount, media: Media): void {
    const element = media.getElement();
    const feeds: Subscription[] = [];
    const proxies: GstElement[] = [];
    for (const child of allElements(element)) {
      const stream = streamNameOf(child.name);
      const factoryName = child.getFactory()?.getName();
      if (!stream) continue;
      if (factoryName === 'appsrc') feeds.push(this.#hub.attachConsumer(child, stream));
      else if (factoryName === 'proxysrc') {
        proxies.push(child);
        this.#proxySources.add(child);
        this.#linkProxy(child, true);
      }
    }
    for (const feed of feeds) mount.feeds.add(feed);
    mount.media.set(media, 0);
    media.on('unprepared', () =>
      this.#guard('RTSP media unprepared', undefined, () => {
        mount.media.delete(media);
        for (const feed of feeds) {
          feed.unsubscribe();
          mount.feeds.delete(feed);
        }
        for (const proxy of proxies) this.#proxySources.delete(proxy);
      }),
    );
  }

  /**
   * Points a proxysrc at the running proxysink of its stream. `fresh`: a proxysrc of media being configured (not
   * playing yet), which must also get the stream's sticky events (stream-start, caps, segment): proxysink copies them
   * to its proxysrc only after a sticky event failed to reach one, and a producer that started before the first
   * viewer sent its events to no proxysrc at all, so the second viewer's media got buffers with no caps, failed to
   * preroll and every later viewer was refused (503). A custom sticky event sent now fails against the new proxysrc
   * (its pads are still flushing), which makes proxysink copy all of them in front of its next buffer.
   */
  #linkProxy(source: GstElement, fresh = false): void {
    const stream = streamNameOf(source.name);
    const sink = stream ? this.#findElement(stream) : null;
    if (!sink || sink.getFactory()?.getName() !== 'proxysink') return;
    asProxySrc(source).proxysink = sink;
    if (fresh) sink.getStaticPad('sink')?.sendEvent(Gst.Event.newCustom(Gst.EventType.CUSTOM_DOWNSTREAM_STICKY, Gst.Structure.newEmpty('gst-iotedge-relink')));
  }

  /**
   * Runs the body of a callback from the RTSP server: an exception thrown back into GStreamer ends the process
   * (node-gtk), so it is logged and `fallback` returned (a filter keeps what it was asked about).
   */
  #guard<T>(what: string, fallback: T, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      try {
        this.#emit({ type: 'log', level: 'error', msg: `${what} failed: ${errorMessage(error)}` });
      } catch {
        // Nothing left to report to.
      }
      return fallback;
    }
  }
}

