import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Admission, clientKey, MAX_TRACKED_ADDRESSES } from '../../web/admission.js';

const limits = { maxPerAddress: 2, ratePerSecond: 5, burst: 5, addressRatePerSecond: 1, addressBurst: 3 };

describe('WebRTC admission', () => {
  it('counts IPv4 clients by address and IPv6 ones by /64', () => {
    assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
    assert.equal(clientKey('::1'), '0:0:0:0::/64');
    assert.equal(clientKey(undefined), 'unknown');
  });

  it('bounds the viewers one address holds, and frees the slot when one goes', () => {
    let now = 0;
    const admission = new Admission(limits, () => now);
    assert.equal(admission.admit('a').ok, true);
    assert.equal(admission.admit('a').ok, true);
    const third = admission.admit('a');
    assert.equal(third.ok, false);
    assert.match(third.ok ? '' : third.reason, /too many WebRTC viewers from one address \(2\)/);
    assert.equal(admission.admit('b').ok, true, 'another address is not affected');
    admission.release('a');
    now += 1_000;
    assert.equal(admission.admit('a').ok, true);
  });

  it('bounds the rate of new viewers per address and overall, with a retry time', () => {
    let now = 0;
    const admission = new Admission({ ...limits, maxPerAddress: 100 }, () => now);
    for (let i = 0; i < 3; i++) assert.equal(admission.admit('a').ok, true);
    const fast = admission.admit('a');
    assert.deepEqual(fast, { ok: false, reason: 'new WebRTC viewers from this address too fast', retryAfterS: 1 });
    assert.equal(admission.admit('b').ok, true);
    assert.equal(admission.admit('c').ok, true);
    const overall = admission.admit('d');
    assert.equal(overall.ok, false);
    assert.match(overall.ok ? '' : overall.reason, /^new WebRTC viewers too fast$/);
    now += 1_000;
    assert.equal(admission.admit('a').ok, true, 'a token back after a second');
  });

  it('remembers a bounded number of addresses, whatever comes', () => {
    const admission = new Admission({ ...limits, ratePerSecond: 1e9, burst: 1e9 });
    for (let i = 0; i < 20_000; i++) {
      admission.admit(`10.0.${i >> 8}.${i & 255}`);
      admission.release(`10.0.${i >> 8}.${i & 255}`);
    }
    assert.equal(admission.trackedAddresses, MAX_TRACKED_ADDRESSES);
    assert.equal(admission.admit('x').ok, true);
  });
});
