/** A WebRTC peer's counters: totals over its outgoing RTP streams, read from webrtcbin's `get-stats` replies. */
import { structureField, type GstStructure } from './gst.js';

/** Totals over a peer's outgoing RTP streams, from webrtcbin's `get-stats` and the viewer's RTCP reports. */
export interface WebRtcPeerStats {
  readonly id: string;
  readonly packetsSent: number;
  readonly bytesSent: number;
  /** Packets the viewer reported lost (RTCP receiver reports). */
  readonly packetsLost: number;
  /** Retransmission requests, picture-loss and full-intra requests from the viewer. */
  readonly nackCount: number;
  readonly pliCount: number;
  readonly firCount: number;
  /** Round-trip time from RTCP, in ms; null until the viewer's first receiver report. */
  readonly roundTripTimeMs: number | null;
}

/** The totals being added up over the replies of one round of `get-stats` (one per sink pad). */
export type StatsTotals = { -readonly [K in keyof Omit<WebRtcPeerStats, 'id'>]: WebRtcPeerStats[K] };

export function emptyTotals(): StatsTotals {
  return { packetsSent: 0, bytesSent: 0, packetsLost: 0, nackCount: 0, pliCount: 0, firCount: 0, roundTripTimeMs: null };
}

/** A number of a stats structure, whatever its GType (uint, uint64, int, double). */
export function statNumber(structure: GstStructure, field: string): number | null {
  if (!structure.hasField(field)) return null;
  for (const read of [
    () => structure.getUint64(field),
    () => structure.getUint(field),
    () => structure.getInt64(field),
    () => structure.getInt(field),
    () => structure.getDouble(field),
  ]) {
    const [ok, value] = read();
    if (ok) return Number(value);
  }
  return null;
}

/**
 * Adds the `outbound-rtp` and `remote-inbound-rtp` entries of one `get-stats` reply to `totals`. Runs inside the
 * promise's change function (the reply is webrtcbin's): it only reads numbers.
 */
export function addStatsReply(reply: GstStructure, totals: StatsTotals): void {
  for (let i = 0; i < reply.nFields(); i++) {
    const entry = structureField(reply, reply.nthFieldName(i));
    if (!entry) continue;
    const kind = entry.getName();
    if (kind === 'outbound-rtp') {
      totals.packetsSent += statNumber(entry, 'packets-sent') ?? 0;
      totals.bytesSent += statNumber(entry, 'bytes-sent') ?? 0;
      totals.nackCount += statNumber(entry, 'nack-count') ?? 0;
      totals.pliCount += statNumber(entry, 'pli-count') ?? 0;
      totals.firCount += statNumber(entry, 'fir-count') ?? 0;
    } else if (kind === 'remote-inbound-rtp') {
      totals.packetsLost += statNumber(entry, 'packets-lost') ?? 0;
      const rtt = statNumber(entry, 'round-trip-time');
      if (rtt !== null) totals.roundTripTimeMs = Math.max(totals.roundTripTimeMs ?? 0, rtt * 1000);
    }
  }
}
