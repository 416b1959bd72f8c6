import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { mountsLosingAccess } from '../../auth/rtspSpec.js';
import type { RtspAuthSpec } from '../../ipc/protocol.js';
import { RtspAuthServer, runRtspsrc, type RtspsrcCheck } from '../support/rtspAuthHarness.js';
import { RtspTcpClient } from '../support/RtspTcpClient.js';
import { generateTestCerts, type TestCerts } from '../support/testCerts.js';
import { basic, describeRaw } from '../support/rtspDescribe.js';

const execFileAsync = promisify(execFile);

const SPEC: RtspAuthSpec = {
  realm: 'cams',
  users: [
    { name: 'alice', password: 'alice:pw@/%', mounts: ['/private'] },
    { name: 'bob', password: 'bob-pw', mounts: ['/public'] },
  ],
  anonymousMounts: ['/public'],
  requireTls: false,
};



/** ffprobe's verdict on a URL: the codec it found, or its error text. */
async function ffprobe(url: string): Promise<{ ok: boolean; text: string }> {
  try {
    const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-rtsp_transport', 'tcp', '-timeout', '5000000', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', url], { timeout: 15_000 });
    return { ok: true, text: stdout.trim() };
  } catch (err) {
    return { ok: false, text: String((err as { stderr?: string }).stderr ?? err) };
  }
}

/** userinfo for a URL: ffmpeg percent-decodes it, so a password with ':' '@' '/' '%' goes through encoded. */
const userinfo = (user: string, password: string) => `${encodeURIComponent(user)}:${encodeURIComponent(password)}@`;

describe('RTSP auth and RTSPS (GstRtspServer through node-gtk)', () => {
  let pki: TestCerts;
  let strangers: TestCerts;
  let server: RtspAuthServer;
  const alice = SPEC.users[0]!;
  const plain = (path: string, creds = '') => `rtsp://${creds}127.0.0.1:${server.port}${path}`;
  const tls = (path: string, creds = '') => `rtsps://${creds}localhost:${server.tlsPort}${path}`;
  const played = async (checks: RtspsrcCheck[]) => (await runRtspsrc(checks)).map((r) => (r.played ? 'played' : r.error ?? 'failed'));

  before(async () => {
    [pki, strangers] = await Promise.all([generateTestCerts(), generateTestCerts()]);
    server = await RtspAuthServer.start({ spec: SPEC, certificatePem: pki.serverCert, privateKeyPem: pki.serverKey });
  });
  after(async () => {
    await server?.close();
    await Promise.all([pki?.cleanup(), strangers?.cleanup()]);
  });

  it('answers a protected mount with 401 and both challenges, and plays a public mount without credentials', async () => {
    const refused = await describeRaw(server.port, '/private');
    assert.equal(refused.status, 401);
    const challenges = refused.headers.filter(([name]) => name === 'www-authenticate').map(([, value]) => value);
    assert.ok(challenges.some((c) => c === 'Basic realm="cams"'), challenges.join(' | '));
    assert.ok(challenges.some((c) => /^Digest realm="cams", nonce="[^"]+"/.test(c)), challenges.join(' | '));
    assert.equal((await describeRaw(server.port, '/public')).status, 200);
    const probe = await ffprobe(plain('/public'));
    assert.deepEqual(probe, { ok: true, text: 'h264' });
  });

  it('takes Basic credentials (right user 200; wrong password, wrong user, garbage 401)', async () => {
    assert.equal((await describeRaw(server.port, '/private', basic(alice.name, alice.password))).status, 200);
    assert.equal((await describeRaw(server.port, '/private', basic(alice.name, 'wrong'))).status, 401);
    assert.equal((await describeRaw(server.port, '/private', basic('bob', 'bob-pw'))).status, 401, 'bob has no right to /private');
    assert.equal((await describeRaw(server.port, '/private', 'Basic %%%garbage')).status, 401);
    // Wrong credentials on a public mount fall back to the anonymous role, which may watch it.
    assert.equal((await describeRaw(server.port, '/public', basic('alice', 'wrong'))).status, 200);
  });

  for (const methods of ['digest', 'basic'] as const) {
    it(`lets ffprobe and rtspsrc in with the right credentials over ${methods === 'digest' ? 'Digest' : 'Basic'} only, and not without or with wrong ones`, async () => {
      await server.setAuth(SPEC, methods);
      try {
        const good = await ffprobe(plain('/private', userinfo(alice.name, alice.password)));
        assert.deepEqual(good, { ok: true, text: 'h264' }, good.text);
        for (const url of [plain('/private'), plain('/private', userinfo(alice.name, 'wrong')), plain('/private', userinfo('mallory', 'x'))]) {
          const bad = await ffprobe(url);
          assert.equal(bad.ok, false, url);
          assert.match(bad.text, /401 Unauthorized/, url);
        }
        const results = await played([
          { url: plain('/private'), user: alice.name, password: alice.password },
          { url: plain('/private') },
          { url: plain('/private'), user: alice.name, password: 'wrong' },
          { url: plain('/public') },
        ]);
        assert.equal(results[0], 'played');
        assert.match(results[1]!, /Unauthorized \(401\)/);
        assert.match(results[2]!, /Unauthorized \(401\)/);
        assert.equal(results[3], 'played');
      } finally {
        await server.setAuth(SPEC);
      }
    });
  }

  it('serves RTSPS on its own port: rtspsrc validates the test CA through tls-database, refuses an unknown CA; ffprobe plays', async () => {
    const results = await runRtspsrc([
      { url: tls('/private'), user: alice.name, password: alice.password, caFile: pki.caCertPath },
      { url: tls('/private'), caFile: pki.caCertPath },
      { url: tls('/public'), caFile: strangers.caCertPath },
      { url: tls('/public'), caFile: pki.caCertPath },
    ]);
    assert.equal(results[0]!.played, true, results[0]!.error ?? '');
    assert.match(results[1]!.error ?? '', /Unauthorized \(401\)/);
    assert.equal(results[2]!.played, false);
    // rtspsrc reports a refused certificate only as "Failed to connect"; the same mount with the right CA (next) plays.
    assert.match(results[2]!.error ?? '', /Failed to connect/);
    assert.equal(results[3]!.played, true, results[3]!.error ?? '');
    // ffprobe does not validate rtsps:// certificates (reference/rtsp-auth-tls.md); it still has to sign in.
    assert.deepEqual(await ffprobe(tls('/private', userinfo(alice.name, alice.password))), { ok: true, text: 'h264' });
    assert.equal((await ffprobe(tls('/private'))).ok, false);
    // TLS takes over the whole port: plain RTSP there gets nowhere.
    assert.equal((await ffprobe(`rtsp://127.0.0.1:${server.tlsPort}/public`)).ok, false);
  });

  it('changes rights live: the new users apply at once and a public viewer keeps playing through the change', async () => {
    const viewer = new RtspTcpClient(plain('/public'));
    await viewer.start();
    try {
      const next: RtspAuthSpec = { ...SPEC, users: [{ name: 'bob', password: 'bob-pw', mounts: ['/public', '/private'] }] };
      assert.deepEqual(mountsLosingAccess(SPEC, next, ['/public', '/private']), ['/private']);
      await server.setAuth(next);
      const framesAtChange = viewer.frames.length;
      assert.equal((await describeRaw(server.port, '/private', basic(alice.name, alice.password))).status, 401, 'alice is gone');
      assert.equal((await describeRaw(server.port, '/private', basic('bob', 'bob-pw'))).status, 200, 'bob may watch /private now');
      const results = await played([
        { url: plain('/private'), user: 'bob', password: 'bob-pw' },
        { url: plain('/private'), user: alice.name, password: alice.password },
        { url: tls('/private'), user: 'bob', password: 'bob-pw', caFile: pki.caCertPath },
      ]);
      assert.equal(results[0], 'played');
      assert.match(results[1]!, /Unauthorized \(401\)/);
      assert.equal(results[2], 'played');
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(viewer.disconnected, false);
      assert.ok(viewer.frames.length > framesAtChange, `public viewer frames ${framesAtChange} -> ${viewer.frames.length}`);
      assert.deepEqual(server.errors, []);
      // New tokens and permissions each time: nothing handed over was changed (that would be a GStreamer CRITICAL).
      assert.deepEqual(server.stderr.filter((line) => /CRITICAL|WARNING/.test(line)), []);
    } finally {
      viewer.close();
      await server.setAuth(SPEC);
    }
  });

  it('with require_tls, the plain server asks for no credentials (401 without a challenge) while RTSPS takes them', async () => {
    await server.setAuth({ ...SPEC, requireTls: true });
    try {
      const refused = await describeRaw(server.port, '/private', basic(alice.name, alice.password));
      assert.equal(refused.status, 401);
      assert.deepEqual(refused.headers.filter(([name]) => name === 'www-authenticate'), []);
      assert.equal((await ffprobe(plain('/private', userinfo(alice.name, alice.password)))).ok, false);
      assert.equal((await describeRaw(server.port, '/public')).status, 200);
      const results = await played([
        { url: plain('/private'), user: alice.name, password: alice.password },
        { url: tls('/private'), user: alice.name, password: alice.password, caFile: pki.caCertPath },
      ]);
      assert.notEqual(results[0], 'played');
      assert.equal(results[1], 'played');
    } finally {
      await server.setAuth(SPEC);
    }
  });

  it('without auth (open), both servers play every mount without credentials', async () => {
    await server.setAuth(null);
    try {
      assert.equal((await describeRaw(server.port, '/private')).status, 200);
      const results = await played([{ url: plain('/private') }, { url: tls('/private'), caFile: pki.caCertPath }]);
      assert.deepEqual(results, ['played', 'played']);
    } finally {
      await server.setAuth(SPEC);
    }
  });
});
