import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { gatheredRecvonlyOffer, launchChromium } from '../support/browser.js';
import { ModuleProcess } from '../support/ModuleProcess.js';
import { generateTestCerts, type TestCerts } from '../support/testCerts.js';

const execFileAsync = promisify(execFile);

const ALICE_PW = 'Alice-S3cret:pw';
const BOB_PW = 'bob-metrics-Pw';
const AUDIENCE = 'gst-iotedge-test';
const ISSUER = 'https://issuer.test';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One HTTP(S) request, validating the test CA on https. */
function fetchRaw(url: string, options: { method?: string; headers?: Record<string, string>; body?: string; ca?: string } = {}): Promise<Answer> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(target, { method: options.method ?? 'GET', headers: options.headers, ...(target.protocol === 'https:' ? { ca: options.ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${url}: no answer`)));
    req.end(options.body);
  });
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Base64 SHA-256 of a key's SubjectPublicKeyInfo: what chromium's --ignore-certificate-errors-spki-list takes. */
function spkiHash(privateKeyPem: string): string {
  const spki = createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/** The SHA-256 fingerprint (AB:CD:...) of the certificate a TLS server presents. */
function presentedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe('the web server with users, tokens and TLS', () => {
  let pki: TestCerts;
  let renewed: TestCerts;
  let certDir: string;
  let mediaRoot: string;
  let module: ModuleProcess;
  let browser: Browser;
  let https: string;
  let http: string;
  let metricsPort = 0;
  let rtspsPort = 0;
  let signing: KeyObject;
  let stranger: KeyObject;
  const contexts: BrowserContext[] = [];

  const token = (claims: Record<string, unknown>, options: { key?: KeyObject; expiresIn?: string | number } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject('carol')
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? '10m')
      .sign(options.key ?? signing);

  const desired = (auth: Record<string, unknown>) => ({
    pipeline:
      'videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! ' +
      'video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 ! tee name=t t. ! queue ! appsink name=video max-buffers=30 drop=true sync=false ' +
      `t. ! queue ! hlssink2 location=${mediaRoot}/segment%05d.ts playlist-location=${mediaRoot}/playlist.m3u8 target-duration=1 max-files=10`,
    rtsp_pipeline: '( appsrc name=videosrc ! h264parse ! rtph264pay config-interval=-1 name=pay0 pt=96 )',
    http: { port: 0, address: '127.0.0.1', media_root: mediaRoot, allowed_origins: ['https://dashboard.example.com'] },
    metrics: { port: 0, address: '127.0.0.1' },
    rtsp: { port: 0, address: '127.0.0.1', tls_port: 0 },
    tls: { cert_file: join(certDir, 'server.pem'), key_file: join(certDir, 'server.key') },
    auth,
  });
  const AUTH = {
    users: { alice: { password: '$ALICE_PW', rights: ['webrtc', 'media', 'status'] }, bob: { password: '$BOB_PW', rights: ['metrics'] } },
    jwt: { public_key: '$JWT_PUBLIC_KEY', audience: AUDIENCE, issuer: ISSUER },
  };

  async function newPage(options: { user?: string; password?: string } = {}): Promise<Page> {
    const context = await browser.newContext(options.user ? { httpCredentials: { username: options.user, password: options.password! } } : {});
    contexts.push(context);
    return context.newPage();
  }
  const frames = (page: Page, more: number) => page.waitForFunction(`window.player.framesDecoded >= ${more}`, null, { timeout: 30_000 });

  before(async () => {
    [pki, renewed] = await Promise.all([generateTestCerts(), generateTestCerts()]);
    certDir = mkdtempSync(join(tmpdir(), 'gst-iotedge-webcerts-'));
    copyFileSync(pki.serverCertPath, join(certDir, 'server.pem'));
    copyFileSync(pki.serverKeyPath, join(certDir, 'server.key'));
    mediaRoot = mkdtempSync(join(tmpdir(), 'gst-iotedge-authmedia-'));
    ({ privateKey: signing } = generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    ({ privateKey: stranger } = generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    const publicPem = createPublicKey(signing).export({ type: 'spki', format: 'pem' }).toString();
    module = new ModuleProcess({ desired: desired(AUTH), env: { ALICE_PW, BOB_PW, JWT_PUBLIC_KEY: publicPem, TLS_FILE_POLL_MS: '500' } });
    const [web, metrics, rtsp] = await Promise.all([
      module.waitForLog((l) => l.event === 'http-listening'),
      module.waitForLog((l) => l.event === 'metrics-listening'),
      module.waitForLog((l) => l.event === 'rtsp-listening'),
    ]);
    assert.equal(web.tls, true);
    https = `https://127.0.0.1:${web.port as number}`;
    http = `http://127.0.0.1:${web.port as number}`;
    metricsPort = metrics.port as number;
    rtspsPort = rtsp.tlsPort as number;
    // Trust exactly the two test keys (the second one is the renewal's), not every certificate.
    browser = await launchChromium([`--ignore-certificate-errors-spki-list=${spkiHash(pki.serverKey)},${spkiHash(renewed.serverKey)}`]);
    await module.waitForPipeline('main', 'playing');
  });
  after(async () => {
    await Promise.all(contexts.map((c) => c.close()));
    await browser?.close();
    await module?.stop();
    for (const dir of [module?.dir, certDir, mediaRoot]) if (dir) rmSync(dir, { recursive: true, force: true });
    await Promise.all([pki?.cleanup(), renewed?.cleanup()]);
  });

  it('refuses webrtc.html without credentials (401, the sign-in form) and plays it over HTTPS and WSS signed in with the browser prompt', async () => {
    const refused = await fetchRaw(`${https}/wwwroot/webrtc.html`, { ca: pki.caCert, headers: { accept: 'text/html' } });
    assert.equal(refused.status, 401);
    assert.match(String(refused.headers['www-authenticate']), /Basic realm="gst-iotedge"/);
    assert.match(refused.body, /<form id="gst-signin"/);
    // A wrong password typed into the browser's prompt, then the prompt cancelled: the sign-in page shows.
    const wrong = await newPage({ user: 'alice', password: 'not-it' });
    assert.equal((await wrong.goto(`${https}/wwwroot/webrtc.html`))?.status(), 401);
    await wrong.waitForSelector('#gst-signin:not([hidden])', { timeout: 10_000 });
    assert.equal(await wrong.evaluate('typeof window.player'), 'undefined', 'the player never ran');

    const page = await newPage({ user: 'alice', password: ALICE_PW });
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    const loaded = await page.goto(`${https}/wwwroot/webrtc.html`);
    assert.equal(loaded?.status(), 200);
    await frames(page, 30);
    assert.equal(await page.evaluate('window.player.state'), 'connected');
    // The page traded the password for a session token: websockets cannot carry the browser's Basic credentials.
    assert.match(sockets[0] ?? '', /^wss:\/\/127\.0\.0\.1:\d+\/ws\?token=gsts_/);
  });

  it('plays webrtc.html opened with ?token=<JWT>, and signs in through the page\'s form', async () => {
    const jwt = await token({ rights: ['webrtc'] });
    const withToken = await newPage();
    assert.equal((await withToken.goto(`${https}/wwwroot/webrtc.html?token=${jwt}`))?.status(), 200);
    await frames(withToken, 30);

    const form = await newPage({ user: 'alice', password: 'typo' });
    assert.equal((await form.goto(`${https}/wwwroot/webrtc.html`))?.status(), 401);
    await form.waitForSelector('#gst-signin:not([hidden])', { timeout: 10_000 });
    await form.fill('#gst-signin input[name=user]', 'alice');
    await form.fill('#gst-signin input[name=password]', ALICE_PW);
    await Promise.all([form.waitForURL(/webrtc\.html\?token=gsts_/, { timeout: 15_000 }), form.click('#gst-signin button')]);
    await frames(form, 30);
  });

  it('plays hls.html over HTTPS for a signed-in user, its media requests carrying the token; refuses it without', async () => {
    assert.equal((await (await newPage({ user: 'bob', password: BOB_PW })).goto(`${https}/wwwroot/hls.html`))?.status(), 403, 'bob may not watch');
    assert.equal((await fetchRaw(`${https}/media/playlist.m3u8`, { ca: pki.caCert })).status, 401);
    const jwt = await token({ rights: ['media'] });
    const page = await newPage();
    const mediaAuth: string[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/media/')) mediaAuth.push(r.headers().authorization ?? '');
    });
    assert.equal((await page.goto(`${https}/wwwroot/hls.html?token=${jwt}`))?.status(), 200);
    const currentTime = "document.getElementById('video').currentTime";
    await page.waitForFunction(`${currentTime} > 0`, null, { timeout: 30_000 });
    const start = (await page.evaluate(currentTime)) as number;
    await page.waitForFunction(`${currentTime} > ${start + 1}`, null, { timeout: 30_000 });
    assert.ok(mediaAuth.length > 2 && mediaAuth.every((a) => a === `Bearer ${jwt}`), mediaAuth.slice(0, 3).join(' | '));

    const signedIn = await newPage({ user: 'alice', password: ALICE_PW });
    assert.equal((await signedIn.goto(`${https}/wwwroot/hls.html`))?.status(), 200);
    await signedIn.waitForFunction(`${currentTime} > 0`, null, { timeout: 30_000 });
  });

  it('takes WHEP offers with a bearer token; refuses them without one, with an expired one or one signed by another key', async () => {
    const page = await newPage();
    await page.goto(`${https}/wwwroot/webrtc.html?token=${await token({ rights: ['webrtc'] })}`);
    const whep = (authorization: string | null) =>
      page.evaluate(`(async () => {
        ${gatheredRecvonlyOffer()}
        const headers = { 'content-type': 'application/sdp' };
        ${authorization === null ? '' : `headers.authorization = ${JSON.stringify(authorization)};`}
        const response = await fetch('/whep/player', { method: 'POST', headers, body: pc.localDescription.sdp, credentials: 'omit' });
        const text = await response.text();
        if (response.status === 201) {
          await pc.setRemoteDescription({ type: 'answer', sdp: text });
          window.whepPeers = [...(window.whepPeers || []), pc];
        } else pc.close();
        return { status: response.status, challenge: response.headers.get('www-authenticate'), location: response.headers.get('location') };
      })()`) as Promise<{ status: number; challenge: string | null; location: string | null }>;
    const accepted = await whep(`Bearer ${await token({ rights: ['webrtc'] })}`);
    assert.equal(accepted.status, 201);
    assert.match(accepted.location ?? '', /^\/whep\/player\/[0-9a-f-]{36}$/);
    await page.waitForFunction(
      `(async () => { let n = 0; (await window.whepPeers[0].getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') n = r.framesDecoded || 0; }); return n > 30; })()`,
      null,
      { timeout: 20_000, polling: 250 },
    );
    const none = await whep(null);
    assert.equal(none.status, 401);
    assert.match(none.challenge ?? '', /Bearer realm="gst-iotedge"/);
    const expired = await whep(`Bearer ${await token({ rights: ['webrtc'] }, { expiresIn: Math.floor(Date.now() / 1000) - 3600 })}`);
    assert.equal(expired.status, 401);
    const forged = await whep(`Bearer ${await token({ rights: ['webrtc'] }, { key: stranger })}`);
    assert.equal(forged.status, 401);
    const noRight = await whep(`Bearer ${await token({ rights: ['media'] })}`);
    assert.equal(noRight.status, 403);
    assert.ok(module.logs.some((l) => l.event === 'auth-failed' && l.reason === 'expired-token' && l.surface === 'whep'));
    assert.ok(module.logs.some((l) => l.event === 'auth-failed' && l.reason === 'bad-token' && l.surface === 'whep'));
  });

  it('opens /ws and WHEP to allowed origins only, and answers their CORS preflight', async () => {
    const jwt = await token({ rights: ['webrtc'] });
    const open = (origin: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${https.replace('https', 'wss')}/ws?token=${jwt}`, { origin, ca: pki.caCert });
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('error', () => resolve(0));
      });
    assert.equal(await open('https://evil.example'), 403);
    assert.equal(await open('https://dashboard.example.com'), 101);
    assert.equal(await open(https), 101, 'same origin');
    const preflight = (origin: string) =>
      fetchRaw(`${https}/whep/player`, {
        method: 'OPTIONS',
        ca: pki.caCert,
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
      });
    const allowed = await preflight('https://dashboard.example.com');
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://dashboard.example.com');
    assert.match(String(allowed.headers['access-control-allow-headers']), /authorization/);
    assert.equal((await preflight('https://evil.example')).status, 403);
    const foreignPost = await fetchRaw(`${https}/whep/player`, { method: 'POST', ca: pki.caCert, headers: { origin: 'https://evil.example', authorization: `Bearer ${jwt}`, 'content-type': 'application/sdp' }, body: 'v=0' });
    assert.equal(foreignPost.status, 403);
  });

  it('serves /metrics to Prometheus with basic_auth or a bearer token on both ports, which promtool accepts; 401 without', async () => {
    const web = `${https}/metrics`;
    const port = `https://127.0.0.1:${metricsPort}/metrics`;
    const plainPort = `http://127.0.0.1:${metricsPort}/metrics`;
    for (const url of [web, port, plainPort]) {
      const refused = await fetchRaw(url, { ca: pki.caCert });
      assert.equal(refused.status, 401, url);
      assert.match(String(refused.headers['www-authenticate']), /Basic realm="gst-iotedge"/);
      assert.equal((await fetchRaw(url, { ca: pki.caCert, headers: { authorization: basic('alice', ALICE_PW) } })).status, 403, `${url}: alice has no metrics right`);
    }
    const bearer = await token({ rights: 'metrics openid' });
    for (const args of [
      ['-u', `bob:${BOB_PW}`, port],
      ['-u', `bob:${BOB_PW}`, web],
      ['-u', `bob:${BOB_PW}`, plainPort],
      ['-H', `Authorization: Bearer ${bearer}`, port],
    ]) {
      const { stdout } = await execFileAsync('curl', ['-sS', '--fail', '--cacert', pki.caCertPath, ...args]);
      assert.match(stdout, /_auth_failures_total\{surface="whep",reason="expired_token"\} [1-9]/);
      const check = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = execFile('promtool', ['check', 'metrics'], (error, out, err) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out: out + err }));
        child.stdin!.end(stdout);
      });
      assert.equal(check.code, 0, check.out);
    }
  });

  it('keeps WebRTC viewers whose rights did not change through a change of users, and closes the one who lost the right', async () => {
    const alice = await newPage({ user: 'alice', password: ALICE_PW });
    await alice.goto(`${https}/wwwroot/webrtc.html`);
    const carol = await newPage();
    await carol.goto(`${https}/wwwroot/webrtc.html?token=${await token({ rights: ['webrtc'] })}`);
    await Promise.all([frames(alice, 30), frames(carol, 30)]);
    // bob's rights change: nobody watching is touched.
    let before = module.reportedVersion();
    let version = module.writeDesired(desired({ ...AUTH, users: { ...AUTH.users, bob: { password: '$BOB_PW', rights: ['metrics', 'status'] } } }));
    await module.waitForReported((r) => r.config.appliedVersion === version, { after: before });
    const decoded = (await Promise.all([alice, carol].map((p) => p.evaluate('window.player.framesDecoded')))) as number[];
    await Promise.all([frames(alice, decoded[0]! + 30), frames(carol, decoded[1]! + 30)]);
    assert.deepEqual(await Promise.all([alice, carol].map((p) => p.evaluate('window.player.connects'))), [1, 1]);
    // alice loses webrtc: her viewer is closed and her page cannot come back; carol (a token) keeps playing.
    before = module.reportedVersion();
    version = module.writeDesired(desired({ ...AUTH, users: { ...AUTH.users, alice: { password: '$ALICE_PW', rights: ['media', 'status'] } } }));
    await module.waitForReported((r) => r.config.appliedVersion === version, { after: before });
    await alice.waitForFunction(`/rights changed/.test(window.player.state)`, null, { timeout: 15_000 });
    // Its next try is refused, and the page asks to sign in instead of retrying.
    await alice.waitForSelector('#gst-signin:not([hidden])', { timeout: 15_000 });
    const carolFrames = (await carol.evaluate('window.player.framesDecoded')) as number;
    await frames(carol, carolFrames + 30);
    assert.equal(await carol.evaluate('window.player.connects'), 1);
    await Promise.all([alice.close(), carol.close()]);
  });

  it('refuses credentials on plain HTTP once require_tls is set, without asking for them there; HTTPS takes them', async () => {
    const before = module.reportedVersion();
    const version = module.writeDesired(desired({ ...AUTH, require_tls: true }));
    await module.waitForReported((r) => r.config.appliedVersion === version, { after: before });
    const plain = await fetchRaw(`${http}/api/status`, { headers: { authorization: basic('alice', ALICE_PW) } });
    assert.equal(plain.status, 403);
    assert.equal(plain.headers['www-authenticate'], undefined);
    const anonymous = await fetchRaw(`${http}/wwwroot/index.html`);
    assert.equal(anonymous.status, 403);
    assert.equal(anonymous.headers['www-authenticate'], undefined, 'no challenge on plain text');
    const secure = await fetchRaw(`${https}/api/status`, { ca: pki.caCert, headers: { authorization: basic('alice', ALICE_PW) } });
    assert.equal(secure.status, 200);
    assert.equal((JSON.parse(secure.body) as { auth: string }).auth, 'protected');
  });

  it('limits failed sign-ins per address: 429 with Retry-After once the limit is reached, before any password is checked', async () => {
    // No other client from this address meanwhile: the pages of the tests before go.
    await Promise.all(contexts.splice(0).map((c) => c.close()));
    const before = module.reportedVersion();
    const version = module.writeDesired(desired({ ...AUTH, rate_limit: { max_failures: 3, window_s: 60, block_s: 2 } }));
    await module.waitForReported((r) => r.config.appliedVersion === version, { after: before });
    const attempt = (password: string) => fetchRaw(`${https}/api/status`, { ca: pki.caCert, headers: { authorization: basic('alice', password) } });
    assert.deepEqual([(await attempt('no1')).status, (await attempt('no2')).status], [401, 401]);
    const blocked = await attempt('no3');
    assert.equal(blocked.status, 429);
    assert.ok(Number(blocked.headers['retry-after']) >= 1);
    assert.equal((await attempt(ALICE_PW)).status, 429, 'even the right password waits');
    const failures = module.logs.filter((l) => l.event === 'auth-failed');
    assert.ok(failures.some((l) => l.reason === 'bad-password'));
    assert.ok(!module.output.some((line) => line.includes('no1') || line.includes(ALICE_PW)), 'no password in the log');
    await new Promise((resolve) => setTimeout(resolve, 2_100)); // the block the test set (block_s 2) runs out
    assert.equal((await attempt(ALICE_PW)).status, 200);
  });

  it('reloads a renewed certificate on HTTPS and RTSPS without restarting either server', async () => {
    const old = await presentedFingerprint(Number(new URL(https).port));
    assert.equal(await presentedFingerprint(rtspsPort), old);
    const from = module.logs.length;
    copyFileSync(renewed.serverKeyPath, join(certDir, 'server.key.tmp'));
    copyFileSync(renewed.serverCertPath, join(certDir, 'server.pem.tmp'));
    // Both files at once (rename), as a renewal tool writes them: a certificate never meets the other's key.
    await execFileAsync('sh', ['-c', `cd ${certDir} && mv server.key.tmp server.key && mv server.pem.tmp server.pem`]);
    const renewal = await module.waitForLog((l) => l.event === 'tls-renewed', 15_000, from);
    assert.notEqual(renewal.fingerprint, old);
    assert.equal(await presentedFingerprint(Number(new URL(https).port)), renewal.fingerprint);
    // The engine's RTSPS server got the new certificate over IPC.
    const deadline = Date.now() + 10_000;
    while ((await presentedFingerprint(rtspsPort)) !== renewal.fingerprint) {
      assert.ok(Date.now() < deadline, 'RTSPS presents the renewed certificate');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(!module.logs.slice(from).some((l) => l.event === 'http-listening'), 'the web server was not restarted');
  });

  it('never shows a password, a token or a key in its output or reported properties', () => {
    const text = [...module.output, JSON.stringify(module.reported())].join('\n');
    for (const secret of [ALICE_PW, BOB_PW, Buffer.from(`alice:${ALICE_PW}`).toString('base64'), 'BEGIN PRIVATE KEY', 'gsts_']) {
      assert.ok(!text.includes(secret), `output holds ${secret}`);
    }
  });
});
