import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { WebSocketServer, type WebSocket } from 'ws';
import { createActor, fromCallback } from 'xstate';
import type { ResolvedWebRtc } from '../config/desired.js';
import type { EngineEvent, SignalMessage } from '../ipc/protocol.js';
import { webrtcPeerMachine, type WebRtcPeerActor, type WebRtcPeerEvent, type WebRtcSessionInput } from '../machines/webrtcPeer.js';
import { MAX_SIGNAL_BYTES, parseSignal } from '../media/signalling.js';
import type { ControlPlane } from './ControlPlane.js';
import type { Metrics } from './metrics.js';

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

/** `candidate:<f> <c> <proto> <prio> <addr> <port> typ host ...`: the address is the fifth field. */
function rewriteCandidate(candidate: string, host: string): string {
  const fields = candidate.split(' ');
  if (fields.length < 8 || fields[7] !== 'host') return candidate;
  fields[4] = host;
  return fields.join(' ');
}

interface Peer {
  readonly actor: WebRtcPeerActor;
  /** The seed-protocol socket, or null for WHEP. */
  readonly socket: WebSocket | null;
}

/**
 * WebRTC viewers: the seed's websocket signalling at /ws (the module offers; `{sdp}` and `{ice}` messages) and
 * WHEP (POST an offer, get the answer). Each viewer is a peer actor (machines/webrtcPeer) whose session lives in
 * the engine; a bad message closes that viewer's socket with the reason and nothing else.
 */
export class WebRtcGateway {
  readonly #plane: ControlPlane;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #peers = new Map<string, Peer>();
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_SIGNAL_BYTES });

  constructor(plane: ControlPlane, metrics: Metrics, logger: Logger) {
    this.#plane = plane;
    this.#metrics = metrics;
    this.#log = logger.child({ component: 'webrtc' });
  }

  get peerCount(): number {
    return this.#peers.size;
  }

  /** Takes websocket upgrades for /ws on a (re)started web server. */
  attach(server: Server): void {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (request.url ?? '').split('?')[0];
      if (path !== SIGNALLING_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
        return;
      }
      this.#wss.handleUpgrade(request, socket, head, (ws) => this.#onSocket(ws));
    });
  }

  /** WHEP routes on the web server. */
  routes(app: FastifyInstance): void {
    app.addContentTypeParser('application/sdp', { parseAs: 'string', bodyLimit: MAX_SIGNAL_BYTES }, (_request, body, done) => done(null, body));
    app.post(`${WHEP_PREFIX}/:name`, async (request, reply) => {
      const offer = request.body;
      if (typeof offer !== 'string' || !request.headers['content-type']?.startsWith('application/sdp')) {
        return reply.code(415).send({ error: 'POST an SDP offer with Content-Type: application/sdp' });
      }
      const checked = parseSignal(JSON.stringify({ sdp: { type: 'offer', sdp: offer } }));
      if (!checked.ok) return reply.code(400).send({ error: checked.reason });
      const refusal = this.#refusal();
      if (refusal) return reply.code(refusal.status).send({ error: refusal.reason });
      const id = randomUUID();
      const answer = firstValueFrom(
        this.#plane.engine.events$.pipe(
          filter(
            (e): e is Extract<EngineEvent, { type: 'webrtc-signal' | 'webrtc-state' }> =>
              (e.type === 'webrtc-signal' && e.peer === id && 'sdp' in e.signal) || (e.type === 'webrtc-state' && e.peer === id && e.state === 'failed'),
          ),
          timeout(15_000),
        ),
      ).catch(() => null);
      this.#open(id, null, offer);
      const result = await answer;
      if (!result || result.type !== 'webrtc-signal' || !('sdp' in result.signal)) {
        this.#peers.get(id)?.actor.send({ type: 'CLOSE', reason: 'no answer' });
        const reason = result?.type === 'webrtc-state' ? result.reason : 'no answer from the media engine';
        return reply.code(500).send({ error: reason });
      }
      const sdp = (advertise(result.signal, this.#config()?.advertisedHost ?? null) as { sdp: { sdp: string } }).sdp.sdp;
      const name = (request.params as { name: string }).name;
      return reply
        .code(201)
        .header('content-type', 'application/sdp')
        .header('location', `${WHEP_PREFIX}/${encodeURIComponent(name)}/${id}`)
        .send(sdp);
    });
    app.delete(`${WHEP_PREFIX}/:name/:peer`, async (request, reply) => {
      const peer = this.#peers.get((request.params as { peer: string }).peer);
      if (!peer || peer.socket) return reply.code(404).send({ error: 'no such WHEP session' });
      peer.actor.send({ type: 'CLOSE', reason: 'WHEP DELETE' });
      return reply.code(200).send();
    });
  }

  /** Closes every viewer (module stopping or the web server restarting). */
  closeAll(reason: string): void {
    for (const { actor } of this.#peers.values()) actor.send({ type: 'CLOSE', reason });
  }

  #config(): ResolvedWebRtc | null {
    return this.#plane.applied$.value?.webrtcResolved ?? null;
  }

  #refusal(): { status: number; reason: string; code: number } | null {
    const config = this.#config();
    if (!config?.mode) return { status: 503, code: CLOSE_TRY_LATER, reason: 'WebRTC is not configured: set webrtc_pipeline, or end the main pipeline in appsink name=video' };
    if (this.#peers.size >= config.maxPeers) return { status: 503, code: CLOSE_TRY_LATER, reason: `too many WebRTC viewers (max_peers ${config.maxPeers})` };
    return null;
  }

  #onSocket(ws: WebSocket): void {
    const refusal = this.#refusal();
    if (refusal) {
      ws.close(refusal.code, refusal.reason);
      return;
    }
    const id = randomUUID();
    ws.on('message', (data, isBinary) => {
      const peer = this.#peers.get(id);
      if (!peer) return;
      const text = isBinary ? null : data.toString();
      const checked = text === null ? { ok: false as const, reason: 'binary messages are not signalling' } : parseSignal(text);
      if (!checked.ok) {
        this.#log.warn({ event: 'webrtc-bad-message', peer: id }, `closing viewer ${id}: ${checked.reason}`);
        ws.close(CLOSE_BAD_MESSAGE, checked.reason.slice(0, 120));
        return;
      }
      this.#plane.engine.send({ type: 'webrtc-signal', peer: id, signal: checked.msg });
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
      this.#peers.get(id)?.actor.send({ type: 'CLOSE', reason: 'socket closed' });
    });
    // An oversized frame (maxPayload) errors the socket: it closes, nothing else does.
    ws.on('error', (error) => this.#log.warn({ peer: id }, `viewer socket error: ${error.message}`));
    this.#open(id, ws, null);
  }

  #open(id: string, socket: WebSocket | null, offer: string | null): void {
    const config = this.#config()!;
    const engine = this.#plane.engine;
    const session = fromCallback<WebRtcPeerEvent, WebRtcSessionInput>(({ sendBack }) => {
      const subscription = engine.events$.subscribe((event) => {
        if (event.type === 'down') {
          sendBack({ type: 'FAILED', reason: `media engine ${event.reason}` });
        } else if (event.type === 'webrtc-signal' && event.peer === id) {
          if (socket && socket.readyState === socket.OPEN) socket.send(JSON.stringify(advertise(event.signal, config.advertisedHost)));
          if ('sdp' in event.signal) sendBack({ type: 'NEGOTIATING' });
        } else if (event.type === 'webrtc-state' && event.peer === id) {
          if (event.state === 'connected') sendBack({ type: 'CONNECTED' });
          else if (event.state === 'failed') sendBack({ type: 'FAILED', reason: event.reason ?? 'failed' });
          else if (event.state === 'closed') sendBack({ type: 'FAILED', reason: event.reason ?? 'closed by the engine' });
        }
      });
      const sent = engine.send({
        type: 'webrtc-open',
        spec: {
          peer: id,
          mode: config.mode!,
          launch: config.launch,
          stunServer: config.stunServer,
          turnServers: config.turnServers,
          offer,
        },
      });
      if (!sent) setImmediate(() => sendBack({ type: 'FAILED', reason: 'media engine is not running' }));
      return () => {
        subscription.unsubscribe();
        engine.send({ type: 'webrtc-close', peer: id });
      };
    });
    const actor = createActor(webrtcPeerMachine.provide({ actors: { session } }), {
      input: { peer: id, negotiationTimeoutMs: config.negotiationTimeoutMs },
    });
    actor.on('connected', () => this.#log.info({ event: 'webrtc-connected', peer: id }, `WebRTC viewer ${id} connected`));
    actor.on('closed', ({ reason }) => {
      this.#peers.delete(id);
      this.#metrics.setWebRtcPeers(this.#peers.size);
      this.#log.info({ event: 'webrtc-closed', peer: id, reason }, `WebRTC viewer ${id} gone: ${reason}`);
      if (socket && socket.readyState === socket.OPEN) socket.close(CLOSE_GOING_AWAY, reason.slice(0, 120));
    });
    this.#peers.set(id, { actor, socket });
    this.#metrics.setWebRtcPeers(this.#peers.size);
    this.#log.info({ event: 'webrtc-open', peer: id, mode: config.mode, whep: socket === null }, `WebRTC viewer ${id} (${config.mode})`);
    actor.start();
  }
}
