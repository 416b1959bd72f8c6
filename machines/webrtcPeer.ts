import { assign, emit, fromCallback, setup, type ActorRefFrom, type SnapshotFrom } from 'xstate';

/** What the engine side of a peer is given when it starts. */
export interface WebRtcSessionInput {
  readonly peer: string;
}

/** Events from the engine side (the peer's webrtcbin) and from the viewer's socket. */
export type WebRtcPeerEvent =
  /** The engine built the peer's pipeline and sent its offer (seed protocol) or its answer (WHEP). */
  | { type: 'NEGOTIATING' }
  /** ICE and DTLS are up: media flows. */
  | { type: 'CONNECTED' }
  /** ICE failed, the pipeline failed, or the engine went away. */
  | { type: 'FAILED'; reason: string }
  /** The viewer left (socket closed, WHEP DELETE) or the module asks it to go. */
  | { type: 'CLOSE'; reason: string };

export interface WebRtcPeerInput {
  readonly peer: string;
  /** Offer/answer plus ICE must complete within this time. */
  readonly negotiationTimeoutMs: number;
}

export interface WebRtcPeerContext extends WebRtcPeerInput {
  closeReason: string | null;
  connectedAt: number | null;
}

export type WebRtcPeerEmitted = { type: 'closed'; peer: string; reason: string } | { type: 'connected'; peer: string };

/**
 * One WebRTC viewer: connecting (the engine builds its webrtcbin) -> negotiating (offer/answer and ICE) ->
 * connected -> closed. A negotiation that does not finish in time, a failure, or the viewer leaving ends it;
 * leaving the `open` state stops the `session` actor, which tears the engine side down.
 */
export const webrtcPeerMachine = setup({
  types: {
    context: {} as WebRtcPeerContext,
    events: {} as WebRtcPeerEvent,
    input: {} as WebRtcPeerInput,
    emitted: {} as WebRtcPeerEmitted,
  },
  actors: {
    session: fromCallback<WebRtcPeerEvent, WebRtcSessionInput>(() => undefined),
  },
  delays: {
    negotiationTimeout: ({ context }) => context.negotiationTimeoutMs,
  },
  actions: {
    closeWith: assign({ closeReason: (_, params: { reason: string }) => params.reason }),
  },
}).createMachine({
  id: 'webrtcPeer',
  context: ({ input }) => ({ ...input, closeReason: null, connectedAt: null }),
  initial: 'open',
  states: {
    open: {
      invoke: { id: 'session', src: 'session', input: ({ context }) => ({ peer: context.peer }) },
      initial: 'connecting',
      after: {
        negotiationTimeout: {
          guard: ({ context }) => context.connectedAt === null,
          target: 'closed',
          actions: { type: 'closeWith', params: ({ context }) => ({ reason: `negotiation did not finish within ${context.negotiationTimeoutMs} ms` }) },
        },
      },
      on: {
        FAILED: { target: 'closed', actions: { type: 'closeWith', params: ({ event }) => ({ reason: event.reason }) } },
        CLOSE: { target: 'closed', actions: { type: 'closeWith', params: ({ event }) => ({ reason: event.reason }) } },
      },
      states: {
        connecting: { on: { NEGOTIATING: 'negotiating', CONNECTED: 'connected' } },
        negotiating: { on: { CONNECTED: 'connected' } },
        connected: {
          entry: [assign({ connectedAt: () => Date.now() }), emit(({ context }) => ({ type: 'connected' as const, peer: context.peer }))],
        },
      },
    },
    closed: {
      type: 'final',
      entry: emit(({ context }) => ({ type: 'closed' as const, peer: context.peer, reason: context.closeReason ?? 'closed' })),
    },
  },
});

export type WebRtcPeerActor = ActorRefFrom<typeof webrtcPeerMachine>;
export type WebRtcPeerSnapshot = SnapshotFrom<typeof webrtcPeerMachine>;
