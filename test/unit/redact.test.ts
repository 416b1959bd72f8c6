import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maskUserinfo, Redactor, SHORT_VALUE_LENGTH } from '../../config/redact.js';

function redactorOf(values: Record<string, string>): Redactor {
  const redactor = new Redactor();
  redactor.add(new Map(Object.entries(values)));
  return redactor;
}

describe('redaction', () => {
  it('replaces expanded values with their variable name and masks URI userinfo', () => {
    const redactor = redactorOf({ PASSWORD: 'hunter2', PIN: '42', WIDTH: '64' });
    assert.equal(
      redactor.redact('Could not open "/data/hunter2/x.mp4" pin 42, width 64; rtsp://bob:pw@cam/live'),
      'Could not open "/data/${PASSWORD}/x.mp4" pin 42, width 64; rtsp://***@cam/live',
    );
    assert.equal(redactor.redact('uri=a%3Ab%40hunter2'), 'uri=a%3Ab%40${PASSWORD}');
  });

  it('hides a short value where it stands as a whole token, whatever its variable is called', () => {
    assert.equal(redactorOf({ CAM_PASS: 'ab' }).redact('x=ab'), 'x=${CAM_PASS}');
    const redactor = redactorOf({ PIN: '42', PW: 'ab' });
    assert.equal(redactor.redact('user-pw=ab pin=42&x=1'), 'user-pw=${PW} pin=${PIN}&x=1');
    assert.equal(redactor.redact('could not set property "user-pw" in element "rtspsrc" to "ab"'), 'could not set property "user-pw" in element "rtspsrc" to "${PW}"');
    assert.equal(redactor.redact("value 'ab'"), "value '${PW}'");
  });

  it('leaves the letters of a short value alone elsewhere', () => {
    const redactor = redactorOf({ CAM_PASS: 'ab', PIN: '1' });
    const line = 'about a table: 1 tab, 10 cabs, x=abc, rate=10';
    assert.equal(redactor.redact(line), line);
    assert.ok(SHORT_VALUE_LENGTH >= 3);
  });

  it('masks percent-encoded forms: lowercase hex, encodeURI, form encoding, everything encoded', () => {
    const value = 'p@ss w/rd!é';
    const redactor = redactorOf({ PASSWORD: value });
    const forms = [
      encodeURIComponent(value),
      encodeURIComponent(value).toLowerCase(),
      encodeURI(value),
      new URLSearchParams({ x: value }).toString().slice(2),
      [...Buffer.from(value)].map((b) => `%${b.toString(16)}`).join(''),
      'p%40ss%20w/rd%21%C3%A9',
    ];
    for (const form of forms) assert.equal(redactor.redact(`uri=rtsp://cam/${form}/live`), 'uri=rtsp://cam/${PASSWORD}/live', form);
  });

  it('masks JSON-escaped and GStreamer-escaped forms', () => {
    const value = 'a"b\\c/é';
    const redactor = redactorOf({ SECRET: value });
    const json = JSON.stringify(value).slice(1, -1);
    assert.equal(redactor.redact(`{"msg":"${json}"}`), '{"msg":"${SECRET}"}');
    assert.equal(redactor.redact(JSON.stringify({ msg: `x ${json} y` })), '{"msg":"x ${SECRET} y"}', 'JSON in JSON');
    assert.equal(redactor.redact('a\\u0022b\\\\c\\/\\u00e9'), '${SECRET}', 'ASCII-only JSON');
    assert.equal(redactor.redact('to "a\\"b\\\\c/\\303\\251"'), 'to "${SECRET}"', 'gst_value_serialize');
  });

  it('masks base64 of user:password, as HTTP Basic credentials are logged', () => {
    const redactor = redactorOf({ USER: 'admin', PASSWORD: 's3cr3t!' });
    const basic = Buffer.from('admin:s3cr3t!').toString('base64');
    assert.equal(redactor.redact(`Authorization: Basic ${basic}`), 'Authorization: Basic ***');
    assert.equal(redactor.redact(`auth=${Buffer.from('admin:s3cr3t!').toString('base64url')}`), 'auth=***');
    const short = redactorOf({ U: 'u', P: 'pw' });
    assert.equal(short.redact(`Basic ${Buffer.from('u:pw').toString('base64')}`), 'Basic ***', 'short user and password');
    assert.equal(redactor.redact('videotestsrc0 hlssink2 /tmp/gst-iotedge-media/segment00001.ts'), 'videotestsrc0 hlssink2 /tmp/gst-iotedge-media/segment00001.ts');
  });
});

describe('URI userinfo masking', () => {
  it('masks userinfo in a template written with a literal password', () => {
    assert.equal(maskUserinfo('rtspsrc location=rtsp://admin:admin123@10.1.1.1/axis'), 'rtspsrc location=rtsp://***@10.1.1.1/axis');
    assert.equal(maskUserinfo('a rtsp://u:p@h/x and srt+x.y://u@h b'), 'a rtsp://***@h/x and srt+x.y://***@h b');
    assert.equal(maskUserinfo('rtsp://user:p@ss@cam/live'), 'rtsp://***@cam/live', 'an unencoded @ in the password');
    assert.equal(maskUserinfo('a://b://c@d'), 'a://b://***@d');
    assert.equal(maskUserinfo('mailto:x@y, http://host/a@b, ://u@h, 1x://u@h'), 'mailto:x@y, http://host/a@b, ://u@h, 1x://u@h');
    assert.equal(maskUserinfo("location='rtsp://u:p@h/x'"), "location='rtsp://***@h/x'");
  });

  // Time grows with the input, not with its square: 8 times the input may take at most ~30 times as long (linear is
  // ~8, quadratic ~64; the old regex took 438 s on 1 MB). Ratios, best of three, so a loaded machine does not matter.
  const fastest = (fn: () => void) => Math.min(...[0, 1, 2].map(() => { const t = performance.now(); fn(); return performance.now() - t; }));
  const scalesLinearly = (make: (n: number) => string, run: (input: string) => void, n: number) => {
    const small = make(n);
    const large = make(8 * n);
    const ratio = (fastest(() => run(large)) + 0.5) / (fastest(() => run(small)) + 0.5);
    assert.ok(ratio < 30, `${large.slice(0, 12)}… (${large.length} chars): ${ratio.toFixed(1)}x the time of 1/8 of it`);
  };

  it('takes linear time on adversarial input', () => {
    const makers: Array<(n: number) => string> = [
      (n) => 'a.'.repeat(n),
      (n) => `x://${'a'.repeat(2 * n)}`,
      (n) => 'a://'.repeat(n / 2),
      (n) => `${'a-'.repeat(n / 2)}://${':'.repeat(n)}`,
      (n) => 'a://b@'.repeat(n / 3),
    ];
    for (const make of makers) scalesLinearly(make, maskUserinfo, 60_000);
  });

  it('redacts a long line in time linear in its length', () => {
    const redactor = redactorOf({ PASSWORD: 'hunter2', USER: 'admin', PIN: '42' });
    const make = (n: number) => 'rtsp://admin:hunter2@cam/x pin=42 aaaa '.repeat(n);
    scalesLinearly(make, (line) => redactor.redact(line), 3_000);
    const out = redactor.redact(make(26_000));
    assert.ok(!out.includes('hunter2') && !out.includes('=42'));
  });
});
