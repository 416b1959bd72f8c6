import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ModuleProcess } from '../support/ModuleProcess.js';
import { runRtspsrc } from '../support/rtspAuthHarness.js';
import { RtspTcpClient } from '../support/RtspTcpClient.js';
import { generateTestCerts, type TestCerts } from '../support/testCerts.js';
import { basic, describeRaw } from '../support/rtspDescribe.js';

const execFileAsync = promisify(execFile);

/** A cheap H.264 test pattern per mount. */
const MOUNT = (pattern: string) =>
  `( videotestsrc is-live=true pattern=${pattern} ! video/x-raw,width=160,height=120,framerate=15/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! rtph264pay name=pay0 pt=96 config-interval=-1 )`;
const ALICE_PW = 'alice:S3cret@/%';
const BOB_PW = 'bob-Pw-4711';
const ENV = { ALICE_PW, BOB_PW };


/** ffmpeg percent-decodes userinfo: a password with ':' '@' '/' '%' goes through encoded. */
const userinfo = (user: string, password: string) => `${encodeURIComponent(user)}:${encodeURIComponent(password)}@`;

/** ffprobe's verdict on a URL: the codec it found, or its error text. */
async function ffprobe(url: string): Promise<{ ok: boolean; text: string }> {
  try {
    const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-rtsp_transport', 'tcp', '-timeout', '5000000', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', url], { timeout: 15_000 });
    return { ok: true, text: stdout.trim() };
  } catch (err) {
    return { ok: false, text: String((err as { stderr?: string }).stderr ?? err) };
  }
}

/** Resolves once `condition` holds, checked every 50 ms; rejects after `timeoutMs` with `what`. */
async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('RTSP and RTSPS with users, in the running module', () => {
  let pki: TestCerts;
  let strangers: TestCerts;
  let module: ModuleProcess;
  let port = 0;
  let tlsPort = 0;
  const clients: RtspTcpClient[] = [];
  const desired = (auth: Record<string, unknown>) => ({
    rtsp_pipeline: MOUNT('ball'),
    rtsp: { port: 0, address: '127.0.0.1', tls_port: 0, mounts: { pub: MOUNT('snow'), cam2: MOUNT('smpte') } },
    http: { port: 0, address: '127.0.0.1' },
    metrics: { port: null },
    tls: { cert_file: pki.serverCertPath, key_file: pki.serverKeyPath },
    auth,
  });
  const USERS = {
    users: { alice: { password: '$ALICE_PW', rights: ['rtsp:player'] }, bob: { password: '$BOB_PW', rights: ['rtsp:cam2'] } },
    anonymous: ['rtsp:pub'],
  };
  const plain = (path: string, creds = '') => `rtsp://${creds}127.0.0.1:${port}${path}`;
  const tls = (path: string, creds = '') => `rtsps://${creds}localhost:${tlsPort}${path}`;
  const viewer = (url: string, options?: { ca?: string }) => {
    const client = new RtspTcpClient(url, options);
    clients.push(client);
    return client;
  };

  before(async () => {
    [pki, strangers] = await Promise.all([generateTestCerts(), generateTestCerts()]);
    module = new ModuleProcess({ desired: desired(USERS), env: ENV });
    const listening = await module.waitForLog((l) => l.event === 'rtsp-listening');
    port = listening.port as number;
    tlsPort = listening.tlsPort as number;
    assert.ok(tlsPort > 0, 'RTSPS listens');
  });
  after(async () => {
    if (process.env.DUMP_MODULE_LOG) writeFileSync(process.env.DUMP_MODULE_LOG, module.output.join('\n'));
    for (const c of clients) c.close();
    await module?.stop();
    if (module) rmSync(module.dir, { recursive: true, force: true });
    await Promise.all([pki?.cleanup(), strangers?.cleanup()]);
  });

  it('answers a protected mount without credentials with 401 and a Basic and a Digest challenge, and plays a public one beside it', async () => {
    const refused = await describeRaw(port, '/player');
    assert.equal(refused.status, 401);
    assert.ok(refused.challenges.some((c) => c === 'Basic realm="gst-iotedge"'), refused.challenges.join(' | '));
    assert.ok(refused.challenges.some((c) => /^Digest realm="gst-iotedge", nonce="[^"]+"/.test(c)), refused.challenges.join(' | '));
    assert.deepEqual(await ffprobe(plain('/pub')), { ok: true, text: 'h264' });
    const reported = module.reported().properties.reported;
    assert.equal(reported.auth, 'protected');
    assert.equal(reported.tls?.source, 'files');
  });

  it('lets ffprobe and rtspsrc in with Digest for the right user only, and not without or with wrong credentials', async () => {
    assert.deepEqual(await ffprobe(plain('/player', userinfo('alice', ALICE_PW))), { ok: true, text: 'h264' });
    for (const url of [plain('/player'), plain('/player', userinfo('alice', 'wrong')), plain('/player', userinfo('mallory', 'x')), plain('/player', userinfo('bob', BOB_PW))]) {
      const refused = await ffprobe(url);
      assert.equal(refused.ok, false, url);
      assert.match(refused.text, /401 Unauthorized/, url);
    }
    const results = await runRtspsrc([
      { url: plain('/player'), user: 'alice', password: ALICE_PW },
      { url: plain('/player') },
      { url: plain('/player'), user: 'alice', password: 'wrong' },
      { url: plain('/cam2'), user: 'bob', password: BOB_PW },
      { url: plain('/pub') },
    ]);
    assert.deepEqual(results.map((r) => (r.played ? 'played' : /Unauthorized \(401\)/.test(r.error ?? '') ? '401' : r.error)), ['played', '401', '401', 'played', 'played']);
  });

  it('takes Basic credentials from a client that sends them (and refuses wrong ones)', async () => {
    // The viewer first: gst-rtsp-server answers 503 to a DESCRIBE that comes while the shared media of the last
    // client to leave is still being unprepared (a DESCRIBE-only probe followed at once by a viewer hit it).
    const client = viewer(plain('/player', userinfo('alice', ALICE_PW)));
    await client.start(15_000);
    assert.equal((await describeRaw(port, '/player', basic('alice', ALICE_PW))).status, 200);
    assert.equal((await describeRaw(port, '/player', basic('alice', 'wrong'))).status, 401);
    assert.equal((await describeRaw(port, '/cam2', basic('alice', ALICE_PW))).status, 401, 'alice has no right to /cam2');
    await until(() => client.frames.length >= 10, 15_000, 'a Basic viewer receives frames');
    client.close();
  });

  it('serves RTSPS on its own port with the same users: rtspsrc validates the CA through tls-database, an unknown CA is refused', async () => {
    const results = await runRtspsrc([
      { url: tls('/player'), user: 'alice', password: ALICE_PW, caFile: pki.caCertPath },
      { url: tls('/player'), caFile: pki.caCertPath },
      { url: tls('/pub'), caFile: strangers.caCertPath },
      { url: tls('/pub'), caFile: pki.caCertPath },
    ]);
    assert.equal(results[0]!.played, true, results[0]!.error ?? '');
    assert.match(results[1]!.error ?? '', /Unauthorized \(401\)/);
    assert.equal(results[2]!.played, false);
    assert.match(results[2]!.error ?? '', /Failed to connect/);
    assert.equal(results[3]!.played, true, results[3]!.error ?? '');
    // ffprobe does not validate rtsps:// certificates (reference/rtsp-auth-tls.md), but it still has to sign in.
    assert.deepEqual(await ffprobe(tls('/player', userinfo('alice', ALICE_PW))), { ok: true, text: 'h264' });
    assert.equal((await ffprobe(tls('/player'))).ok, false);
    assert.equal((await ffprobe(`rtsp://127.0.0.1:${tlsPort}/pub`)).ok, false, 'plain RTSP on the RTSPS port');
    // A Basic client over TLS, validating the CA with Node's TLS.
    const secure = viewer(tls('/player', userinfo('alice', ALICE_PW)), { ca: pki.caCert });
    await secure.start(15_000);
    await until(() => secure.frames.length >= 10, 15_000, 'an RTSPS viewer receives frames');
    secure.close();
  });

  it('applies a live change of users: a viewer who lost access is disconnected, viewers of other mounts keep playing', async () => {
    const public1 = viewer(plain('/pub'));
    const bob = viewer(plain('/cam2', userinfo('bob', BOB_PW)));
    const alice = viewer(plain('/player', userinfo('alice', ALICE_PW)));
    const bobSecure = viewer(tls('/cam2', userinfo('bob', BOB_PW)), { ca: pki.caCert });
    await Promise.all([public1, bob, alice, bobSecure].map((c) => c.start(15_000)));
    await until(() => [public1, bob, alice, bobSecure].every((c) => c.frames.length >= 5), 15_000, 'four viewers playing');
    const before = module.reportedVersion();
    // alice moves from /player to /cam2; bob and the anonymous /pub are unchanged.
    const version = module.writeDesired(desired({ ...USERS, users: { ...USERS.users, alice: { password: '$ALICE_PW', rights: ['rtsp:cam2'] } } }));
    await module.waitForReported((r) => r.config.appliedVersion === version, { after: before });
    await Promise.race([alice.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('alice still watching /player')), 10_000))]);
    assert.equal(alice.disconnected, true);
    const frames = [public1, bob, bobSecure].map((c) => c.frames.length);
    await until(() => [public1, bob, bobSecure].every((c, i) => c.frames.length >= frames[i]! + 15), 15_000, 'unaffected viewers keep receiving frames');
    assert.deepEqual([public1, bob, bobSecure].map((c) => c.disconnected), [false, false, false]);
    assert.equal((await describeRaw(port, '/player', basic('alice', ALICE_PW))).status, 401);
    assert.equal((await describeRaw(port, '/cam2', basic('alice', ALICE_PW))).status, 200);
  });

  it('with require_tls, the plain server asks no one for credentials while RTSPS takes them; public mounts stay open', async () => {
    const before = module.reportedVersion();
    const version = module.writeDesired(desired({ ...USERS, require_tls: true }));
    await module.waitForReported((r) => r.config.appliedVersion === version, { after: before });
    const refused = await describeRaw(port, '/player', basic('alice', ALICE_PW));
    assert.equal(refused.status, 401);
    assert.deepEqual(refused.challenges, [], 'no challenge on plain RTSP');
    assert.equal((await describeRaw(port, '/pub')).status, 200);
    const results = await runRtspsrc([
      { url: plain('/player'), user: 'alice', password: ALICE_PW },
      { url: tls('/player'), user: 'alice', password: ALICE_PW, caFile: pki.caCertPath },
    ]);
    assert.notEqual(results[0]!.played, true);
    assert.equal(results[1]!.played, true, results[1]!.error ?? '');
  });

  it('without the auth key again, every mount is open, as before auth existed', async () => {
    const before = module.reportedVersion();
    const open = desired(USERS) as Record<string, unknown>;
    delete open.auth;
    const version = module.writeDesired(open);
    const reported = await module.waitForReported((r) => r.config.appliedVersion === version, { after: before });
    assert.equal(reported.auth, 'open');
    assert.equal((await describeRaw(port, '/player')).status, 200);
    assert.deepEqual(await ffprobe(tls('/cam2')), { ok: true, text: 'h264' });
    assert.ok(module.logs.some((l) => l.event === 'auth-open' && l.level === 40), 'a warn line says the module is open');
  });

  it('never shows a password in its output or reported properties', () => {
    const text = [...module.output, JSON.stringify(module.reported())].join('\n');
    for (const secret of [ALICE_PW, BOB_PW, encodeURIComponent(ALICE_PW), Buffer.from(`alice:${ALICE_PW}`).toString('base64')]) {
      assert.ok(!text.includes(secret), `output holds ${secret}`);
    }
  });
});
