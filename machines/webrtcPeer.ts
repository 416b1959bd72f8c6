import { assign, emit, enqueueActions, fromCallback, setup, stateIn, stopChild, type ActorRefFrom, type SnapshotFrom } from 'xstate';

/**
 * How long a viewer may stay ICE-disconnected (consent checks failing: a closed laptop, a WHEP client gone without
 * DELETE) before its peer is closed and its slot freed.
 */
export const ICE_DISCONNECTED_TIMEOUT_MS = 10_000;

/** What the engine side of a peer is given when it starts. */
export interface WebRtcSessionInput {
  readonly peer: string;
}

/** Events from the engine side (the peer's webrtcbin) and from the viewer's socket. */
export type WebRtcPeerEvent =
  /** The engine built the peer's pipeline and sent its offer (seed protocol). */
  | { type: 'NEGOTIATING' }
  /** WHEP: the engine answered the viewer's offer (every candidate inside). */
  | { type: 'ANSWERED'; sdp: string }
  /** ICE and DTLS are up: media flows. */
  | { type: 'CONNECTED' }
  /** ICE lost the viewer: it may come back within {@link ICE_DISCONNECTED_TIMEOUT_MS}. */
  | { type: 'DISCONNECTED' }
  /** ICE failed, the pipeline failed, or the engine went away. */
  | { type: 'FAILED'; reason: string }
  /** The viewer left (socket closed, WHEP DELETE) or the module asks it to go. */
  | { type: 'CLOSE'; reason: string };

export interface WebRtcPeerInput {
  readonly peer: string;
  /** The engine's offer (or WHEP answer) and ICE must complete within this time. */
  readonly negotiationTimeoutMs: number;
  /** The wall clock for `connectedAt` (tests give the simulated clock's); default `Date.now`. */
  readonly now?: () => number;
}

export interface WebRtcPeerContext extends WebRtcPeerInput {
  closeReason: string | null;
  connectedAt: number | null;
}

export type WebRtcPeerEmitted =
  | { type: 'closed'; peer: string; reason: string }
  | { type: 'connected'; peer: string }
  /** WHEP: the answer to send back to the viewer. */
  | { type: 'answered'; peer: string; sdp: string };

/**
 * One WebRTC viewer: connecting (the engine builds its webrtcbin and negotiates) -> negotiating (the offer or WHEP
 * answer is out, ICE runs) -> connected -> closed. A negotiation that does not finish in time, a failure, or the
 * viewer leaving ends it; leaving the `open` state stops the `session` actor, which tears the engine side down.
 * A peer that is still `connecting` when time runs out never produced an offer: its source gives no media.
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
  guards: {
    noOfferYet: stateIn('#webrtcPeer.open.connecting'),
    negotiating: stateIn('#webrtcPeer.open.negotiating'),
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
      // One bound for the whole negotiation, from the moment the viewer came; the reason says how far it got.
      after: {
        negotiationTimeout: [
          {
            guard: 'noOfferYet',
            target: 'closed',
            actions: {
              type: 'closeWith',
              params: ({ context }) => ({
                reason: `no offer within ${context.negotiationTimeoutMs} ms: the pipeline produced no media to negotiate (is its source down?)`,
              }),
            },
          },
          {
            guard: 'negotiating',
            target: 'closed',
            actions: { type: 'closeWith', params: ({ context }) => ({ reason: `negotiation did not finish within ${context.negotiationTimeoutMs} ms` }) },
          },
        ],
      },
      on: {
        FAILED: { target: 'closed', actions: { type: 'closeWith', params: ({ event }) => ({ reason: event.reason }) } },
        CLOSE: { target: 'closed', actions: { type: 'closeWith', params: ({ event }) => ({ reason: event.reason }) } },
      },
      states: {
        connecting: {
          on: {
            NEGOTIATING: 'negotiating',
            ANSWERED: { target: 'negotiating', actions: emit(({ context, event }) => ({ type: 'answered' as const, peer: context.peer, sdp: event.sdp })) },
            CONNECTED: 'connected',
          },
        },
        negotiating: { on: { CONNECTED: 'connected' } },
        connected: {
          entry: [
            assign({ connectedAt: ({ context }) => (context.now ?? Date.now)() }),
            emit(({ context }) => ({ type: 'connected' as const, peer: context.peer })),
          ],
          on: { DISCONNECTED: 'disconnected' },
        },
        disconnected: {
          on: { CONNECTED: 'connected' },
          after: {
            [ICE_DISCONNECTED_TIMEOUT_MS]: {
              target: '#webrtcPeer.closed',
              actions: { type: 'closeWith', params: { reason: `ICE disconnected for ${ICE_DISCONNECTED_TIMEOUT_MS / 1000} s: the viewer is gone` } },
            },
          },
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

/** What the gateway asks of the set of viewers. */
export type WebRtcViewersEvent =
  /** Spawns a peer actor named `input.peer`. */
  | { type: 'ADD'; input: WebRtcPeerInput }
  /** Forgets a closed peer. */
  | { type: 'REMOVE'; peer: string }
  | { type: 'TO'; peer: string; event: WebRtcPeerEvent }
  /** Every viewer goes (module stopping, web server restarting). */
  | { type: 'CLOSE_ALL'; reason: string };

/** The viewers connected now, one child peer actor each; the `peer` logic is provided with its session. */
export const webrtcViewersMachine = setup({
  types: { events: {} as WebRtcViewersEvent },
  actors: { peer: webrtcPeerMachine },
}).createMachine({
  id: 'webrtcViewers',
  on: {
    ADD: { actions: enqueueActions(({ enqueue, event }) => enqueue.spawnChild('peer', { id: event.input.peer, input: event.input })) },
    REMOVE: { actions: stopChild(({ event }) => event.peer) },
    // A viewer's socket can close after its peer is gone (a peer that failed fast): an event for a child that is
    // no longer there is dropped, never sent (sending to a missing child would fail the whole viewers actor).
    TO: {
      actions: enqueueActions(({ enqueue, event, self }) => {
        const child = self.getSnapshot().children[event.peer];
        if (child) enqueue.sendTo(child, event.event);
      }),
    },
    CLOSE_ALL: {
      actions: enqueueActions(({ enqueue, event, self }) => {
        for (const child of Object.values(self.getSnapshot().children)) if (child) enqueue.sendTo(child, { type: 'CLOSE', reason: event.reason });
      }),
    },
  },
});

export type WebRtcViewersActor = ActorRefFrom<typeof webrtcViewersMachine>;

/** The peer actors of a viewers snapshot, by id. */
export function viewerChildren(snapshot: SnapshotFrom<typeof webrtcViewersMachine>): Map<string, WebRtcPeerActor> {
  const children = new Map<string, WebRtcPeerActor>();
  for (const [id, child] of Object.entries(snapshot.children)) if (child) children.set(id, child as WebRtcPeerActor);
  return children;
}
