import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rightsChange } from '../../auth/diff.js';
import { parseAuthSettings } from '../../auth/settings.js';
import { SESSION_TOKEN_PREFIX, SESSION_TTL_MS, SignInSessions } from '../../auth/SignInSessions.js';
import { parseDesired } from '../../config/desired.js';
import { resolveDesired } from '../../config/resolve.js';
import { Redactor } from '../../config/redact.js';
import { isEngineCommand } from '../../ipc/protocol.js';
import { needOf } from '../../web/WebAuth.js';

const ENV = { ALICE_PW: 'alice-Pw:1@/', JWT_SECRET: 'x'.repeat(40) };

describe('auth in the desired document', () => {
  it('is open without an auth key: no users, no RTSP auth, no TLS, same-origin websockets', () => {
    const config = resolveDesired(parseDesired({ rtsp_pipeline: '( videotestsrc ! rtpvrawpay name=pay0 )' }), {});
    assert.equal(config.auth, null);
    assert.equal(config.tls, null);
    assert.equal(config.rtspServer.auth, null);
    assert.equal(config.rtspServer.tls, null);
    assert.equal(config.rtsp.tlsPort, 8322);
    assert.equal(config.origins.anyOrigin, false);
    assert.equal(config.origins.origins.size, 0);
    assert.deepEqual(config.warnings, []);
  });

  it('reads users from the environment, hands their secrets to the redactor and their RTSP rights to the engine', () => {
    const config = resolveDesired(
      parseDesired({
        rtsp_pipeline: '( videotestsrc ! rtpvrawpay name=pay0 )',
        rtsp: { mounts: { pub: '( videotestsrc ! rtpvrawpay name=pay0 )' }, tls_port: 9322 },
        auth: { users: { alice: { password: '$ALICE_PW', rights: ['rtsp:player', 'webrtc'] } }, anonymous: ['rtsp:pub'], jwt: { secret: '$JWT_SECRET', audience: 'gst' } },
      }),
      ENV,
    );
    assert.equal(config.auth?.users.get('alice')?.password, ENV.ALICE_PW);
    assert.deepEqual(config.rtspServer.auth, { realm: 'gst-iotedge', users: [{ name: 'alice', password: ENV.ALICE_PW, mounts: ['/player'] }], anonymousMounts: ['/pub'], requireTls: false });
    assert.equal(config.rtsp.tlsPort, 9322);
    const redactor = new Redactor();
    redactor.add(config.secrets);
    const basic = Buffer.from(`alice:${ENV.ALICE_PW}`).toString('base64');
    const line = redactor.redact(`pw ${ENV.ALICE_PW} basic ${basic} secret ${ENV.JWT_SECRET} encoded ${encodeURIComponent(ENV.ALICE_PW)}`);
    assert.ok(!line.includes(ENV.ALICE_PW) && !line.includes(basic) && !line.includes(ENV.JWT_SECRET) && !line.includes(encodeURIComponent(ENV.ALICE_PW)), line);
  });

  it('turns TLS on for require_tls, from TLS_CERT_FILE, or from the tls key; null tls_port means no RTSPS', () => {
    const required = resolveDesired(parseDesired({ auth: { require_tls: true, users: {} } }), {});
    assert.equal(required.tls?.source, 'self-signed');
    const fromEnv = resolveDesired(parseDesired({}), { TLS_CERT_FILE: '/certs/a.pem', TLS_KEY_FILE: '/certs/a.key' });
    assert.deepEqual([fromEnv.tls?.source, fromEnv.tls?.certFile, fromEnv.tls?.keyFile], ['files', '/certs/a.pem', '/certs/a.key']);
    const off = resolveDesired(parseDesired({ tls: false }), { TLS_CERT_FILE: '/certs/a.pem' });
    assert.equal(off.tls, null);
    assert.equal(parseDesired({ rtsp: { tls_port: null } }).rtsp.tlsPort, null);
  });

  it('refuses what would silently drop a protection, naming the key', () => {
    const refused = (desired: Record<string, unknown>, pattern: RegExp) => assert.throws(() => resolveDesired(parseDesired(desired), ENV), pattern);
    refused({ auth: { users: { alice: { pasword: '$ALICE_PW' } } } }, /auth\.users\.alice\.pasword is not a setting/);
    refused({ auth: { users: { alice: { password: '$NOT_SET' } } } }, /NOT_SET/);
    refused({ auth: { anonymous: ['webtrc'] } }, /webtrc|must be a right/);
    refused({ auth: { require_tls: 'yes' } }, /auth\.require_tls must be true or false/);
    refused({ http: { allowed_origins: ['https://*.example.com'] } }, /allowed_origins/);
    refused({ tls: { cert_file: 'relative.pem' } }, /tls\.cert_file must be an absolute file path/);
    refused({ rtsp: { tls_port: 70000 } }, /rtsp\.tls_port must be a port number/);
  });

  it('reads http.allowed_origins into the origin policy', () => {
    assert.equal(parseDesired({ http: { allowed_origins: ['*'] } }).origins.anyOrigin, true);
    assert.deepEqual([...parseDesired({ http: { allowed_origins: ['https://Dash.example.com:443/'] } }).origins.origins], ['https://dash.example.com']);
  });

  it('warns of a password written in the twin, in the config warnings', () => {
    const config = resolveDesired(parseDesired({ auth: { users: { bob: { password: 'literal-pw', rights: ['status'] } } } }), {});
    assert.equal(config.warnings.length, 1);
    assert.match(config.warnings[0]!, /auth\.users\.bob\.password is written in the twin/);
    assert.ok(!config.warnings[0]!.includes('literal-pw'));
  });
});

describe('the rtsp command over IPC', () => {
  const command = (config: Record<string, unknown>) => ({ type: 'rtsp', config: { port: 8554, address: '0.0.0.0', mounts: [], auth: null, tls: null, ...config } });

  it('carries users and the RTSPS certificate, checked field by field', () => {
    const auth = { realm: 'r', users: [{ name: 'a', password: 'p', mounts: '*' }], anonymousMounts: ['/pub'], requireTls: false };
    const tls = { port: 8322, address: '0.0.0.0', certificatePem: 'c', privateKeyPem: 'k' };
    assert.equal(isEngineCommand(command({})), true);
    assert.equal(isEngineCommand(command({ auth, tls })), true);
    assert.equal(isEngineCommand(command({ auth: { ...auth, users: [{ name: 'a', password: 1, mounts: '*' }] } })), false);
    assert.equal(isEngineCommand(command({ auth: { ...auth, anonymousMounts: 'all' } })), false);
    assert.equal(isEngineCommand(command({ tls: { ...tls, port: '8322' } })), false);
    assert.equal(isEngineCommand({ type: 'rtsp', config: { port: 8554, address: '0.0.0.0', mounts: [] } }), false);
  });
});

describe('what each web route needs', () => {
  it('names the right of every surface, and any right for the rest', () => {
    assert.deepEqual(needOf('GET', '/metrics'), { need: 'metrics', surface: 'metrics' });
    assert.deepEqual(needOf('GET', '/api/status/events?token=x'), { need: 'status', surface: 'http' });
    assert.deepEqual(needOf('GET', '/media/a/playlist.m3u8'), { need: 'media', surface: 'http' });
    assert.deepEqual(needOf('POST', '/whep/player'), { need: 'webrtc', surface: 'whep' });
    assert.equal(needOf('OPTIONS', '/whep/player'), null);
    assert.deepEqual(needOf('GET', '/ws'), { need: 'webrtc', surface: 'websocket' });
    assert.deepEqual(needOf('GET', '/wwwroot/webrtc.html'), { need: 'webrtc', surface: 'http' });
    assert.deepEqual(needOf('GET', '/wwwroot/hls.html'), { need: 'media', surface: 'http' });
    assert.deepEqual(needOf('GET', '/wwwroot/index.html'), { need: 'status', surface: 'http' });
    assert.deepEqual(needOf('GET', '/wwwroot/vendor/hls.js'), { need: 'any', surface: 'http' });
    assert.deepEqual(needOf('GET', '/no/such/thing'), { need: 'any', surface: 'http' });
  });

  it('reads a path as the routes do: encoded or dotted forms of a page need that page\'s right', () => {
    assert.deepEqual(needOf('GET', '/wwwroot/%69ndex.html'), { need: 'status', surface: 'http' });
    assert.deepEqual(needOf('GET', '/wwwroot/vendor/../index.html'), { need: 'status', surface: 'http' });
    assert.deepEqual(needOf('GET', '/wwwroot/./webrtc.html'), { need: 'webrtc', surface: 'http' });
    assert.deepEqual(needOf('GET', '/%6dedia/x.ts'), { need: 'media', surface: 'http' });
  });
});

describe('sign-in sessions of the pages', () => {
  const settings = (password: string, rights: string[]) => parseAuthSettings({ users: { alice: { password, rights } } }, {}).settings!;
  const alice = { id: 'user:alice', kind: 'user' as const, name: 'alice', rights: settings('a', ['webrtc']).users.get('alice')!.rights, expiresAt: null };

  it('stand for the user with the rights in force now, until they expire', () => {
    let now = 1_000;
    const sessions = new SignInSessions({ now: () => now });
    const { token, expiresAt } = sessions.issue(alice);
    assert.ok(token.startsWith(SESSION_TOKEN_PREFIX) && /^[A-Za-z0-9_-]+$/.test(token));
    assert.equal(expiresAt, 1_000 + SESSION_TTL_MS);
    const more = settings('a', ['webrtc', 'media']);
    assert.deepEqual([...sessions.principalOf(token, more)!.rights.actions].sort(), ['media', 'webrtc']);
    assert.equal(sessions.principalOf('gsts_unknown', more), null);
    assert.equal(sessions.principalOf(token, null), null, 'open: no sessions');
    now += SESSION_TTL_MS;
    assert.equal(sessions.principalOf(token, more), null);
  });

  it('end when the user\'s rights or password change, and only then', () => {
    const sessions = new SignInSessions();
    const before = settings('a', ['webrtc']);
    const { token } = sessions.issue(alice);
    sessions.revoke(rightsChange(before, settings('a', ['webrtc'])));
    assert.notEqual(sessions.principalOf(token, before), null);
    sessions.revoke(rightsChange(before, settings('b', ['webrtc'])));
    assert.equal(sessions.principalOf(token, before), null);
    assert.throws(() => sessions.issue({ ...alice, kind: 'token' }), /only a user/);
  });
});
