import { assign, fromCallback, raise, setup, stateIn, type ActorRefFrom, type SnapshotFrom } from 'xstate';
import type { WebRtcPeerState } from '../ipc/protocol.js';

/** An ICE candidate line and the m-line it belongs to. */
export interface Candidate {
  readonly mline: number;
  readonly candidate: string;
}

/** webrtcbin's `ice-connection-state`, by name. */
export type IceConnectionStateName = 'new' | 'checking' | 'connected' | 'completed' | 'failed' | 'disconnected' | 'closed';
/** webrtcbin's `connection-state` (ICE and DTLS together), by name. */
export type PeerConnectionStateName = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

/**
 * What happens to one viewer's webrtcbin. The engine's peer sends these, each on a tick of its own (never from
 * inside a GStreamer callback), and does what the machine's actions say.
 */
export type WebRtcNegotiationEvent =
  /** The pipeline is built: wire it up and set it PLAYING. */
  | { type: 'START' }
  /** webrtcbin asks for (re)negotiation: it knows the caps of what it sends. */
  | { type: 'NEGOTIATION_NEEDED' }
  /** Seed protocol: webrtcbin created the offer (patched for browsers, and known to parse). */
  | { type: 'OFFER_CREATED'; sdp: string }
  /** Seed protocol: the viewer's answer (known to parse). */
  | { type: 'ANSWER'; sdp: string }
  /** Seed protocol: webrtcbin took the viewer's answer. */
  | { type: 'ANSWER_APPLIED' }
  /** WHEP: webrtcbin took the viewer's offer. */
  | { type: 'OFFER_APPLIED' }
  /** WHEP: webrtcbin created the answer. */
  | { type: 'ANSWER_CREATED'; sdp: string }
  /** WHEP: ICE gathering is complete, every local candidate is known. */
  | { type: 'GATHERING_COMPLETE' }
  /** webrtcbin found a local candidate. */
  | ({ type: 'LOCAL_CANDIDATE' } & Candidate)
  /** The viewer sent a candidate (trickle). */
  | ({ type: 'REMOTE_CANDIDATE' } & Candidate)
  /** webrtcbin's connection states changed (read after its notify). */
  | { type: 'CONNECTION_STATE'; ice: IceConnectionStateName; connection: PeerConnectionStateName }
  /** Something went wrong (a bus error, a refused description, the shared fan-out failed): the peer is over. */
  | { type: 'FAIL'; reason: string }
  /** The owner ends the peer (the viewer left). */
  | { type: 'CLOSE' }
  /** Released, and every promise webrtcbin owed has been replied to: no webrtcbin thread will call JS again. */
  | { type: 'SETTLED' };

export interface WebRtcNegotiationInput {
  /** WHEP: the viewer's offer, answered once with every candidate inside; null: the module offers (seed protocol). */
  readonly offer: string | null;
  /** How long a WHEP answer waits for ICE gathering before it goes out with the candidates found so far. */
  readonly gatherTimeoutMs?: number;
  /** How long a released peer waits before NULL, for webrtcbin callbacks already on their way to the JS thread. */
  readonly releaseDrainMs?: number;
  /** How long a released peer waits at most for webrtcbin's outstanding replies (SETTLED) before NULL anyway. */
  readonly settleTimeoutMs?: number;
  /** Remote candidates held while no description can take them; one more is refused. */
  readonly maxPendingCandidates?: number;
}

export interface WebRtcNegotiationContext {
  readonly offer: string | null;
  readonly gatherTimeoutMs: number;
  readonly releaseDrainMs: number;
  readonly settleTimeoutMs: number;
  readonly maxPendingCandidates: number;
  /** Released, and webrtcbin owes no reply any more (SETTLED came). */
  settled: boolean;
  /** Remote candidates that came before webrtcbin had the remote description. */
  pendingCandidates: readonly Candidate[];
  /** WHEP: local candidates, written into the answer. */
  gathered: readonly Candidate[];
  /** WHEP: the answer webrtcbin created, sent once gathering is done. */
  answer: string | null;
  /** Why the peer failed, once it has. */
  failure: string | null;
}

/** Gathering on loopback takes milliseconds; a stuck STUN server must not hold a WHEP viewer up for long. */
export const GATHER_TIMEOUT_MS = 3_000;
/** See {@link WebRtcNegotiationInput.releaseDrainMs}. */
export const RELEASE_DRAIN_MS = 50;
/** See {@link WebRtcNegotiationInput.settleTimeoutMs}: webrtcbin replies in milliseconds while it runs. */
export const SETTLE_TIMEOUT_MS = 3_000;
export const MAX_PENDING_CANDIDATES = 100;

const noop = () => undefined;

/**
 * One WebRTC viewer's webrtcbin, as states: idle (built) -> live -> released -> closed. While live, two regions
 * run side by side:
 *
 * - negotiation, seed protocol: waiting (for webrtcbin to ask) -> offering (creating -> awaitingAnswer ->
 *   applyingAnswer, with `again: pending` when webrtcbin asks again meanwhile: the next offer follows the answer)
 *   -> negotiated; WHEP: waiting -> answering (applyingOffer -> creatingAnswer -> gathering -> answered).
 * - connection, what the owner is told (`report`): connecting -> negotiating (the offer or the WHEP answer is
 *   made) -> connected (ICE and DTLS up: media flows; stats while there).
 *
 * A failure (FAIL, or ICE or DTLS failing) or the owner's CLOSE releases the peer: handlers off and promises
 * interrupted at once (`release`), NULL after a drain and webrtcbin's last replies (`setNull`), and `closed` once both the NULL is done and the
 * owner has closed. Pure: webrtcbin, the pipeline and the viewer are reached only through the actions, which the
 * engine's WebRtcPeer provides.
 */
export const webrtcNegotiationMachine = setup({
  types: {
    context: {} as WebRtcNegotiationContext,
    events: {} as WebRtcNegotiationEvent,
    input: {} as WebRtcNegotiationInput,
  },
  actions: {
    /** Handlers on, hub feeds and fan-out branch attached, PLAYING. */
    play: noop,
    /** A state for the owner: connecting, negotiating, connected, failed (with the reason), closed. */
    report: (_, _params: { state: WebRtcPeerState; reason?: string }) => undefined,
    createOffer: noop,
    setLocalDescription: (_, _params: { type: 'offer' | 'answer'; sdp: string }) => undefined,
    sendOffer: (_, _params: { sdp: string }) => undefined,
    sendCandidate: (_, _params: Candidate) => undefined,
    applyAnswer: (_, _params: { sdp: string }) => undefined,
    applyOffer: (_, _params: { sdp: string }) => undefined,
    createAnswer: noop,
    /** Reads whether gathering is already complete (sends GATHERING_COMPLETE if so). */
    checkGathering: noop,
    sendAnswer: (_, _params: { sdp: string; candidates: readonly Candidate[] }) => undefined,
    addCandidates: (_, _params: { candidates: readonly Candidate[] }) => undefined,
    /** Feeds, handlers and promises off, the fan-out branch off the tee: everything but NULL. */
    release: noop,
    /** The pipeline to NULL (and the fan-out branch removed). */
    setNull: noop,
    queueCandidate: assign({
      pendingCandidates: ({ context, event }) =>
        event.type === 'REMOTE_CANDIDATE' ? [...context.pendingCandidates, { mline: event.mline, candidate: event.candidate }] : context.pendingCandidates,
    }),
  },
  actors: {
    /** Reads and reports the peer's counters while it is connected. */
    stats: fromCallback(noop),
  },
  delays: {
    gatherTimeout: ({ context }) => context.gatherTimeoutMs,
    releaseDrain: ({ context }) => context.releaseDrainMs,
    settleTimeout: ({ context }) => context.settleTimeoutMs,
  },
  guards: {
    settled: ({ context }) => context.settled,
    whep: ({ context }) => context.offer !== null,
    roomForCandidate: ({ context }) => context.pendingCandidates.length < context.maxPendingCandidates,
    renegotiationPending: stateIn('#webrtcNegotiation.live.negotiation.offering.again.pending'),
    iceFailed: ({ event }) => event.type === 'CONNECTION_STATE' && event.ice === 'failed',
    connectionFailed: ({ event }) => event.type === 'CONNECTION_STATE' && event.connection === 'failed',
    iceDisconnected: ({ event }) => event.type === 'CONNECTION_STATE' && (event.ice === 'disconnected' || event.connection === 'disconnected'),
    // `connection-state` counts DTLS too, so media can flow; ICE alone is not enough.
    mediaFlows: ({ event }) =>
      event.type === 'CONNECTION_STATE' && event.connection === 'connected' && (event.ice === 'connected' || event.ice === 'completed'),
  },
}).createMachine({
  id: 'webrtcNegotiation',
  context: ({ input }) => ({
    offer: input.offer,
    gatherTimeoutMs: input.gatherTimeoutMs ?? GATHER_TIMEOUT_MS,
    releaseDrainMs: input.releaseDrainMs ?? RELEASE_DRAIN_MS,
    settleTimeoutMs: input.settleTimeoutMs ?? SETTLE_TIMEOUT_MS,
    settled: false,
    maxPendingCandidates: input.maxPendingCandidates ?? MAX_PENDING_CANDIDATES,
    pendingCandidates: [],
    gathered: [],
    answer: null,
    failure: null,
  }),
  initial: 'idle',
  states: {
    idle: {
      on: {
        START: 'live',
        REMOTE_CANDIDATE: { guard: 'roomForCandidate', actions: 'queueCandidate' },
        CLOSE: '#webrtcNegotiation.released.owner.closing',
      },
    },
    live: {
      type: 'parallel',
      entry: 'play',
      on: {
        FAIL: {
          target: 'released',
          actions: [assign({ failure: ({ event }) => event.reason }), { type: 'report', params: ({ event }) => ({ state: 'failed', reason: event.reason }) }],
        },
        CLOSE: '#webrtcNegotiation.released.owner.closing',
        LOCAL_CANDIDATE: [
          { guard: 'whep', actions: assign({ gathered: ({ context, event }) => [...context.gathered, { mline: event.mline, candidate: event.candidate }] }) },
          { actions: { type: 'sendCandidate', params: ({ event }) => ({ mline: event.mline, candidate: event.candidate }) } },
        ],
      },
      states: {
        negotiation: {
          initial: 'waiting',
          // Held until webrtcbin has the remote description; states that have it take them at once.
          on: { REMOTE_CANDIDATE: { guard: 'roomForCandidate', actions: 'queueCandidate' } },
          states: {
            waiting: {
              on: { NEGOTIATION_NEEDED: [{ guard: 'whep', target: 'answering' }, { target: 'offering' }] },
            },
            offering: {
              type: 'parallel',
              states: {
                exchange: {
                  initial: 'creating',
                  states: {
                    creating: {
                      entry: 'createOffer',
                      on: {
                        OFFER_CREATED: {
                          target: 'awaitingAnswer',
                          // The offer that is sent is the offer that is set.
                          actions: [
                            { type: 'setLocalDescription', params: ({ event }) => ({ type: 'offer' as const, sdp: event.sdp }) },
                            { type: 'sendOffer', params: ({ event }) => ({ sdp: event.sdp }) },
                          ],
                        },
                      },
                    },
                    awaitingAnswer: {
                      on: {
                        ANSWER: {
                          target: 'applyingAnswer',
                          actions: [
                            { type: 'applyAnswer', params: ({ event }) => ({ sdp: event.sdp }) },
                            // The held candidates follow the description that lets webrtcbin take them.
                            { type: 'addCandidates', params: ({ context }) => ({ candidates: context.pendingCandidates }) },
                            assign({ pendingCandidates: [] }),
                          ],
                        },
                      },
                    },
                    applyingAnswer: {
                      on: {
                        // Later candidates queue behind the answer in webrtcbin's own task queue.
                        REMOTE_CANDIDATE: { actions: { type: 'addCandidates', params: ({ event }) => ({ candidates: [{ mline: event.mline, candidate: event.candidate }] }) } },
                        ANSWER_APPLIED: [
                          { guard: 'renegotiationPending', target: '#webrtcNegotiation.live.negotiation.offering', reenter: true },
                          { target: '#webrtcNegotiation.live.negotiation.negotiated' },
                        ],
                      },
                    },
                  },
                },
                // webrtcbin asked again while this offer was out: offer again once its answer is in.
                again: {
                  initial: 'no',
                  states: { no: { on: { NEGOTIATION_NEEDED: 'pending' } }, pending: {} },
                },
              },
            },
            negotiated: {
              on: { NEGOTIATION_NEEDED: 'offering', REMOTE_CANDIDATE: { actions: { type: 'addCandidates', params: ({ event }) => ({ candidates: [{ mline: event.mline, candidate: event.candidate }] }) } } },
            },
            // WHEP: the viewer offered; webrtcbin asks to negotiate once, and asking again changes nothing.
            answering: {
              initial: 'applyingOffer',
              on: { REMOTE_CANDIDATE: { actions: { type: 'addCandidates', params: ({ event }) => ({ candidates: [{ mline: event.mline, candidate: event.candidate }] }) } } },
              states: {
                applyingOffer: {
                  entry: [
                    { type: 'applyOffer', params: ({ context }) => ({ sdp: context.offer ?? '' }) },
                    { type: 'addCandidates', params: ({ context }) => ({ candidates: context.pendingCandidates }) },
                    assign({ pendingCandidates: [] }),
                  ],
                  on: { OFFER_APPLIED: 'creatingAnswer' },
                },
                creatingAnswer: {
                  entry: 'createAnswer',
                  on: {
                    ANSWER_CREATED: {
                      target: 'gathering',
                      actions: [
                        { type: 'setLocalDescription', params: ({ event }) => ({ type: 'answer' as const, sdp: event.sdp }) },
                        assign({ answer: ({ event }) => event.sdp }),
                      ],
                    },
                  },
                },
                gathering: {
                  entry: 'checkGathering',
                  on: { GATHERING_COMPLETE: 'answered' },
                  after: { gatherTimeout: 'answered' },
                },
                answered: {
                  entry: { type: 'sendAnswer', params: ({ context }) => ({ sdp: context.answer ?? '', candidates: context.gathered }) },
                },
              },
            },
          },
        },
        // What the owner is told: connecting -> negotiating (the offer, or the WHEP answer, is out) -> connected.
        connection: {
          initial: 'connecting',
          on: {
            CONNECTION_STATE: [
              { guard: 'iceFailed', actions: raise({ type: 'FAIL', reason: 'ICE failed (no candidate pair works: check advertised host, STUN/TURN)' }) },
              { guard: 'connectionFailed', actions: raise({ type: 'FAIL', reason: 'connection failed (DTLS)' }) },
            ],
          },
          states: {
            connecting: {
              entry: { type: 'report', params: { state: 'connecting' } },
              on: { OFFER_CREATED: 'negotiating', ANSWER_CREATED: 'negotiating', CONNECTION_STATE: { guard: 'mediaFlows', target: 'connected' } },
            },
            negotiating: {
              entry: { type: 'report', params: { state: 'negotiating' } },
              on: { CONNECTION_STATE: { guard: 'mediaFlows', target: 'connected' } },
            },
            // A renegotiation after this changes nothing for the owner.
            connected: {
              entry: { type: 'report', params: { state: 'connected' } },
              invoke: { src: 'stats' },
              on: { CONNECTION_STATE: { guard: 'iceDisconnected', target: 'disconnected' } },
            },
            // ICE lost the viewer (consent checks failing): it may come back; the owner decides how long to wait.
            disconnected: {
              entry: { type: 'report', params: { state: 'disconnected' } },
              on: { CONNECTION_STATE: { guard: 'mediaFlows', target: 'connected' } },
            },
          },
        },
      },
    },
    released: {
      type: 'parallel',
      entry: 'release',
      on: { SETTLED: { actions: assign({ settled: true }) } },
      states: {
        // NULL joins webrtcbin's threads, and a webrtcbin thread inside a JS callback waits for the JS thread: the
        // NULL waits until none can be. A handler emitted just before the handlers went off is served in the
        // drain; a promise's change function runs even for an interrupted promise (gst_promise_reply calls it
        // whatever the result), so the NULL also waits for every reply webrtcbin owes (SETTLED), bounded.
        pipeline: {
          initial: 'draining',
          states: {
            draining: { after: { releaseDrain: 'settling' } },
            settling: {
              always: { guard: 'settled', target: 'inNull' },
              after: { settleTimeout: 'inNull' },
            },
            inNull: { type: 'final', entry: 'setNull' },
          },
        },
        // After a failure the owner still closes; `closed` waits for both.
        owner: {
          initial: 'open',
          states: {
            open: { on: { CLOSE: 'closing' } },
            closing: { type: 'final' },
          },
        },
      },
      onDone: 'closed',
    },
    closed: {
      type: 'final',
      entry: { type: 'report', params: { state: 'closed' } },
    },
  },
});

export type WebRtcNegotiationActor = ActorRefFrom<typeof webrtcNegotiationMachine>;
export type WebRtcNegotiationSnapshot = SnapshotFrom<typeof webrtcNegotiationMachine>;

/** Whether the peer has let go of its pipeline (or never will run again): late callbacks have nothing to do. */
export function isReleased(snapshot: WebRtcNegotiationSnapshot): boolean {
  return snapshot.status !== 'active' || snapshot.matches('released');
}
