import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWK } from 'jose';
import { AccessControl } from '../../auth/AccessControl.js';
import { rightsKey } from '../../auth/rights.js';
import { parseAuthSettings, type AuthSettings, type JwtSettings } from '../../auth/settings.js';
import { TokenRejectedError, TokenVerifier } from '../../auth/TokenVerifier.js';

const address = '198.51.100.4';
const ISSUER = 'https://idp.example.com/';
const AUDIENCE = 'gst-iotedge';

interface Keys {
  readonly publicKey: CryptoKey;
  readonly privateKey: CryptoKey;
}

async function sign(keys: Keys, claims: Record<string, unknown>, options: { alg?: string; kid?: string; exp?: string | number | null; aud?: string; iss?: string } = {}): Promise<string> {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? 'ES256', ...(options.kid ? { kid: options.kid } : {}) })
    .setSubject('viewer-1')
    .setIssuer(options.iss ?? ISSUER)
    .setAudience(options.aud ?? AUDIENCE)
    .setIssuedAt();
  if (options.exp !== null) jwt.setExpirationTime(options.exp ?? '5m');
  return jwt.sign(keys.privateKey);
}

function settingsOf(jwt: Record<string, unknown>): AuthSettings {
  const { settings } = parseAuthSettings({ jwt: { issuer: ISSUER, audience: AUDIENCE, ...jwt } }, {});
  assert.ok(settings?.jwt);
  return settings;
}

/** A JWKS endpoint on loopback that counts requests and can be told to stop answering. */
class JwksServer {
  requests = 0;
  hang = false;
  readonly #sockets = new Set<Socket>();
  private constructor(
    readonly server: Server,
    public jwks: { keys: JWK[] },
  ) {}

  static async start(jwks: { keys: JWK[] }): Promise<JwksServer> {
    const holder: { s?: JwksServer } = {};
    const server = createServer((req, res) => {
      const s = holder.s!;
      s.requests += 1;
      if (s.hang) return; // accepts and never answers
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(s.jwks));
    });
    holder.s = new JwksServer(server, jwks);
    server.on('connection', (socket: Socket) => {
      holder.s!.#sockets.add(socket);
      socket.once('close', () => holder.s!.#sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return holder.s;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/jwks.json`;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('bearer tokens (JWT)', () => {
  let keys: Keys;
  let other: Keys;
  let publicPem: string;
  before(async () => {
    keys = await generateKeyPair('ES256', { extractable: true });
    other = await generateKeyPair('ES256', { extractable: true });
    publicPem = await exportSPKI(keys.publicKey);
  });

  it('accepts a token signed by the static key and reads rights from the claim (list or scope string)', async () => {
    const access = new AccessControl(settingsOf({ public_key: publicPem }));
    const token = await sign(keys, { rights: ['rtsp:player', 'webrtc', 'something-else'] });
    const result = await access.authenticate({ address, secure: false, authorization: `Bearer ${token}` });
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.principal.id, 'token:viewer-1');
    assert.equal(rightsKey(result.principal.rights), 'webrtc rtsp:player');
    assert.ok(result.principal.expiresAt! > Date.now());
    const scoped = new AccessControl(settingsOf({ public_key: publicPem, rights_claim: 'scope' }));
    const viaQuery = await scoped.authenticate({ address, secure: false, token: await sign(keys, { scope: 'openid media status' }) });
    assert.ok(viaQuery.ok);
    assert.equal(rightsKey(viaQuery.principal.rights), 'media status');
  });

  it('refuses alg none, a wrong key, an HMAC token made with the public key, no exp, wrong audience or issuer', async () => {
    const access = new AccessControl(settingsOf({ public_key: publicPem }));
    const none = new UnsecuredJWT({ rights: ['*'] }).setSubject('x').setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m').encode();
    const hmacWithPublicKey = await new SignJWT({ rights: ['*'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('x').setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m')
      .sign(new TextEncoder().encode(publicPem));
    const tokens: Record<string, string> = {
      none,
      'wrong key': await sign(other, { rights: ['*'] }),
      'alg confusion': hmacWithPublicKey,
      'no exp': await sign(keys, { rights: ['*'] }, { exp: null }),
      'wrong audience': await sign(keys, { rights: ['*'] }, { aud: 'another-service' }),
      'wrong issuer': await sign(keys, { rights: ['*'] }, { iss: 'https://evil.example/' }),
      garbage: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA',
    };
    for (const [what, token] of Object.entries(tokens)) {
      const result = await access.authenticate({ address: `10.0.0.${Object.keys(tokens).indexOf(what)}`, secure: false, authorization: `Bearer ${token}` });
      assert.ok(!result.ok, what);
      assert.equal(result.status, 401, what);
      assert.equal(result.reason, 'bad-token', what);
      assert.deepEqual(result.challenges, ['Bearer realm="gst-iotedge", error="invalid_token"'], what);
      assert.ok(!result.message.includes(token.slice(0, 20)), what);
    }
  });

  it('tells an expired token apart (a client may refresh it), and a principal stops being authorized at exp', async () => {
    let now = Date.now();
    const access = new AccessControl(settingsOf({ public_key: publicPem, clock_tolerance_s: 0 }), { now: () => now });
    const expired = await sign(keys, {}, { exp: Math.floor(now / 1000) - 60 });
    const result = await access.authenticate({ address, secure: false, authorization: `Bearer ${expired}` });
    assert.ok(!result.ok);
    assert.equal(result.reason, 'expired-token');
    assert.equal(result.message, 'token expired');
    const fresh = await access.authenticate({ address, secure: false, authorization: `Bearer ${await sign(keys, { rights: ['webrtc'] }, { exp: Math.floor(now / 1000) + 60 })}` });
    assert.ok(fresh.ok);
    assert.equal(access.authorize(fresh.principal, 'webrtc'), true);
    now += 61_000;
    assert.equal(access.authorize(fresh.principal, 'webrtc'), false);
  });

  it('accepts HS256 tokens with a shared secret', async () => {
    const secret = 'a-shared-secret-of-at-least-32-chars!';
    const access = new AccessControl(settingsOf({ secret }));
    const token = await new SignJWT({ rights: ['status'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('svc').setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('1m').sign(new TextEncoder().encode(secret));
    const result = await access.authenticate({ address, secure: false, authorization: `Bearer ${token}` });
    assert.ok(result.ok);
    assert.equal(access.authorize(result.principal, 'status'), true);
  });

  it('accepts a JWK given as public_key and refuses a private JWK there', async () => {
    const jwk = await exportJWK(keys.publicKey);
    assert.ok(new AccessControl(settingsOf({ public_key: JSON.stringify(jwk) })));
    const priv = await exportJWK(keys.privateKey);
    assert.throws(() => settingsOf({ public_key: JSON.stringify(priv) }), /private or secret JWK/);
  });

  describe('JWKS URL', () => {
    let jwks: JwksServer;
    before(async () => {
      jwks = await JwksServer.start({ keys: [{ ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] });
    });
    after(() => jwks.close());

    it('fetches the keys once and keeps using them', async () => {
      jwks.requests = 0;
      jwks.hang = false;
      const access = new AccessControl(settingsOf({ jwks_url: jwks.url }));
      for (let i = 0; i < 3; i++) {
        const result = await access.authenticate({ address, secure: false, authorization: `Bearer ${await sign(keys, { rights: ['webrtc'] }, { kid: 'k1' })}` });
        assert.ok(result.ok, JSON.stringify(result));
      }
      assert.equal(jwks.requests, 1);
      const unknownKid = await access.authenticate({ address, secure: false, authorization: `Bearer ${await sign(other, {}, { kid: 'k2' })}` });
      assert.ok(!unknownKid.ok);
      assert.equal(unknownKid.reason, 'bad-token');
    });

    it('answers 503 within the timeout when the URL does not answer and no keys were ever fetched', async () => {
      jwks.hang = true;
      const access = new AccessControl(settingsOf({ jwks_url: jwks.url, jwks_timeout_ms: 300 }));
      const started = Date.now();
      const result = await access.authenticate({ address, secure: false, authorization: `Bearer ${await sign(keys, {}, { kid: 'k1' })}` });
      const took = Date.now() - started;
      assert.ok(!result.ok);
      assert.equal(result.status, 503);
      assert.equal(result.reason, 'keys-unavailable');
      assert.ok(took >= 250 && took < 2000, `took ${took} ms`);
    });

    it('keeps using the last keys fetched when a refresh does not answer', async () => {
      jwks.hang = false;
      // A timeout long enough that "answered at once" and "waited for the timeout again" cannot be confused, however loaded the machine.
      const jwt: JwtSettings = settingsOf({ jwks_url: jwks.url, jwks_timeout_ms: 3_000 }).jwt!;
      const verifier = new TokenVerifier(jwt, { jwksMaxAgeMs: 50 });
      const token = await sign(keys, { rights: ['webrtc'] }, { kid: 'k1' });
      assert.equal((await verifier.verify(token)).subject, 'viewer-1');
      jwks.hang = true;
      await new Promise((resolve) => setTimeout(resolve, 80)); // the keys are now stale
      const started = Date.now();
      assert.equal((await verifier.verify(token)).subject, 'viewer-1');
      assert.ok(Date.now() - started < 6_000);
      // Right after the failed refresh, cached keys answer at once rather than after another timeout.
      const again = Date.now();
      await verifier.verify(token);
      assert.ok(Date.now() - again < 1_500, `took ${Date.now() - again} ms (the timeout is 3000 ms)`);
      await assert.rejects(verifier.verify(await sign(other, {}, { kid: 'k1' })), (e: unknown) => e instanceof TokenRejectedError && e.kind === 'invalid');
    });
  });
});
