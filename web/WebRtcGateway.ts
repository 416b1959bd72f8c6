import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Observable } from 'rxjs';
import { WebSocketServer, type WebSocket } from 'ws';
import { createActor, fromCallback } from 'xstate';
import type { WebRtcPort } from '../actors/ControlPlane.js';
import type { FrameResult } from '../analysis/types.js';
import type { Principal } from '../auth/AccessControl.js';
import { originAllowed, SAME_ORIGIN_ONLY, whepCorsHeaders, whepPreflight, type OriginPolicy } from '../auth/origin.js';
import { DEFAULT_WEBRTC } from '../config/defaults.js';
import type { ResolvedWebRtc } from '../config/desired.js';
import type { SignalMessage } from '../ipc/protocol.js';
import { MAX_SIGNAL_BYTES, parseSignal } from '../ipc/signalling.js';
import {
  viewerChildren,
  webrtcPeerMachine,
  webrtcViewersMachine,
  type WebRtcPeerEvent,
  type WebRtcSessionInput,
  type WebRtcViewersActor,
} from '../machines/webrtcPeer.js';
import { Admission, admissionLimits, clientKey } from './admission.js';
import { closeReason } from './closeReason.js';
import type { WebAuth } from './WebAuth.js';

/** The seed's signalling path. */
export const SIGNALLING_PATH = '/ws';
/** WHEP resources live under this prefix: POST /whep/<name>, DELETE /whep/<name>/<peer>. */
export const WHEP_PREFIX = '/whep';

/** Websocket close codes: 1008 policy violation (bad message), 1013 try again later (too many peers). */
const CLOSE_BAD_MESSAGE = 1008;
const CLOSE_TRY_LATER = 1013;
const CLOSE_GOING_AWAY = 1001;
/** A viewer's socket that misses a ping for this long is closed (and its peer with it). */
const HEARTBEAT_MS = 15_000;
/** Signalling messages one socket may send per window: a negotiation takes a few dozen. */
const MAX_MESSAGES_PER_WINDOW = 200;
const MESSAGE_WINDOW_MS = 10_000;
/** A viewer's socket with this much unsent is slow: analysis results skip it until it drains (video is not on it). */
const MAX_ANALYSIS_BACKLOG_BYTES = 256 * 1024;

/**
 * An analysed frame as viewers get it on the signalling socket, beside `sdp` and `ice` (which is all the seed's
 * page reads, so it ignores these): `{"analysis":{"analyzer":"people","camera":"people","timestamp":"...",
 * "width":320,"height":180,"detections":[{"class":"person","score":0.84,"box":{"x":0.01,"y":0.03,"width":0.96,
 * "height":0.93}}]}}`, boxes normalised to the picture. wwwroot/overlay.js draws them over the video.
 */
export function analysisMessage(result: FrameResult): string {
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return JSON.stringify({
    analysis: {
      analyzer: result.analyzer,
      camera: result.camera,
      timestamp: result.timestamp,
      width: result.width,
      height: result.height,
      detections: result.detections.map((d) => ({
        class: d.class,
        score: round(d.score),
        box: { x: round(d.box.x), y: round(d.box.y), width: round(d.box.width), height: round(d.box.height) },
      })),
    },
  });
}
/** Replaces the address of host candidates (container/NAT addresses) with the one viewers can reach. */
export function advertise(signal: SignalMessage, host: string | null): SignalMessage {
  if (!host) return signal;
  if ('ice' in signal) {
    return { ice: { ...signal.ice, candidate: rewriteCandidate(signal.ice.candidate, host) } };
  }
  const sdp = signal.sdp.sdp
    .split(/\r?\n/)
    .map((line) => (line.startsWith('a=candidate:') ? `a=${rewriteCandidate(line.slice(2), host)}` : line))
    .join('\r\n');
  return { sdp: { ...signal.sdp, sdp } };
}

/**
 * `candidate:<f> <c> <proto> <prio> <addr> <port> typ host ...`: the address is the fifth field.
 *
 * @example
 * rewriteCandidate('candidate:1 1 UDP 2015363327 172.17.0.2 40000 typ host', '203.0.113.7')
 * // 'candidate:1 1 UDP 2015363327 203.0.113.7 40000 typ host'
 */
export function rewriteCandidate(candidate: string, host: string): string {
  const fields = candidate.split(' ');
  if (fields.length < 8 || fields[7] !== 'host') return candidate;
  fields[4] = host;
  return fields.join(' ');
}

export interface WebRtcGatewayOptions {
  /** The engine's WebRTC side, through the control plane. */
  readonly webrtc: WebRtcPort;
  /** Hides values expanded from the environment (a per-viewer pipeline's failure can quote them). */
  readonly redact: (text: string) => string;
  readonly logger: Logger;
  /** Analysed frames (the control plane's), sent to every seed-protocol viewer as `{"analysis": ...}`. */
  readonly analysis$?: Observable<FrameResult>;
  /** Who may watch (/ws and WHEP need the `webrtc` right); viewers whose rights change are closed. */
  readonly auth: WebAuth;
  /** Which browser origins may use /ws and WHEP (the applied `http.allowed_origins`; default same origin). */
  readonly origins?: () => OriginPolicy;
}

/**
 * WebRTC viewers: the seed's websocket signalling at /ws (the module offers; `{sdp}` and `{ice}` messages) and
 * WHEP (POST an offer, get the answer). Each viewer is a peer actor (machines/webrtcPeer), a child of one viewers
 * actor, whose session lives in the engine; a bad message closes that viewer's socket with the reason and nothing
 * else.
 */
export class WebRtcGateway {
  readonly #webrtc: WebRtcPort;
  readonly #redact: (text: string) => string;
  readonly #log: Logger;
  /** The viewers connected now. */
  readonly #viewers: WebRtcViewersActor;
  /** Each seed-protocol viewer's socket, by peer id (WHEP viewers have none). */
  readonly #sockets = new Map<string, WebSocket>();
  /** Viewers whose peer has connected: they get analysis results (there is video to draw them on). */
  readonly #watching = new Set<string>();
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_SIGNAL_BYTES });
  /** Who may open a viewer now (rate, viewers per address). */
  readonly #admission: Admission;
  /** The client key each viewer was admitted under, released when it closes. */
  readonly #admitted = new Map<string, string>();
  readonly #auth: WebAuth;
  readonly #origins: () => OriginPolicy;
  /** Per viewer: stops watching its principal's rights (called when it closes). */
  readonly #untrack = new Map<string, () => void>();

  constructor(options: WebRtcGatewayOptions) {
    this.#auth = options.auth;
    this.#origins = options.origins ?? (() => SAME_ORIGIN_ONLY);
    this.#webrtc = options.webrtc;
    this.#redact = options.redact;
    this.#log = options.logger.child({ component: 'webrtc' });
    this.#admission = new Admission(admissionLimits(DEFAULT_WEBRTC.maxPeersPerAddress, DEFAULT_WEBRTC.newPeersPerSecond));
    const session = fromCallback<WebRtcPeerEvent, WebRtcSessionInput>(({ input, sendBack }) => this.#session(input.peer, sendBack));
    this.#viewers = createActor(webrtcViewersMachine.provide({ actors: { peer: webrtcPeerMachine.provide({ actors: { session } }) } }));
    this.#viewers.start();
    options.analysis$?.subscribe((result) => this.#sendAnalysis(result));
  }

  /** One analysed frame to every connected viewer on the signalling socket (WHEP viewers have none). */
  #sendAnalysis(result: FrameResult): void {
    if (this.#watching.size === 0) return;
    const message = analysisMessage(result);
    for (const id of this.#watching) {
      const socket = this.#sockets.get(id);
      if (socket && socket.readyState === socket.OPEN && socket.bufferedAmount < MAX_ANALYSIS_BACKLOG_BYTES) socket.send(message);
    }
  }

  get peerCount(): number {
    return viewerChildren(this.#viewers.getSnapshot()).size;
  }

  /** Takes websocket upgrades for /ws on a (re)started web server. */
  attach(server: Server): void {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (request.url ?? '').split('?')[0];
      if (path !== SIGNALLING_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
        return;
      }
      // Websockets are outside CORS: a page of another site could use a viewer's browser (and credentials).
      if (!originAllowed(this.#origins(), { origin: request.headers.origin, host: request.headers.host })) {
        this.#log.warn({ event: 'webrtc-origin-refused' }, 'refused a signalling websocket from an origin that is not allowed (http.allowed_origins)');
        this.#auth.refuseUpgrade(socket, { status: 403, message: 'origin not allowed (http.allowed_origins)' });
        return;
      }
      socket.on('error', () => socket.destroy());
      void this.#auth.admit(request, 'webrtc', 'websocket').then(
        (admission) => {
          if (socket.destroyed) return;
          if (!admission.ok) return this.#auth.refuseUpgrade(socket, admission.refusal);
          this.#wss.handleUpgrade(request, socket, head, (ws) =>
            this.#onSocket(ws, clientKey(request.socket.remoteAddress), admission.principal, admission.secure),
          );
        },
        () => socket.destroy(),
      );
    });
  }

  /** WHEP routes on the web server. */
  routes(app: FastifyInstance): void {
    app.addContentTypeParser('application/sdp', { parseAs: 'string', bodyLimit: MAX_SIGNAL_BYTES }, (_request, body, done) => done(null, body));
    // CORS: preflights from allowed origins are answered (they carry no credentials); others are refused.
    app.options(`${WHEP_PREFIX}/*`, async (request, reply) => {
      const { origin, host } = request.headers;
      const decision = whepPreflight(this.#origins(), {
        origin,
        host,
        method: request.headers['access-control-request-method'] as string | undefined,
        headers: request.headers['access-control-request-headers'] as string | undefined,
      });
      if (!decision.allowed) return reply.code(decision.status).send({ error: decision.reason });
      return reply.code(204).headers(decision.headers).send();
    });
    app.post(`${WHEP_PREFIX}/:name`, async (request, reply) => {
      const cors = whepCorsHeaders(this.#origins(), { origin: request.headers.origin, host: request.headers.host });
      if (!cors.allowed) return reply.code(cors.status).send({ error: cors.reason });
      reply.headers(cors.headers);
      // `/whep/` matches the route with an empty name (found by the fuzz): there is no resource to create there.
      const name = (request.params as { name: string }).name;
      if (name === '') return reply.code(404).send({ error: 'POST the offer to /whep/<name>' });
      const offer = request.body;
      if (typeof offer !== 'string' || !request.headers['content-type']?.startsWith('application/sdp')) {
        return reply.code(415).send({ error: 'POST an SDP offer with Content-Type: application/sdp' });
      }
      const checked = parseSignal(JSON.stringify({ sdp: { type: 'offer', sdp: offer } }));
      if (!checked.ok) return reply.code(400).send({ error: checked.reason });
      const refusal = this.#refusal();
      if (refusal) return reply.code(refusal.status).send({ error: refusal.reason });
      const key = clientKey(request.socket.remoteAddress);
      const admitted = this.#admission.admit(key);
      if (!admitted.ok) return reply.code(429).header('retry-after', String(admitted.retryAfterS)).send({ error: admitted.reason });
      const id = randomUUID();
      this.#admitted.set(id, key);
      const who = this.#auth.principalOf(request.raw);
      // The peer machine bounds the wait (negotiation timeout): it answers or it closes.
      const outcome = new Promise<{ sdp: string } | { error: string }>((resolve) => {
        const actor = this.#open(id, null, offer, who ?? null);
        actor.on('answered', ({ sdp }) => resolve({ sdp }));
        actor.on('closed', ({ reason }) => resolve({ error: reason }));
      });
      const result = await outcome;
      if ('error' in result) return reply.code(500).send({ error: this.#redact(result.error) });
      return reply
        .code(201)
        .header('content-type', 'application/sdp')
        .header('location', `${WHEP_PREFIX}/${encodeURIComponent(name)}/${id}`)
        .send(result.sdp);
    });
    app.delete(`${WHEP_PREFIX}/:name/:peer`, async (request, reply) => {
      const cors = whepCorsHeaders(this.#origins(), { origin: request.headers.origin, host: request.headers.host });
      if (!cors.allowed) return reply.code(cors.status).send({ error: cors.reason });
      reply.headers(cors.headers);
      const peer = (request.params as { peer: string }).peer;
      if (!viewerChildren(this.#viewers.getSnapshot()).has(peer) || this.#sockets.has(peer)) return reply.code(404).send({ error: 'no such WHEP session' });
      this.#viewers.send({ type: 'TO', peer, event: { type: 'CLOSE', reason: 'WHEP DELETE' } });
      return reply.code(200).send();
    });
  }

  /** Closes every viewer (module stopping or the web server restarting). */
  closeAll(reason: string): void {
    this.#viewers.send({ type: 'CLOSE_ALL', reason });
  }

  #config(): ResolvedWebRtc | null {
    return this.#webrtc.settings();
  }

  #refusal(): { status: number; reason: string; code: number } | null {
    const config = this.#config();
    if (config) this.#admission.configure(admissionLimits(config.maxPeersPerAddress, config.newPeersPerSecond));
    if (!config?.mode) return { status: 503, code: CLOSE_TRY_LATER, reason: 'WebRTC is not configured: set webrtc_pipeline, or end the main pipeline in appsink name=video' };
    if (this.peerCount >= config.maxPeers) return { status: 503, code: CLOSE_TRY_LATER, reason: `too many WebRTC viewers (max_peers ${config.maxPeers})` };
    return null;
  }

  #onSocket(ws: WebSocket, key: string, principal: Principal, secure: boolean): void {
    const refusal = this.#refusal();
    if (refusal) {
      ws.close(refusal.code, closeReason(refusal.reason));
      return;
    }
    const admitted = this.#admission.admit(key);
    if (!admitted.ok) {
      ws.close(CLOSE_TRY_LATER, closeReason(`${admitted.reason}; try again in ${admitted.retryAfterS} s`));
      return;
    }
    const id = randomUUID();
    this.#admitted.set(id, key);
    let windowStart = Date.now();
    let messages = 0;
    ws.on('message', (data, isBinary) => {
      if (!this.#sockets.has(id)) return;
      const now = Date.now();
      if (now - windowStart >= MESSAGE_WINDOW_MS) {
        windowStart = now;
        messages = 0;
      }
      if (++messages > MAX_MESSAGES_PER_WINDOW) {
        this.#log.warn({ event: 'webrtc-message-flood', peer: id }, `closing viewer ${id}: more than ${MAX_MESSAGES_PER_WINDOW} messages in ${MESSAGE_WINDOW_MS / 1000} s`);
        ws.close(CLOSE_BAD_MESSAGE, closeReason(`too many signalling messages (more than ${MAX_MESSAGES_PER_WINDOW} in ${MESSAGE_WINDOW_MS / 1000} s)`));
        return;
      }
      const text = isBinary ? null : data.toString();
      const checked = text === null ? { ok: false as const, reason: 'binary messages are not signalling' } : parseSignal(text);
      if (!checked.ok) {
        this.#log.warn({ event: 'webrtc-bad-message', peer: id }, `closing viewer ${id}: ${checked.reason}`);
        ws.close(CLOSE_BAD_MESSAGE, closeReason(checked.reason));
        return;
      }
      this.#webrtc.signal(id, checked.msg);
    });
    // ICE can sit in "disconnected" for ever; a viewer that stops answering pings is gone.
    let alive = true;
    ws.on('pong', () => {
      alive = true;
    });
    const heartbeat = setInterval(() => {
      if (!alive) ws.terminate();
      alive = false;
      ws.ping();
    }, HEARTBEAT_MS);
    ws.on('close', () => {
      clearInterval(heartbeat);
      this.#viewers.send({ type: 'TO', peer: id, event: { type: 'CLOSE', reason: 'socket closed' } });
    });
    // An oversized frame (maxPayload) errors the socket: it closes, nothing else does.
    ws.on('error', (error) => this.#log.warn({ peer: id }, `viewer socket error: ${error.message}`));
    this.#open(id, ws, null, { principal, secure });
  }

  /** The engine side of one peer: opened when the peer actor starts, closed when it leaves `open`. */
  #session(id: string, sendBack: (event: WebRtcPeerEvent) => void): () => void {
    const config = this.#config()!;
    const socket = this.#sockets.get(id) ?? null;
    const subscription = this.#webrtc.events$.subscribe((event) => {
      if (event.type === 'down') {
        sendBack({ type: 'FAILED', reason: `media engine ${event.reason}` });
      } else if (event.type === 'webrtc-signal' && event.peer === id) {
        const signal = advertise(event.signal, config.advertisedHost);
        if (socket) {
          if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(signal));
          if ('sdp' in signal) sendBack({ type: 'NEGOTIATING' });
        } else if ('sdp' in signal) {
          sendBack({ type: 'ANSWERED', sdp: signal.sdp.sdp });
        }
      } else if (event.type === 'webrtc-state' && event.peer === id) {
        if (event.state === 'connected') sendBack({ type: 'CONNECTED' });
        else if (event.state === 'disconnected') sendBack({ type: 'DISCONNECTED' });
        else if (event.state === 'failed') sendBack({ type: 'FAILED', reason: event.reason ?? 'failed' });
        else if (event.state === 'closed') sendBack({ type: 'FAILED', reason: event.reason ?? 'closed by the engine' });
      }
    });
    const sent = this.#webrtc.open({
      peer: id,
      mode: config.mode!,
      launch: config.launch,
      stunServer: config.stunServer,
      turnServers: config.turnServers,
      offer: this.#offers.get(id) ?? null,
    });
    this.#offers.delete(id);
    if (!sent) setImmediate(() => sendBack({ type: 'FAILED', reason: 'media engine is not running' }));
    return () => {
      subscription.unsubscribe();
      this.#webrtc.close(id);
    };
  }

  /** WHEP offers, from the POST to the peer's session start. */
  readonly #offers = new Map<string, string>();

  #open(id: string, socket: WebSocket | null, offer: string | null, who: { principal: Principal; secure: boolean } | null) {
    const config = this.#config()!;
    if (socket) this.#sockets.set(id, socket);
    if (offer) this.#offers.set(id, offer);
    this.#viewers.send({ type: 'ADD', input: { peer: id, negotiationTimeoutMs: config.negotiationTimeoutMs } });
    const actor = viewerChildren(this.#viewers.getSnapshot()).get(id)!;
    // A viewer whose rights change (open -> protected included), or whose token expires, is closed (the page signs
    // in again and reconnects).
    if (who) {
      this.#untrack.set(id, this.#auth.track(who.principal, who.secure, (reason) => this.#viewers.send({ type: 'TO', peer: id, event: { type: 'CLOSE', reason } })));
    }
    actor.on('connected', () => {
      this.#watching.add(id);
      this.#log.info({ event: 'webrtc-connected', peer: id }, `WebRTC viewer ${id} connected`);
    });
    actor.on('closed', ({ reason: raw }) => {
      const reason = this.#redact(raw);
      this.#sockets.delete(id);
      this.#watching.delete(id);
      this.#untrack.get(id)?.();
      this.#untrack.delete(id);
      const key = this.#admitted.get(id);
      this.#admitted.delete(id);
      if (key !== undefined) this.#admission.release(key);
      this.#viewers.send({ type: 'REMOVE', peer: id });
      this.#log.info({ event: 'webrtc-closed', peer: id, reason }, `WebRTC viewer ${id} gone: ${reason}`);
      if (socket && socket.readyState === socket.OPEN) socket.close(CLOSE_GOING_AWAY, closeReason(reason));
    });
    this.#log.info({ event: 'webrtc-open', peer: id, mode: config.mode, whep: socket === null }, `WebRTC viewer ${id} (${config.mode})`);
    return actor;
  }
}
