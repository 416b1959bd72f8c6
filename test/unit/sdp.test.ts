import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ensureH264Fmtp, offeredH264PayloadType, withCandidates } from '../../media/sdp.js';

describe('ensureH264Fmtp', () => {
  const offer = (fmtp: string | null) =>
    ['v=0', 'o=- 1 0 IN IP4 0.0.0.0', 's=-', 't=0 0', 'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=rtpmap:96 H264/90000', ...(fmtp === null ? [] : [`a=fmtp:96 ${fmtp}`]), 'a=mid:video0', ''].join('\r\n');

  it('adds an fmtp line when webrtcbin wrote none (caps not known yet)', () => {
    const out = ensureH264Fmtp(offer(null));
    assert.match(out, /\r\na=rtpmap:96 H264\/90000\r\na=fmtp:96 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1\r\na=mid:video0\r\n$/);
  });

  it("rewrites the encoder's constrained-baseline level (42c015) to 42e01f and keeps the other parameters", () => {
    const out = ensureH264Fmtp(offer('packetization-mode=1;sprop-parameter-sets=Z0LAFdoFB+wFqDAwNSgAAAMACAAAAwHkeLF1,aM48gA==;profile-level-id=42c015;level-asymmetry-allowed=1'));
    assert.match(out, /a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAFdoFB\+wFqDAwNSgAAAMACAAAAwHkeLF1,aM48gA==;profile-level-id=42e01f;level-asymmetry-allowed=1\r\n/);
  });

  it('adds packetization-mode=1 when only the profile is there', () => {
    assert.match(ensureH264Fmtp(offer('profile-level-id=42e01f')), /a=fmtp:96 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1\r\n/);
  });

  it('leaves a high-profile id alone (claiming baseline would be a lie)', () => {
    assert.match(ensureH264Fmtp(offer('packetization-mode=1;profile-level-id=640028')), /profile-level-id=640028/);
  });

  it('leaves SDP without H.264 untouched, and keeps LF line endings', () => {
    const vp8 = offer(null).replace('H264', 'VP8');
    assert.equal(ensureH264Fmtp(vp8), vp8);
    const lf = ensureH264Fmtp(offer(null).replaceAll('\r\n', '\n'));
    assert.ok(!lf.includes('\r'));
    assert.match(lf, /\na=fmtp:96 profile-level-id=42e01f;/);
  });

  it('patches every H.264 payload type, and only those', () => {
    const two = offer(null).replace('a=rtpmap:96 H264/90000', 'a=rtpmap:96 H264/90000\r\na=rtpmap:97 VP8/90000\r\na=fmtp:97 x=1\r\na=rtpmap:98 H264/90000');
    const out = ensureH264Fmtp(two);
    assert.match(out, /a=fmtp:96 profile-level-id=42e01f/);
    assert.match(out, /a=fmtp:98 profile-level-id=42e01f/);
    assert.match(out, /a=fmtp:97 x=1\r\n/);
  });
});

/** A browser-like offer: one video m-section with the given rtpmap/fmtp lines. */
function offerWith(...lines: string[]): string {
  return ['v=0', 'o=- 1 0 IN IP4 0.0.0.0', 's=-', 't=0 0', 'm=video 9 UDP/TLS/RTP/SAVPF 96 102 106 127', ...lines, ''].join('\r\n');
}

describe('offeredH264PayloadType', () => {
  it('picks constrained baseline (42e01f) in packetization mode 1 over the other H.264 payload types', () => {
    const offer = offerWith(
      'a=rtpmap:96 VP8/90000',
      'a=rtpmap:102 H264/90000',
      'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f',
      'a=rtpmap:106 H264/90000',
      'a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032',
      'a=rtpmap:127 H264/90000',
      'a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
    );
    assert.equal(offeredH264PayloadType(offer), 127);
  });

  it('falls back to any baseline profile, then to any H.264 in packetization mode 1', () => {
    const baseline = offerWith('a=rtpmap:106 H264/90000', 'a=fmtp:106 packetization-mode=1;profile-level-id=640032', 'a=rtpmap:102 H264/90000', 'a=fmtp:102 packetization-mode=1;profile-level-id=42001f');
    assert.equal(offeredH264PayloadType(baseline), 102);
    const high = offerWith('a=rtpmap:106 H264/90000', 'a=fmtp:106 packetization-mode=1;profile-level-id=640032');
    assert.equal(offeredH264PayloadType(high), 106);
  });

  it('is null for an offer without H.264 in packetization mode 1 (mode 0 only, or no fmtp)', () => {
    assert.equal(offeredH264PayloadType(offerWith('a=rtpmap:96 VP8/90000')), null);
    assert.equal(offeredH264PayloadType(offerWith('a=rtpmap:102 H264/90000', 'a=fmtp:102 packetization-mode=0;profile-level-id=42e01f')), null);
    assert.equal(offeredH264PayloadType(offerWith('a=rtpmap:102 H264/90000')), null);
  });
});

describe('withCandidates', () => {
  const answer = ['v=0', 'o=- 1 0 IN IP4 0.0.0.0', 's=-', 't=0 0', 'a=group:BUNDLE video0 audio1', 'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:video0', 'm=audio 9 UDP/TLS/RTP/SAVPF 97', 'a=mid:audio1', ''].join('\r\n');

  it('writes each candidate into its m-section, each followed by end-of-candidates', () => {
    const out = withCandidates(answer, [
      { mline: 0, candidate: 'candidate:1 1 UDP 2015363327 192.0.2.1 40000 typ host' },
      { mline: 1, candidate: 'candidate:2 1 UDP 2015363327 192.0.2.1 40002 typ host' },
      { mline: 0, candidate: 'candidate:3 1 TCP 1015021823 192.0.2.1 9 typ host tcptype active' },
    ]);
    assert.equal(
      out,
      [
        'v=0', 'o=- 1 0 IN IP4 0.0.0.0', 's=-', 't=0 0', 'a=group:BUNDLE video0 audio1',
        'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:video0',
        'a=candidate:1 1 UDP 2015363327 192.0.2.1 40000 typ host',
        'a=candidate:3 1 TCP 1015021823 192.0.2.1 9 typ host tcptype active',
        'a=end-of-candidates',
        'm=audio 9 UDP/TLS/RTP/SAVPF 97', 'a=mid:audio1',
        'a=candidate:2 1 UDP 2015363327 192.0.2.1 40002 typ host',
        'a=end-of-candidates',
        '',
      ].join('\r\n'),
    );
  });

  it('marks the first (bundle) section as complete even with no candidate, and leaves other empty sections alone', () => {
    const out = withCandidates(answer, []);
    assert.match(out, /a=mid:video0\r\na=end-of-candidates\r\nm=audio/);
    assert.match(out, /a=mid:audio1\r\n$/);
  });

  it('ends with exactly one CRLF whether or not the input ended with a line break', () => {
    const out = withCandidates(answer.replace(/\r\n$/, ''), [{ mline: 1, candidate: 'candidate:2 1 UDP 1 192.0.2.1 9 typ host' }]);
    assert.ok(out.endsWith('a=end-of-candidates\r\n'));
    assert.ok(!out.endsWith('\r\n\r\n'));
  });
});
