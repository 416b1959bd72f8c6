/**
 * The launch lines of WebRTC viewers' pipelines: shared mode's own lines (per viewer, or one payloader and a tee
 * for all), and the choice between them and the twin's `webrtc_pipeline`. Pure text, unit-tested without
 * GStreamer.
 */
import type { WebRtcMode } from '../ipc/protocol.js';
import type { SampleHub } from './SampleHub.js';
import { WebRtcPeerError } from './errors.js';
import { offeredH264PayloadType } from './sdp.js';

/**
 * Shared mode's H.264 payloader, fed from the hub's `video` stream. No `profile-level-id` in its caps:
 * rtph264pay writes the one of the encoder's SPS (e.g. 42c01f) and a different fixed value would fail
 * negotiation; the SDP is patched to 42e01f instead (ensureH264Fmtp).
 */
const SHARED_PAYLOADER =
  'appsrc name=videosrc format=time ! h264parse ! rtph264pay config-interval=-1 aggregate-mode=zero-latency ! ' +
  'application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,packetization-mode=(string)1';
const SHARED_AUDIO =
  'appsrc name=audiosrc format=time ! rtpopuspay pt=97 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=97,clock-rate=48000 ! webrtcbin.';
const SHARED_WEBRTCBIN = 'webrtcbin name=webrtcbin bundle-policy=max-bundle';

/** The shared fan-out's pipeline: the payloader into a tee; each viewer's `valve ! webrtcbin` joins it (WebRtcFanout). */
export const FANOUT_PRODUCER_LAUNCH = `${SHARED_PAYLOADER} ! tee name=t allow-not-linked=true`;

/** A viewer on the fan-out: its webrtcbin alone, added to the fan-out's pipeline and fed payloaded RTP by the tee. */
export const FANOUT_VIEWER_LAUNCH = SHARED_WEBRTCBIN;

/**
 * The pipeline of one viewer in `shared` mode that payloads for itself: the hub's `video` stream (H.264), plus
 * its `audio` stream when that is Opus, into one bundled webrtcbin.
 *
 * @example
 * sharedLaunch(true) // 'webrtcbin name=webrtcbin bundle-policy=max-bundle appsrc name=videosrc ! ... appsrc name=audiosrc ! ...'
 */
export function sharedLaunch(withAudio: boolean): string {
  return [SHARED_WEBRTCBIN, `${SHARED_PAYLOADER} ! webrtcbin.`, withAudio ? SHARED_AUDIO : ''].join(' ').trim();
}

/**
 * A launch line made to answer a WHEP offer: its H.264 payload type 96 (in caps `payload=96`, a payloader's
 * `pt=96`, or an rtph264pay without `pt`) becomes the one the offer gives H.264.
 *
 * @example
 * withOfferedPayloadType('... ! rtph264pay ! application/x-rtp,payload=96 ! webrtcbin.', offerWith102) // '... ! rtph264pay pt=102 ! application/x-rtp,payload=102 ! webrtcbin.'
 * @throws WebRtcPeerError when the offer has no H.264 with packetization-mode=1.
 */
export function withOfferedPayloadType(launch: string, offer: string): string {
  const pt = offeredH264PayloadType(offer);
  if (pt === null) throw new WebRtcPeerError('the offer has no H.264 with packetization-mode=1 to answer with');
  return launch
    .replace(/\bpayload=96\b/g, `payload=${pt}`)
    .replace(/\bpt=96\b/g, `pt=${pt}`)
    .replace(/(rtph264pay)(?![^!]*\bpt=)/, `$1 pt=${pt}`);
}

/**
 * Whether the hub's `audio` stream carries Opus (so shared mode can send it without transcoding); false until the
 * producer has published its first audio sample.
 *
 * @example
 * hubHasOpusAudio(hub) // true when the main pipeline has `... ! opusenc ! appsink name=audio`
 */
export function hubHasOpusAudio(hub: Pick<SampleHub, 'stats'>): boolean {
  return hub.stats().audio?.caps?.startsWith('audio/x-opus') ?? false;
}

/** What decides a viewer's launch line. */
export interface PeerLaunchOptions {
  readonly mode: WebRtcMode;
  /** The twin's `webrtc_pipeline` (per-viewer mode). */
  readonly launch?: string;
  /** WHEP: the viewer's offer (the pipeline sends with its H.264 payload type; no fan-out, no audio). */
  readonly offer?: string;
  /** A shared fan-out is there to read from. */
  readonly fanout: boolean;
  /** The hub's `audio` stream is Opus (see hubHasOpusAudio). */
  readonly opusAudio: boolean;
}

/**
 * A viewer's launch line, and whether it reads from the shared fan-out (which carries video only, so a stream
 * with Opus audio has each shared viewer payload for itself).
 *
 * @example
 * peerLaunch({ mode: 'shared', fanout: true, opusAudio: false }) // { launch: FANOUT_VIEWER_LAUNCH, fanout: true }
 * @throws WebRtcPeerError in per-viewer mode without a launch line, or for an offer without usable H.264.
 */
export function peerLaunch(options: PeerLaunchOptions): { readonly launch: string; readonly fanout: boolean } {
  const offer = options.offer || null;
  const whep = offer !== null;
  const fanout = options.mode === 'shared' && options.fanout && !whep && !options.opusAudio;
  let launch: string;
  if (fanout) launch = FANOUT_VIEWER_LAUNCH;
  else if (options.mode === 'shared') launch = sharedLaunch(!whep && options.opusAudio);
  else if (options.launch && options.launch.trim() !== '') launch = options.launch;
  else throw new WebRtcPeerError('per-viewer mode needs a webrtc_pipeline launch line');
  return { launch: offer !== null ? withOfferedPayloadType(launch, offer) : launch, fanout };
}
