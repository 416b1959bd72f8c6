import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_CANDIDATE_LENGTH, MAX_SIGNAL_BYTES, parseSignal } from '../../ipc/signalling.js';

const SDP = 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\n';
const CANDIDATE = 'candidate:842163049 1 udp 1677729535 192.0.2.7 46154 typ host generation 0 ufrag EsAw network-cost 999';

describe('parseSignal', () => {
  it('accepts an answer and an offer in the shape the original uses', () => {
    for (const type of ['answer', 'offer'] as const) {
      const result = parseSignal(JSON.stringify({ sdp: { type, sdp: SDP } }));
      assert.deepEqual(result, { ok: true, msg: { sdp: { type, sdp: SDP } } });
    }
  });

  it('accepts an ICE candidate with just candidate and sdpMLineIndex', () => {
    const result = parseSignal(JSON.stringify({ ice: { candidate: CANDIDATE, sdpMLineIndex: 0 } }));
    assert.deepEqual(result, { ok: true, msg: { ice: { candidate: CANDIDATE, sdpMLineIndex: 0 } } });
  });

  it("accepts a browser's RTCIceCandidate.toJSON() as a page written for the original sends it", () => {
    const ice = { candidate: CANDIDATE, sdpMid: '0', sdpMLineIndex: 1, usernameFragment: 'EsAw' };
    assert.deepEqual(parseSignal(JSON.stringify({ ice })), { ok: true, msg: { ice } });
    const nulls = { candidate: CANDIDATE, sdpMid: null, sdpMLineIndex: 0, usernameFragment: null };
    assert.deepEqual(parseSignal(JSON.stringify({ ice: nulls })), { ok: true, msg: { ice: nulls } });
  });

  it('accepts an empty candidate (end of candidates) and an "a=candidate:" line', () => {
    assert.equal(parseSignal('{"ice":{"candidate":"","sdpMLineIndex":0}}').ok, true);
    assert.equal(parseSignal(JSON.stringify({ ice: { candidate: `a=${CANDIDATE}`, sdpMLineIndex: 0 } })).ok, true);
  });

  it('accepts LF-only SDP and a message of exactly the size limit', () => {
    assert.equal(parseSignal(JSON.stringify({ sdp: { type: 'answer', sdp: SDP.replaceAll('\r\n', '\n') } })).ok, true);
    const base = JSON.stringify({ sdp: { type: 'answer', sdp: SDP } });
    const padded = JSON.stringify({ sdp: { type: 'answer', sdp: SDP + 'a=x:'.padEnd(MAX_SIGNAL_BYTES - base.length - 4, 'y') + '\r\n' } });
    assert.equal(Buffer.byteLength(padded), MAX_SIGNAL_BYTES);
    assert.equal(parseSignal(padded).ok, true);
  });

  it('does not carry unknown values through: the message is rebuilt from the checked fields', () => {
    const result = parseSignal(JSON.stringify({ ice: { candidate: CANDIDATE, sdpMLineIndex: 2 } }));
    assert.ok(result.ok);
    assert.deepEqual(Object.keys(result.msg), ['ice']);
  });

  const sdp = (body: unknown) => JSON.stringify({ sdp: body });
  const ice = (body: unknown) => JSON.stringify({ ice: body });
  const goodIce = { candidate: CANDIDATE, sdpMLineIndex: 0 };
  const malformed: Array<[string, string, RegExp]> = [
    ['an empty message', '', /empty/],
    ['whitespace only', '   \n', /empty/],
    ['text that is not JSON', 'hello', /not JSON/],
    ['truncated JSON', '{"sdp":{"type":"answer"', /not JSON/],
    ['JSON null', 'null', /JSON object/],
    ['a JSON number', '42', /JSON object/],
    ['a JSON string', '"sdp"', /JSON object/],
    ['a JSON array', '[{"sdp":{}}]', /JSON object/],
    ['an empty object', '{}', /exactly one field.*none/],
    ['an unknown top-level key', '{"bye":true}', /exactly one field/],
    ['both sdp and ice', JSON.stringify({ sdp: { type: 'answer', sdp: SDP }, ice: goodIce }), /exactly one field/],
    ['a known key next to an unknown one', JSON.stringify({ ice: goodIce, id: 1 }), /exactly one field/],
    ['a __proto__ key', `{"__proto__":{"polluted":true}}`, /exactly one field/],
    ['the key in another case', JSON.stringify({ SDP: { type: 'answer', sdp: SDP } }), /exactly one field/],
    ['sdp as a string', sdp(SDP), /sdp must be an object/],
    ['sdp null', sdp(null), /sdp must be an object/],
    ['sdp as an array', sdp([SDP]), /sdp must be an object/],
    ['sdp without type', sdp({ sdp: SDP }), /sdp.type/],
    ['sdp type pranswer', sdp({ type: 'pranswer', sdp: SDP }), /sdp.type/],
    ['sdp type rollback', sdp({ type: 'rollback', sdp: SDP }), /sdp.type/],
    ['sdp type in capitals', sdp({ type: 'ANSWER', sdp: SDP }), /sdp.type/],
    ['sdp type as a number', sdp({ type: 3, sdp: SDP }), /sdp.type/],
    ['sdp text missing', sdp({ type: 'answer' }), /sdp.sdp must be a string/],
    ['sdp text as a number', sdp({ type: 'answer', sdp: 0 }), /sdp.sdp must be a string/],
    ['sdp text empty', sdp({ type: 'answer', sdp: '' }), /must start with "v=0"/],
    ['sdp text that is not SDP', sdp({ type: 'answer', sdp: '<html>' }), /must start with "v=0"/],
    ['sdp without a media section', sdp({ type: 'answer', sdp: 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n' }), /no media section/],
    ['sdp with a NUL byte', sdp({ type: 'answer', sdp: `${SDP}a=x\u0000y\r\n` }), /control characters/],
    ['sdp with an escape character', sdp({ type: 'answer', sdp: `${SDP}a=\u001b[31m\r\n` }), /control characters/],
    ['sdp with an extra field', sdp({ type: 'answer', sdp: SDP, extra: 1 }), /unknown field.*extra/],
    ['ice as a string', ice(CANDIDATE), /ice must be an object/],
    ['ice null', ice(null), /ice must be an object/],
    ['ice without candidate', ice({ sdpMLineIndex: 0 }), /ice.candidate must be a string/],
    ['ice candidate null', ice({ candidate: null, sdpMLineIndex: 0 }), /ice.candidate must be a string/],
    ['ice candidate without the candidate: prefix', ice({ candidate: '1 1 udp 1 192.0.2.7 9 typ host', sdpMLineIndex: 0 }), /must start with "candidate:"/],
    ['ice candidate with a line break (SDP injection)', ice({ candidate: `${CANDIDATE}\r\na=fingerprint:sha-256 00`, sdpMLineIndex: 0 }), /line breaks/],
    ['ice candidate too long', ice({ candidate: `candidate:${'1'.repeat(MAX_CANDIDATE_LENGTH)}`, sdpMLineIndex: 0 }), /longer than/],
    ['ice without sdpMLineIndex', ice({ candidate: CANDIDATE }), /sdpMLineIndex must be an integer/],
    ['ice sdpMLineIndex as a string', ice({ candidate: CANDIDATE, sdpMLineIndex: '0' }), /sdpMLineIndex must be an integer/],
    ['ice sdpMLineIndex fractional', ice({ candidate: CANDIDATE, sdpMLineIndex: 0.5 }), /sdpMLineIndex must be an integer/],
    ['ice sdpMLineIndex negative', ice({ candidate: CANDIDATE, sdpMLineIndex: -1 }), /between 0 and/],
    ['ice sdpMLineIndex huge', ice({ candidate: CANDIDATE, sdpMLineIndex: 1e9 }), /between 0 and/],
    ['ice sdpMLineIndex null', ice({ candidate: CANDIDATE, sdpMLineIndex: null }), /sdpMLineIndex must be an integer/],
    ['ice sdpMid as a number', ice({ ...goodIce, sdpMid: 0 }), /sdpMid must be a string/],
    ['ice sdpMid too long', ice({ ...goodIce, sdpMid: 'm'.repeat(1000) }), /sdpMid is longer/],
    ['ice usernameFragment with a line break', ice({ ...goodIce, usernameFragment: 'a\nb' }), /usernameFragment contains control/],
    ['ice with an unknown field', ice({ ...goodIce, foo: 'bar' }), /unknown field.*foo/],
    ['a message far over the limit', JSON.stringify({ sdp: { type: 'answer', sdp: SDP + 'a'.repeat(MAX_SIGNAL_BYTES) } }), /larger than/],
    ['a message over the limit in bytes but not in characters', JSON.stringify({ sdp: { type: 'answer', sdp: SDP + 'é'.repeat(MAX_SIGNAL_BYTES / 2) } }), /larger than/],
    ['a megabyte of whitespace', ' '.repeat(1 << 20), /larger than/],
  ];

  for (const [what, text, reason] of malformed) {
    it(`refuses ${what}, saying why`, () => {
      const result = parseSignal(text);
      assert.equal(result.ok, false);
      assert.ok(!result.ok && result.reason.length > 0);
      assert.match(!result.ok ? result.reason : '', reason);
    });
  }

  it(`has at least 30 malformed cases above (${malformed.length})`, () => {
    assert.ok(malformed.length >= 30);
  });

  it('refuses a message of exactly one byte over the limit', () => {
    const base = JSON.stringify({ sdp: { type: 'answer', sdp: SDP } });
    const over = JSON.stringify({ sdp: { type: 'answer', sdp: SDP + 'a=x:'.padEnd(MAX_SIGNAL_BYTES - base.length - 3, 'y') + '\r\n' } });
    assert.equal(Buffer.byteLength(over), MAX_SIGNAL_BYTES + 1);
    assert.equal(parseSignal(over).ok, false);
  });
});
