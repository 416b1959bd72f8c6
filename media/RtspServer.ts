import type { Subscription } from 'rxjs';
import type { EngineEvent, RtspConfig } from '../ipc/protocol.js';
import { errorMessage } from '../config/errors.js';
import { allElements, asProxySrc, gi, GLib, type GstElement } from './gst.js';
import type { SampleHub } from './SampleHub.js';

const GstRtspServer = gi.require('GstRtspServer', '1.0');
type Server = InstanceType<typeof GstRtspServer.RTSPServer>;
/** GstRtsp.RTSPState.PLAYING. */
const RTSP_STATE_PLAYING = 4;
/** Up to this many sessions, viewers are counted every time; above, at most every RECOUNT_MS unless their number changes. */
const FEW_SESSIONS = 16;
const RECOUNT_MS = 5_000;
type Factory = InstanceType<typeof GstRtspServer.RTSPMediaFactory>;
type Media = InstanceType<typeof GstRtspServer.RTSPMedia>;

/** `videosrc` -> `video`: the seed's naming of appsrc/proxysrc fed from appsink/proxysink. */
export function streamNameOf(source: string): string | null {
  return source.endsWith('src') && source.length > 3 ? source.slice(0, -3) : null;
}

interface Mount {
  readonly launch: string;
  readonly factory: Factory;
  /** Feeds of the media built from this mount (one while shared), ended when the media is unprepared. */
  readonly feeds: Set<Subscription>;
  /** The prepared media (shared: one), to read RTP session counters from. */
  readonly media: Set<Media>;
  /** RTP bytes the media produced when last read, and bytes sent to viewers so far. */
  produced: number;
  bytesSent: number;
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
 * counts are the sessions in PLAYING state.
 */
export class RtspServer {
  readonly #hub: SampleHub;
  readonly #emit: (event: EngineEvent) => void;
  /** Finds a running pipeline's element by name (proxysink for proxysrc). */
  readonly #findElement: (name: string) => GstElement | null;
  #server: Server | null = null;
  #sourceId = 0;
  /** The bound port (differs from the asked one when that was 0). */
  #port = 0;
  /** Port and address as asked, to tell whether a new config needs a new server. */
  #requestedPort = -1;
  #address = '';
  readonly #mounts = new Map<string, Mount>();
  /** The last viewer count, with the number of sessions and the time it was taken. */
  #lastCount: { sessions: number; at: number; viewers: Record<string, number> } = { sessions: -1, at: 0, viewers: {} };
  /** proxysrc elements of live media, re-pointed when a new producer pipeline starts. */
  readonly #proxySources = new Set<GstElement>();

  constructor(hub: SampleHub, emit: (event: EngineEvent) => void, findElement: (name: string) => GstElement | null) {
    this.#hub = hub;
    this.#emit = emit;
    this.#findElement = findElement;
  }

  /** Applies a config: recreates the server when port or address change, remounts what changed. */
  configure(config: RtspConfig): void {
    if (config.mounts.length === 0) {
      this.close();
      this.#emit({ type: 'rtsp', port: null, mounts: [], error: null });
      return;
    }
    if (!this.#server || this.#requestedPort !== config.port || this.#address !== config.address) {
      this.close();
      const error = this.#listen(config.port, config.address);
      if (error) {
        this.#emit({ type: 'rtsp', port: null, mounts: [], error });
        return;
      }
    }
    const mountPoints = this.#server!.getMountPoints()!;
    const wanted = new Map(config.mounts.map((m) => [m.path, m.launch]));
    for (const [path, mount] of this.#mounts) {
      if (wanted.get(path) === mount.launch) continue;
      mountPoints.removeFactory(path);
      this.#disconnectViewers(path);
      for (const feed of mount.feeds) feed.unsubscribe();
      this.#mounts.delete(path);
    }
    for (const [path, launch] of wanted) {
      if (this.#mounts.has(path)) continue;
      const mount = this.#mount(path, launch);
      mountPoints.addFactory(path, mount.factory);
      this.#mounts.set(path, mount);
    }
    // The cached viewer count is per mount: count again for the new set.
    this.#lastCount = { sessions: -1, at: 0, viewers: {} };
    this.#emit({ type: 'rtsp', port: this.#port, mounts: [...this.#mounts.keys()], error: null });
  }

  /**
   * Per mount: viewers (sessions in PLAYING state, read from the server: signals with an RTSPContext hang
   * node-gtk) and RTP bytes sent to them. A shared media sends each packet once per viewer, so the bytes its
   * RTP sessions produced since the last call count once per current viewer. Call it about once a second.
   */
  stats(): Record<string, { viewers: number; bytesSent: number }> {
    const viewers = this.#countViewers();
    const result: Record<string, { viewers: number; bytesSent: number }> = {};
    for (const [path, mount] of this.#mounts) {
      let produced = 0;
      for (const media of mount.media) {
        for (let i = 0; i < media.nStreams(); i++) {
          const session = media.getStream(i)?.getRtpsession() as { stats?: { toString(): string } } | null;
          if (session?.stats) produced += octetsSent(session.stats.toString());
        }
      }
      // A new media starts counting from zero.
      const delta = produced >= mount.produced ? produced - mount.produced : produced;
      mount.produced = produced;
      mount.bytesSent += delta * viewers[path]!;
      result[path] = { viewers: viewers[path]!, bytesSent: mount.bytesSent };
    }
    return result;
  }

  /**
   * Viewers per mount. Walking the sessions costs a few node-gtk calls per viewer, which added up to several
   * percent of a core at 100 viewers when done every second: with many sessions and no change in their
   * number, the last count is reused for up to {@link RECOUNT_MS}.
   */
  #countViewers(): Record<string, number> {
    const pool = this.#server?.getSessionPool();
    const sessions = pool?.getNSessions() ?? 0;
    const now = Date.now();
    const fresh = sessions <= FEW_SESSIONS || sessions !== this.#lastCount.sessions || now - this.#lastCount.at >= RECOUNT_MS;
    if (!fresh) return this.#lastCount.viewers;
    const viewers: Record<string, number> = Object.fromEntries([...this.#mounts.keys()].map((p) => [p, 0]));
    const paths = [...this.#mounts.keys()];
    const { KEEP } = GstRtspServer.RTSPFilterResult;
    pool?.filter((_pool, session) =>
      this.#guard('counting viewers', KEEP, () => {
        session.filter((_session, media) =>
          this.#guard('counting viewers', KEEP, () => {
            if (media.getRtspState() !== RTSP_STATE_PLAYING) return KEEP;
            const path = paths.length === 1 ? paths[0] : paths.find((p) => media.matches(p)[0]);
            if (path) viewers[path]!++;
            return KEEP;
          }),
        );
        return KEEP;
      }),
    );
    this.#lastCount = { sessions, at: now, viewers };
    return viewers;
  }

  /** A producer pipeline started: point live proxysrcs at its proxysinks. */
  producerStarted(): void {
    for (const source of this.#proxySources) this.#linkProxy(source);
  }

  close(): void {
    if (!this.#server) return;
    for (const path of this.#mounts.keys()) this.#server.getMountPoints()?.removeFactory(path);
    this.#server.clientFilter(() => GstRtspServer.RTSPFilterResult.REMOVE);
    for (const mount of this.#mounts.values()) for (const feed of mount.feeds) feed.unsubscribe();
    this.#mounts.clear();
    if (this.#sourceId) GLib.sourceRemove(this.#sourceId);
    this.#server = null;
    this.#sourceId = 0;
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
    this.#server?.clientFilter((_server, client) =>
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
    const mount: Mount = { launch, factory, feeds: new Set(), media: new Set(), produced: 0, bytesSent: 0 };
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
        this.#linkProxy(child);
      }
    }
    for (const feed of feeds) mount.feeds.add(feed);
    mount.media.add(media);
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

  #linkProxy(source: GstElement): void {
    const stream = streamNameOf(source.name);
    const sink = stream ? this.#findElement(stream) : null;
    if (sink && sink.getFactory()?.getName() === 'proxysink') asProxySrc(source).proxysink = sink;
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

