import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { AccessControl, OPEN_PRINCIPAL, type LoginFailure, type Principal } from '../../auth/AccessControl.js';
import { maskTokenParameter, parseAuthorization, parseToken } from '../../auth/credentials.js';
import { rightsChange } from '../../auth/diff.js';
import { LruMap } from '../../auth/LruMap.js';
import { parseOriginPolicy, originAllowed, SAME_ORIGIN_ONLY, whepCorsHeaders, whepPreflight } from '../../auth/origin.js';
import { hashPassword, parsePasswordHash, verifyPassword } from '../../auth/passwordHash.js';
import { clientKey, RateLimiter } from '../../auth/RateLimiter.js';
import { grants, lenientRights, parseRights, rightsKey } from '../../auth/rights.js';
import { mountsLosingAccess, rtspAuthSpec } from '../../auth/rtspSpec.js';
import { parseAuthSettings, type AuthSettings } from '../../auth/settings.js';
import { ConfigError } from '../../config/errors.js';
import { Redactor } from '../../config/redact.js';

/** Cheap scrypt parameters: the format and the checks are the same, the tests stay fast. */
const FAST = { N: 1024, r: 8, p: 1 };
const env = { ALICE_PASSWORD: 'alice-s3cret!', BOB_PW: 'b0b:with:colons', SHORT: 'ab' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;

function settingsOf(value: unknown, environment: NodeJS.ProcessEnv = env): AuthSettings {
  const { settings } = parseAuthSettings(value, environment);
  assert.ok(settings);
  return settings;
}

describe('rights', () => {
  it('grants whole actions, single RTSP mounts and everything with "*"', () => {
    const r = parseRights(['rtsp:player', 'webrtc']);
    assert.equal(grants(r, 'rtsp', 'player'), true);
    assert.equal(grants(r, 'rtsp', '/player'), true);
    assert.equal(grants(r, 'rtsp', 'cam2'), false);
    assert.equal(grants(r, 'rtsp'), false);
    assert.equal(grants(r, 'webrtc'), true);
    assert.equal(grants(r, 'metrics'), false);
    assert.equal(grants(parseRights(['rtsp:*']), 'rtsp', 'anything'), true);
    assert.equal(rightsKey(parseRights(['*'])), '*');
  });

  it('refuses unknown rights and resources on actions that have none', () => {
    assert.throws(() => parseRights(['webtrc']), /unknown right "webtrc"/);
    assert.throws(() => parseRights(['status:x']), /only rtsp rights name a resource/);
    assert.throws(() => parseRights(['rtsp:../x']), /mount name/);
  });

  it('reads token claims leniently: rights of other services are skipped', () => {
    const r = lenientRights(['openid', 'profile', 'rtsp:cam2', 'media']);
    assert.equal(rightsKey(r), 'media rtsp:cam2');
  });
});

describe('auth settings', () => {
  it('is open without an auth key', () => {
    assert.deepEqual(parseAuthSettings(undefined, env), { settings: null, secrets: new Map(), warnings: [] });
    assert.equal(parseAuthSettings(null, env).settings, null);
  });

  it('expands passwords from the environment and hands every value and its Basic form to the redactor', () => {
    const { settings, secrets } = parseAuthSettings(
      { users: { alice: { password: '$ALICE_PASSWORD', rights: ['rtsp:player'] }, bob: { password: '${BOB_PW}', roles: ['viewer'] } }, roles: { viewer: ['webrtc', 'media'] } },
      env,
    );
    assert.equal(settings?.users.get('alice')?.password, 'alice-s3cret!');
    assert.equal(rightsKey(settings!.users.get('bob')!.rights), 'media webrtc');
    const redactor = new Redactor();
    redactor.add(secrets);
    const header = basic('alice', 'alice-s3cret!');
    const leaked = `pw=alice-s3cret! enc=${encodeURIComponent('b0b:with:colons')} hdr=${header}`;
    const shown = redactor.redact(leaked);
    assert.ok(!shown.includes('alice-s3cret'), shown);
    assert.ok(!shown.includes('b0b'), shown);
    assert.ok(!shown.includes(header.slice(6)), shown);
    assert.match(shown, /\$\{ALICE_PASSWORD\}/);
  });

  it('redacts even a two-character password expanded from a variable with an innocent name', () => {
    const { secrets } = parseAuthSettings({ users: { u: { password: '$SHORT' } } }, env);
    const redactor = new Redactor();
    redactor.add(secrets);
    // Short values are masked where they stand whole (config/redact.ts): a value of key=value, a quoted string.
    assert.equal(redactor.redact('password=ab user "ab"'), 'password=${SHORT} user "${SHORT}"');
    assert.equal(redactor.redact('tab cab'), 'tab cab', 'not inside other words');
  });

  it('names key and value in errors, never a password', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['yes', /^auth must be an object$/],
      [{ require_tls: 'yes' }, /auth.require_tls must be true or false, got "yes"/],
      [{ users: { alice: { password: '$NOPE' } } }, /auth.users.alice.password: environment variable NOPE is not set/],
      [{ users: { alice: {} } }, /auth.users.alice needs exactly one of "password" or "password_hash"/],
      [{ users: { 'a:b': { password: 'x' } } }, /auth.users: "a:b" is not a user name/],
      [{ users: { alice: { password: '$ALICE_PASSWORD', rights: ['webtrc'] } } }, /auth.users.alice.rights: unknown right "webtrc"/],
      [{ users: { alice: { password: '$ALICE_PASSWORD', roles: ['admin'] } } }, /auth.users.alice.roles: no role "admin"/],
      [{ users: { alice: { password_hash: 'scrypt:N=3,r=8,p=1:aaaaaaaaaaa:bbbbbbbbbbbbbbbbbbbbbb' } } }, /auth.users.alice.password_hash: the hash's N must be a power of two/],
      [{ users: { alice: { password_hash: 'scrypt:N=1048576,r=32,p=1:aaaaaaaaaaa:bbbbbbbbbbbbbbbbbbbbbb' } } }, /more than 256 MiB/],
      [{ userz: {} }, /auth.userz is not a setting/],
      [{ jwt: { secret: 'short', audience: 'x' } }, /auth.jwt.secret must be at least 32 characters/],
      [{ jwt: { jwks_url: 'http://idp.example.com/keys', issuer: 'i', audience: 'a' } }, /auth.jwt.jwks_url must be https/],
      [{ jwt: { jwks_url: 'https://idp.example.com/keys', audience: 'a' } }, /auth.jwt.issuer is required with jwks_url/],
      [{ jwt: { secret: 'x'.repeat(40) } }, /auth.jwt.audience is required/],
      [{ jwt: { secret: 'x'.repeat(40), audience: 'a', algorithms: ['none'] } }, /auth.jwt.algorithms: "none" is not usable/],
      [{ jwt: { secret: 'x'.repeat(40), audience: 'a', algorithms: ['RS256'] } }, /"RS256" is not usable with a secret/],
      [{ jwt: { public_key: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', audience: 'a' } }, /not a public key Node can read/],
      [{ rate_limit: { max_failures: 0 } }, /auth.rate_limit.max_failures must be a whole number from 1 to 1000, got 0/],
    ];
    for (const [value, message] of cases) {
      assert.throws(() => parseAuthSettings(value, env), (e: unknown) => e instanceof ConfigError && message.test(e.message), `${JSON.stringify(value)} -> ${message}`);
    }
    try {
      parseAuthSettings({ users: { alice: { password: '$ALICE_PASSWORD', rights: ['bad'] } } }, env);
    } catch (err) {
      assert.ok(!(err as Error).message.includes('alice-s3cret'));
    }
  });

  it('warns about a password written in the twin and RTSP rights on a hash-only user', async () => {
    const hash = await hashPassword('pw-for-hash', FAST);
    const { warnings } = parseAuthSettings({ users: { a: { password: 'literal', rights: ['webrtc'] }, b: { password_hash: hash, rights: ['rtsp:*'] } } }, env);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!, /auth.users.a.password is written in the twin/);
    assert.match(warnings[1]!, /auth.users.b has RTSP rights but only a password_hash/);
    assert.ok(warnings.every((w) => !w.includes('literal') && !w.includes(hash)));
  });
});

describe('password hashes', () => {
  it('round-trips, refuses a wrong password, and holds no "$" (so $VAR expansion leaves it alone)', async () => {
    const stored = await hashPassword('é correct horse', FAST);
    assert.match(stored, /^scrypt:N=1024,r=8,p=1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$/);
    assert.equal(await verifyPassword('é correct horse', parsePasswordHash(stored)), true);
    // NFC: "é" as e + combining accent is the same password.
    assert.equal(await verifyPassword('e\u0301 correct horse', parsePasswordHash(stored)), true);
    assert.equal(await verifyPassword('wrong', parsePasswordHash(stored)), false);
  });

  it('npm run hash-password reads the password from standard input and prints a hash that verifies', async () => {
    const cli = fileURLToPath(new URL('../../auth/hashPasswordCli.js', import.meta.url));
    const out = spawnSync(process.execPath, [cli], { input: 'from stdin, 8+ chars\n', encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    assert.equal(await verifyPassword('from stdin, 8+ chars', parsePasswordHash(out.stdout.trim())), true);
    const short = spawnSync(process.execPath, [cli], { input: 'short', encoding: 'utf8' });
    assert.equal(short.status, 1);
    assert.match(short.stderr, /fewer than 8 characters/);
  });

  it('refuses malformed hashes without quoting them', () => {
    for (const bad of ['', 'scrypt', 'bcrypt:N=1024,r=8,p=1:aaaa:bbbb', 'scrypt:N=1024,r=8:aaaaaaaaaaa:bbbbbbbbbbbbbbbbbbbbbb', 'scrypt:N=1024,r=8,p=1:a+b/:bbbbbbbbbbbbbbbbbbbbbb', 'scrypt:N=1024,r=8,p=1:aa:bbbbbbbbbbbbbbbbbbbbbb']) {
      assert.throws(() => parsePasswordHash(bad), (e: unknown) => e instanceof Error && e.name === 'PasswordHashFormatError' && (bad.length < 8 || !e.message.includes(bad)));
    }
  });
});

describe('Authorization header parsing', () => {
  it('reads Basic (UTF-8, colons in the password) and Bearer, with any scheme case', () => {
    assert.deepEqual(parseAuthorization(basic('alice', 'p:a:ss')), { kind: 'basic', user: 'alice', password: 'p:a:ss' });
    assert.deepEqual(parseAuthorization(`basic ${Buffer.from('jörg:pässwörd').toString('base64')}`), { kind: 'basic', user: 'jörg', password: 'pässwörd' });
    assert.deepEqual(parseAuthorization('BEARER abc.def-_~+/='), { kind: 'bearer', token: 'abc.def-_~+/=' });
    assert.deepEqual(parseAuthorization(undefined), { kind: 'none' });
    assert.deepEqual(parseAuthorization('   '), { kind: 'none' });
  });

  it('refuses hostile headers with fixed reasons that never quote the input', () => {
    const hostile = [
      'Basic',
      'Basic %%%%',
      'Basic YWxpY2U', // not a multiple of 4
      `Basic ${Buffer.from('no-colon').toString('base64')}`,
      `Basic ${Buffer.from(':empty-user').toString('base64')}`,
      `Basic ${Buffer.from([0xff, 0xfe, 0x3a, 0x41]).toString('base64')}`, // not UTF-8
      `Basic ${Buffer.from('a\u0000b:c').toString('base64')}`,
      `Basic ${'A'.repeat(9000)}`,
      'Bearer',
      'Bearer a b',
      'Bearer <script>',
      'Bearer tökén',
      'Digest username="alice"',
      'Negotiate YII=',
      'Basic YWxpY2U6cHc=\r\nX-Injected: 1',
      ['Basic YTpi', 'Basic YTpi'],
    ];
    for (const header of hostile) {
      const parsed = parseAuthorization(header);
      assert.equal(parsed.kind, 'malformed', JSON.stringify(header).slice(0, 60));
      if (parsed.kind === 'malformed') assert.ok(parsed.reason.length < 80 && !/YWxp|script|alice|tökén/.test(parsed.reason), parsed.reason);
    }
  });

  it('reads a token query parameter and masks it in URLs for logs', () => {
    assert.deepEqual(parseToken('eyJ.a.b'), { kind: 'bearer', token: 'eyJ.a.b' });
    assert.equal(parseToken(null).kind, 'none');
    assert.equal(parseToken('').kind, 'malformed');
    assert.equal(parseToken('a b').kind, 'malformed');
    assert.equal(maskTokenParameter('/ws?mode=shared&token=eyJ.a.b&x=1'), '/ws?mode=shared&token=***&x=1');
    assert.equal(maskTokenParameter('/wwwroot/webrtc.html?TOKEN=abc#f'), '/wwwroot/webrtc.html?TOKEN=***#f');
  });
});

describe('failed-login limit', () => {
  it('blocks a client after max_failures within the window, for block_s, and forgets it after', () => {
    let now = 0;
    const limiter = new RateLimiter({ maxFailures: 3, windowMs: 1000, blockMs: 5000, maxClients: 10 }, () => now);
    assert.equal(limiter.fail('10.0.0.1'), 0);
    assert.equal(limiter.fail('10.0.0.1'), 0);
    assert.equal(limiter.fail('::ffff:10.0.0.1'), 5000); // the same client over IPv4-mapped IPv6
    assert.equal(limiter.retryAfterMs('10.0.0.1'), 5000);
    assert.equal(limiter.retryAfterMs('10.0.0.2'), 0);
    now = 4999;
    assert.equal(limiter.retryAfterMs('10.0.0.1'), 1);
    now = 5000;
    assert.equal(limiter.retryAfterMs('10.0.0.1'), 0);
  });

  it('starts a new window when the old one is over, and a success clears the count', () => {
    let now = 0;
    const limiter = new RateLimiter({ maxFailures: 2, windowMs: 1000, blockMs: 5000, maxClients: 10 }, () => now);
    limiter.fail('a');
    now = 1500;
    assert.equal(limiter.fail('a'), 0);
    limiter.succeed('a');
    assert.equal(limiter.fail('a'), 0);
  });

  it('keeps bounded memory however many addresses fail', () => {
    const limiter = new RateLimiter({ maxFailures: 5, windowMs: 60_000, blockMs: 60_000, maxClients: 100 });
    for (let i = 0; i < 10_000; i++) limiter.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    assert.equal(limiter.size, 100);
  });

  it('limits an IPv6 client by its /64', () => {
    assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(clientKey('::1'), '0:0:0:0::/64');
    assert.equal(clientKey('127.0.0.1'), '127.0.0.1');
  });

  it('LRU drops expired and least recently used entries', () => {
    let now = 0;
    const map = new LruMap<string, number>(2, () => now);
    map.set('a', 1, 100);
    map.set('b', 2, 100);
    map.get('a');
    map.set('c', 3, 100);
    assert.equal(map.get('b'), undefined);
    assert.equal(map.get('a'), 1);
    now = 100;
    assert.equal(map.get('a'), undefined);
  });
});

describe('origin policy', () => {
  it('allows same origin by default, by host and port, and clients that send no Origin', () => {
    const p = SAME_ORIGIN_ONLY;
    assert.equal(originAllowed(p, { origin: 'http://cam.local:8000', host: 'cam.local:8000' }), true);
    assert.equal(originAllowed(p, { origin: 'https://cam.local', host: 'cam.local:443' }), true);
    assert.equal(originAllowed(p, { origin: undefined, host: 'cam.local:8000' }), true);
    assert.equal(originAllowed(p, { origin: 'http://cam.local:8001', host: 'cam.local:8000' }), false);
    assert.equal(originAllowed(p, { origin: 'https://evil.example', host: 'cam.local:8000' }), false);
    assert.equal(originAllowed(p, { origin: 'null', host: 'cam.local:8000' }), false);
    assert.equal(originAllowed(p, { origin: 'http://cam.local:8000', host: undefined }), false);
    assert.equal(originAllowed(p, { origin: 'http://cam.local:8000', host: 'evil@cam.local:8000' }), false);
  });

  it('reads an allow-list, normalising origins, and refuses paths and partial wildcards', () => {
    const p = parseOriginPolicy(['https://Dash.Example.com:443/'], 'http.allowed_origins');
    assert.equal(originAllowed(p, { origin: 'https://dash.example.com', host: 'cam:8000' }), true);
    assert.equal(originAllowed(p, { origin: 'https://dash.example.com.evil.io', host: 'cam:8000' }), false);
    assert.equal(originAllowed(parseOriginPolicy(['*'], 'x'), { origin: 'https://any.where', host: 'cam' }), true);
    for (const bad of [['https://a.example/path'], ['*.example.com'], ['https://*.example.com'], ['ftp://a'], 'https://a', [3], ['*', 'https://a']]) {
      assert.throws(() => parseOriginPolicy(bad, 'http.allowed_origins'), /http.allowed_origins/);
    }
  });

  it('answers WHEP preflights from allowed origins only, for WHEP methods and headers', () => {
    const p = parseOriginPolicy(['https://dash.example.com'], 'x');
    const ok = whepPreflight(p, { origin: 'https://dash.example.com', host: 'cam:8000', method: 'POST', headers: 'Content-Type, Authorization' });
    assert.equal(ok.allowed, true);
    if (ok.allowed) {
      assert.equal(ok.headers['access-control-allow-origin'], 'https://dash.example.com');
      assert.equal(ok.headers.vary, 'Origin');
      assert.match(ok.headers['access-control-allow-headers']!, /authorization/);
      assert.match(ok.headers['access-control-expose-headers']!, /Location/);
    }
    assert.equal(whepPreflight(p, { origin: 'https://evil.example', host: 'cam:8000', method: 'POST', headers: 'content-type' }).allowed, false);
    assert.equal(whepPreflight(p, { origin: 'https://dash.example.com', host: 'cam:8000', method: 'PUT', headers: '' }).allowed, false);
    assert.equal(whepPreflight(p, { origin: 'https://dash.example.com', host: 'cam:8000', method: 'POST', headers: 'x-evil' }).allowed, false);
    assert.deepEqual(whepCorsHeaders(p, { origin: undefined, host: 'cam' }), { allowed: true, headers: {} });
    assert.equal(whepCorsHeaders(p, { origin: 'https://evil.example', host: 'cam' }).allowed, false);
  });
});

describe('access control', () => {
  const address = '192.0.2.7';

  it('is open without settings: everyone may do everything, credentials or not', async () => {
    const access = new AccessControl(null);
    assert.equal(access.mode, 'open');
    const result = await access.authenticate({ address, secure: false, authorization: 'Basic garbage' });
    assert.deepEqual(result, { ok: true, principal: OPEN_PRINCIPAL });
    assert.equal(access.authorize(OPEN_PRINCIPAL, 'metrics'), true);
  });

  it('authenticates plain and hashed users, and authorizes by their rights', async () => {
    const hash = await hashPassword('hashed-pw', FAST);
    const access = new AccessControl(settingsOf({ users: { alice: { password: '$ALICE_PASSWORD', rights: ['rtsp:player'] }, ops: { password_hash: hash, rights: ['status', 'metrics'] } }, anonymous: ['media'] }));
    assert.equal(access.mode, 'protected');
    const alice = await access.authenticate({ address, secure: false, authorization: basic('alice', 'alice-s3cret!') });
    assert.ok(alice.ok);
    assert.equal(alice.principal.id, 'user:alice');
    assert.equal(access.authorize(alice.principal, 'rtsp', '/player'), true);
    assert.equal(access.authorize(alice.principal, 'rtsp', '/cam2'), false);
    const ops = await access.authenticate({ address, secure: false, credentials: { user: 'ops', password: 'hashed-pw' } });
    assert.ok(ops.ok);
    assert.equal(access.authorize(ops.principal, 'metrics'), true);
    const anon = await access.authenticate({ address, secure: false });
    assert.ok(anon.ok);
    assert.equal(anon.principal.kind, 'anonymous');
    assert.equal(access.authorize(anon.principal, 'media'), true);
    assert.equal(access.authorize(anon.principal, 'status'), false);
    assert.deepEqual(access.refusal(anon.principal, false), { status: 401, reason: 'sign-in-required', message: 'sign in required', challenges: ['Basic realm="gst-iotedge", charset="UTF-8"'], retryAfterS: null });
    assert.equal(access.refusal(alice.principal, false).status, 403);
  });

  it('refuses wrong passwords and unknown users alike, counts them, and names only declared users', async () => {
    const access = new AccessControl(settingsOf({ users: { alice: { password: '$ALICE_PASSWORD' } }, rate_limit: { max_failures: 3 } }));
    const failures: LoginFailure[] = [];
    access.observer.on('loginfailed', (f) => failures.push(f));
    const wrong = await access.authenticate({ address, secure: false, authorization: basic('alice', 'nope') });
    const unknown = await access.authenticate({ address, secure: false, authorization: basic('alice-s3cret!', 'x') });
    assert.ok(!wrong.ok && !unknown.ok);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.message, unknown.message);
    assert.deepEqual(wrong.challenges, unknown.challenges);
    assert.deepEqual(failures.map((f) => [f.reason, f.user, f.method]), [['bad-password', 'alice', 'basic'], ['unknown-user', null, 'basic']]);
    // The third failure blocks; then even the right password is not looked at.
    const third = await access.authenticate({ address, secure: false, authorization: 'Basic %%%' });
    assert.ok(!third.ok);
    assert.equal(third.status, 429);
    const right = await access.authenticate({ address, secure: false, authorization: basic('alice', 'alice-s3cret!') });
    assert.ok(!right.ok);
    assert.equal(right.status, 429);
    assert.ok((right.retryAfterS ?? 0) > 0);
    // Another client is not affected.
    assert.ok((await access.authenticate({ address: '192.0.2.8', secure: false, authorization: basic('alice', 'alice-s3cret!') })).ok);
    assert.ok(JSON.stringify(failures).indexOf('alice-s3cret') < 0);
  });

  it('takes no credentials over plain text when TLS is required, and does not offer a challenge there', async () => {
    const access = new AccessControl(settingsOf({ require_tls: true, users: { alice: { password: '$ALICE_PASSWORD', rights: ['webrtc'] } } }));
    const plain = await access.authenticate({ address, secure: false, authorization: basic('alice', 'alice-s3cret!') });
    assert.ok(!plain.ok);
    assert.equal(plain.status, 403);
    assert.equal(plain.reason, 'tls-required');
    assert.deepEqual(plain.challenges, []);
    const anon = await access.authenticate({ address, secure: false });
    assert.ok(anon.ok);
    assert.deepEqual(access.refusal(anon.principal, false).challenges, []);
    assert.equal(access.refusal(anon.principal, true).status, 401);
    assert.ok((await access.authenticate({ address, secure: true, authorization: basic('alice', 'alice-s3cret!') })).ok);
  });

  it('refuses two credentials in one request', async () => {
    const access = new AccessControl(settingsOf({ users: { alice: { password: '$ALICE_PASSWORD' } } }));
    const result = await access.authenticate({ address, secure: false, authorization: basic('alice', 'alice-s3cret!'), token: 'abc' });
    assert.ok(!result.ok);
    assert.equal(result.reason, 'malformed');
  });

  it('update() says whose rights changed and applies the new settings at once', async () => {
    const hash = await hashPassword('hashed-pw', FAST);
    const before = settingsOf({
      users: { alice: { password: '$ALICE_PASSWORD', rights: ['rtsp:player'] }, bob: { password: '$BOB_PW', rights: ['webrtc'] }, carol: { password_hash: hash, rights: ['media'] }, dave: { password: 'd', rights: ['status'] } },
      anonymous: ['status'],
    });
    const after = settingsOf({
      users: { alice: { password: '$ALICE_PASSWORD', rights: ['rtsp:player'] }, bob: { password: '$BOB_PW', rights: ['webrtc', 'media'] }, carol: { password_hash: hash, rights: ['media'] }, dave: { password: 'd2', rights: ['status'] } },
      anonymous: ['status'],
      rate_limit: { max_failures: 3 },
    });
    const access = new AccessControl(before);
    const bob = await access.authenticate({ address, secure: false, authorization: basic('bob', 'b0b:with:colons') });
    assert.ok(bob.ok);
    const change = access.update(after);
    assert.deepEqual([...change.users].sort(), ['bob', 'dave']);
    assert.equal(change.anonymous, false);
    assert.equal(change.tokens, false);
    assert.equal(change.none, false);
    const user = (name: string): Principal => ({ id: `user:${name}`, kind: 'user', name, rights: parseRights([]), expiresAt: null });
    assert.equal(change.affects(user('alice'), false), false);
    assert.equal(change.affects(user('bob'), false), true);
    const again = await access.authenticate({ address, secure: false, authorization: basic('bob', 'b0b:with:colons') });
    assert.ok(again.ok);
    assert.equal(access.authorize(again.principal, 'media'), true);
    assert.equal(rightsChange(after, after).none, true);
  });

  it('open <-> protected and require_tls switched on touch everyone concerned', () => {
    const s = settingsOf({ users: { alice: { password: '$ALICE_PASSWORD' } } });
    const tls = settingsOf({ require_tls: true, users: { alice: { password: '$ALICE_PASSWORD' } } });
    assert.equal(rightsChange(null, s).affects(OPEN_PRINCIPAL, false), true);
    const change = rightsChange(s, tls);
    const alice: Principal = { id: 'user:alice', kind: 'user', name: 'alice', rights: parseRights([]), expiresAt: null };
    assert.equal(change.affects(alice, false), true);
    assert.equal(change.affects(alice, true), false);
  });

  it('RTSP data holds users with a password and RTSP rights, and the anonymous mounts', async () => {
    const hash = await hashPassword('hashed-pw', FAST);
    const spec = rtspAuthSpec(settingsOf({
      users: { alice: { password: '$ALICE_PASSWORD', rights: ['rtsp:player', 'rtsp:cam2'] }, bob: { password: '$BOB_PW', rights: ['rtsp:*'] }, carol: { password_hash: hash, rights: ['rtsp:*'] }, dave: { password: 'd', rights: ['webrtc'] } },
      anonymous: ['rtsp:public'],
      realm: 'cams',
    }));
    assert.deepEqual(spec, {
      realm: 'cams',
      users: [{ name: 'alice', password: 'alice-s3cret!', mounts: ['/cam2', '/player'] }, { name: 'bob', password: 'b0b:with:colons', mounts: '*' }],
      anonymousMounts: ['/public'],
      requireTls: false,
    });
    assert.equal(rtspAuthSpec(null), null);
  });

  it('names the RTSP mounts where someone loses access, so only their viewers are closed', () => {
    const base = { realm: 'r', users: [{ name: 'a', password: 'p', mounts: ['/x'] as string[] }, { name: 'b', password: 'q', mounts: '*' as const }], anonymousMounts: ['/pub'] as string[], requireTls: false };
    const mounts = ['/x', '/y', '/pub'];
    assert.deepEqual(mountsLosingAccess(base, base, mounts), []);
    assert.deepEqual(mountsLosingAccess(base, { ...base, users: [base.users[1]!] }, mounts), ['/x']);
    assert.deepEqual(mountsLosingAccess(base, { ...base, users: [{ ...base.users[0]!, password: 'new' }, base.users[1]!] }, mounts), ['/x']);
    assert.deepEqual(mountsLosingAccess(base, { ...base, anonymousMounts: [] }, mounts), ['/pub']);
    assert.deepEqual(mountsLosingAccess(base, { ...base, users: [...base.users, { name: 'c', password: 'r', mounts: '*' }] }, mounts), []);
    assert.deepEqual(mountsLosingAccess(null, base, mounts), ['/x', '/y']);
    assert.deepEqual(mountsLosingAccess(base, null, mounts), []);
    assert.deepEqual(mountsLosingAccess(base, { ...base, requireTls: true }, mounts), ['/x', '/y', '/pub']);
  });
});
