import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ensureH264Fmtp } from '../../media/sdp.js';

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
