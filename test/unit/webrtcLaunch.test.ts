import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WebRtcPeerError } from '../../media/errors.js';
import { FANOUT_PRODUCER_LAUNCH, FANOUT_VIEWER_LAUNCH, hubHasOpusAudio, peerLaunch, sharedLaunch, withOfferedPayloadType } from '../../media/webrtcLaunch.js';

const OFFER_102 = ['v=0', 'm=video 9 UDP/TLS/RTP/SAVPF 102', 'a=rtpmap:102 H264/90000', 'a=fmtp:102 packetization-mode=1;profile-level-id=42e01f', ''].join('\r\n');
const VP8_ONLY = ['v=0', 'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=rtpmap:96 VP8/90000', ''].join('\r\n');

describe('sharedLaunch', () => {
  it('bundles the hub video (H.264, payload 96, packetization-mode 1) into webrtcbin, with Opus audio when asked', () => {
    const video = sharedLaunch(false);
    assert.match(video, /^webrtcbin name=webrtcbin bundle-policy=max-bundle appsrc name=videosrc format=time ! h264parse ! rtph264pay /);
    assert.match(video, /encoding-name=H264,payload=96,clock-rate=90000,packetization-mode=\(string\)1 ! webrtcbin\.$/);
    assert.doesNotMatch(video, /audiosrc/);
    assert.doesNotMatch(video, /profile-level-id/, 'the encoder\'s own profile goes into the SDP, patched later');
    const both = sharedLaunch(true);
    assert.ok(both.startsWith(video));
    assert.match(both, / appsrc name=audiosrc format=time ! rtpopuspay pt=97 ! .*encoding-name=OPUS,payload=97,clock-rate=48000 ! webrtcbin\.$/);
  });

  it('payloads the fan-out with the same payloader as a shared viewer, into a tee', () => {
    const payloader = sharedLaunch(false).replace(/^webrtcbin name=webrtcbin bundle-policy=max-bundle /, '').replace(/ ! webrtcbin\.$/, '');
    assert.equal(FANOUT_PRODUCER_LAUNCH, `${payloader} ! tee name=t allow-not-linked=true`);
    assert.equal(FANOUT_VIEWER_LAUNCH, 'webrtcbin name=webrtcbin bundle-policy=max-bundle');
  });
});

describe('withOfferedPayloadType', () => {
  it('rewrites payload 96 in caps and a payloader\'s pt to the offer\'s H.264 payload type', () => {
    assert.equal(
      withOfferedPayloadType('videotestsrc ! x264enc ! rtph264pay pt=96 ! application/x-rtp,payload=96 ! webrtcbin name=webrtcbin', OFFER_102),
      'videotestsrc ! x264enc ! rtph264pay pt=102 ! application/x-rtp,payload=102 ! webrtcbin name=webrtcbin',
    );
  });

  it('gives an rtph264pay without pt the offered one, and leaves other numbers alone', () => {
    assert.equal(
      withOfferedPayloadType('x264enc ! rtph264pay config-interval=-1 ! application/x-rtp,payload=96 ! webrtcbin. rtpopuspay pt=97', OFFER_102),
      'x264enc ! rtph264pay pt=102 config-interval=-1 ! application/x-rtp,payload=102 ! webrtcbin. rtpopuspay pt=97',
    );
    assert.equal(withOfferedPayloadType('rtph264pay pt=100 ! application/x-rtp,payload=960', OFFER_102), 'rtph264pay pt=100 ! application/x-rtp,payload=960');
  });

  it('refuses an offer without H.264 in packetization mode 1', () => {
    assert.throws(() => withOfferedPayloadType(sharedLaunch(false), VP8_ONLY), (error: unknown) => error instanceof WebRtcPeerError && /no H\.264 with packetization-mode=1/.test(error.message));
  });
});

describe('peerLaunch', () => {
  it('puts a shared viewer on the fan-out when there is one and the hub has no Opus audio', () => {
    assert.deepEqual(peerLaunch({ mode: 'shared', fanout: true, opusAudio: false }), { launch: FANOUT_VIEWER_LAUNCH, fanout: true });
  });

  it('has a shared viewer payload for itself with Opus audio (the fan-out carries video only), or without a fan-out', () => {
    assert.deepEqual(peerLaunch({ mode: 'shared', fanout: true, opusAudio: true }), { launch: sharedLaunch(true), fanout: false });
    assert.deepEqual(peerLaunch({ mode: 'shared', fanout: false, opusAudio: false }), { launch: sharedLaunch(false), fanout: false });
  });

  it('answers a WHEP offer on its own video-only pipeline, with the offered payload type', () => {
    assert.deepEqual(peerLaunch({ mode: 'shared', offer: OFFER_102, fanout: true, opusAudio: true }), { launch: withOfferedPayloadType(sharedLaunch(false), OFFER_102), fanout: false });
  });

  it('runs the twin\'s webrtc_pipeline per viewer, and needs one', () => {
    const launch = 'videotestsrc ! x264enc ! rtph264pay ! application/x-rtp,payload=96 ! webrtcbin name=webrtcbin';
    assert.deepEqual(peerLaunch({ mode: 'per-viewer', launch, fanout: true, opusAudio: false }), { launch, fanout: false });
    for (const missing of [undefined, '', '   ']) {
      assert.throws(() => peerLaunch({ mode: 'per-viewer', launch: missing, fanout: false, opusAudio: false }), /needs a webrtc_pipeline launch line/);
    }
  });
});

describe('hubHasOpusAudio', () => {
  it('is true only once the hub\'s audio stream carries Opus caps', () => {
    const hub = (audio: { caps: string | null } | undefined) => ({
      stats: (): Record<string, { buffers: number; bytes: number; caps: string | null }> => (audio ? { audio: { buffers: 0, bytes: 0, ...audio } } : {}),
    });
    assert.equal(hubHasOpusAudio(hub(undefined)), false);
    assert.equal(hubHasOpusAudio(hub({ caps: null })), false);
    assert.equal(hubHasOpusAudio(hub({ caps: 'audio/mpeg, mpegversion=(int)4' })), false);
    assert.equal(hubHasOpusAudio(hub({ caps: 'audio/x-opus, channel-mapping-family=(int)0' })), true);
  });
});
