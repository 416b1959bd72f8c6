import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CertificateError, checkCertificate, loadCertificateFiles, type ServerCertificate } from '../../certs/certificate.js';
import { CertificateManager } from '../../certs/CertificateManager.js';
import { generateSelfSigned } from '../../certs/selfSigned.js';
import { parseTlsSettings } from '../../certs/settings.js';
import { requestServerCertificate, WorkloadApiError } from '../../certs/workloadApi.js';
import { generateTestCerts, type TestCerts } from '../support/testCerts.js';
import { WorkloadCertificateEmulator } from '../support/workloadCertificates.js';

const execFileAsync = promisify(execFile);

/** Serves `cert` over TLS on loopback and connects a client trusting `ca`: resolves when the handshake verified. */
async function handshake(cert: ServerCertificate, ca: string, servername = 'localhost'): Promise<TLSSocket> {
  const server = createServer({ cert: cert.certificatePem, key: cert.privateKeyPem }, (s) => s.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  try {
    const socket = connect({ host: '127.0.0.1', port, ca, servername });
    await once(socket, 'secureConnect');
    socket.destroy();
    return socket;
  } finally {
    server.close();
  }
}

async function opensslFingerprint(pem: string): Promise<string> {
  const child = execFileAsync('openssl', ['x509', '-noout', '-fingerprint', '-sha256']);
  child.child.stdin!.end(pem);
  const { stdout } = await child;
  return stdout.trim().split('=')[1]!;
}

describe('server certificates', () => {
  let pki: TestCerts;
  let other: TestCerts;
  before(async () => {
    [pki, other] = await Promise.all([generateTestCerts(), generateTestCerts()]);
  });
  after(async () => {
    await Promise.all([pki.cleanup(), other.cleanup()]);
  });

  it('loads a certificate and key from files, with the fingerprint openssl shows', async () => {
    const cert = await loadCertificateFiles(pki.serverCertPath, pki.serverKeyPath);
    assert.equal(cert.source, 'files');
    assert.equal(cert.subject, 'CN=localhost');
    assert.equal(cert.fingerprint256, await opensslFingerprint(pki.serverCert));
    await handshake(cert, pki.caCert);
  });

  it('refuses a key that does not belong to the certificate, with a clear message and no key material', async () => {
    await assert.rejects(loadCertificateFiles(pki.serverCertPath, other.serverKeyPath), (e: unknown) => {
      assert.ok(e instanceof CertificateError);
      assert.match(e.message, /the private key does not belong to the certificate \(subject CN=localhost, fingerprint [0-9A-F:]{95}\)/);
      assert.ok(!e.message.includes('PRIVATE KEY') && !e.message.includes(other.serverKey.split('\n')[1]!));
      return true;
    });
  });

  it('names the file that cannot be read, and refuses text that is no certificate or no key', async () => {
    await assert.rejects(loadCertificateFiles(join(pki.dir, 'nope.pem'), pki.serverKeyPath), /certificate file .*nope.pem cannot be read \(ENOENT\)/);
    assert.throws(() => checkCertificate('garbage', pki.serverKey, 'files', 'x'), /x: no PEM certificate/);
    const secretish = '-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n';
    assert.throws(() => checkCertificate(pki.serverCert, secretish, 'files', 'x'), (e: unknown) => e instanceof CertificateError && !e.message.includes('c2VjcmV0'));
  });

  it('refuses an expired certificate', async () => {
    assert.throws(() => checkCertificate(pki.serverCert, pki.serverKey, 'files', 'x', new Date(Date.now() + 10 * 86_400_000)), /x: the certificate expired on/);
  });

  it('generates a self-signed certificate that TLS clients accept when they trust it', async () => {
    const cert = await generateSelfSigned({ commonName: 'cam.local', altNames: ['localhost', '127.0.0.1'], validityDays: 30 });
    assert.equal(cert.source, 'self-signed');
    assert.equal(cert.subject, 'CN=cam.local');
    assert.equal(cert.subjectAltName, 'DNS:cam.local, DNS:localhost, IP Address:127.0.0.1');
    assert.equal(cert.fingerprint256, await opensslFingerprint(cert.certificatePem));
    assert.ok(Math.abs(cert.notAfter.getTime() - Date.now() - 30 * 86_400_000) < 5000);
    await handshake(cert, cert.certificatePem);
    await assert.rejects(handshake(cert, pki.caCert), /self[- ]signed|unable to verify/i);
  });

  it('reads the tls key: files from the twin or the environment, IoT Edge, or self-signed', () => {
    const edge = { IOTEDGE_WORKLOADURI: 'unix:///var/run/iotedge/workload.sock', IOTEDGE_MODULEID: 'gst', IOTEDGE_MODULEGENERATIONID: 'g1', IOTEDGE_GATEWAYHOSTNAME: 'edge.local' };
    assert.equal(parseTlsSettings(undefined, {}).settings, null);
    assert.equal(parseTlsSettings(true, {}, 'box').settings?.source, 'self-signed');
    assert.equal(parseTlsSettings(true, {}, 'box').settings?.commonName, 'box');
    const w = parseTlsSettings(true, edge).settings;
    assert.equal(w?.source, 'workload');
    assert.equal(w?.commonName, 'edge.local');
    const f = parseTlsSettings(undefined, { TLS_CERT_FILE: '/certs/a.pem', TLS_KEY_FILE: '/certs/a.key', ...edge });
    assert.deepEqual([f.settings?.source, f.settings?.certFile, f.settings?.keyFile], ['files', '/certs/a.pem', '/certs/a.key']);
    assert.deepEqual([...f.secrets.keys()].sort(), ['TLS_CERT_FILE', 'TLS_KEY_FILE']);
    assert.equal(parseTlsSettings({ cert_file: '/c/both.pem' }, {}).settings?.keyFile, '/c/both.pem');
    assert.throws(() => parseTlsSettings({ source: 'iotedge' }, {}), /tls.source "iotedge" needs IOTEDGE_WORKLOADURI/);
    assert.throws(() => parseTlsSettings({ cert_file: 'rel.pem' }, {}), /tls.cert_file must be an absolute path/);
    assert.throws(() => parseTlsSettings({ certfile: '/x' }, {}), /tls.certfile is not a setting/);
    assert.throws(() => parseTlsSettings({ source: 'acme' }, {}), /tls.source must be/);
  });

  describe('IoT Edge workload API', () => {
    let api: WorkloadCertificateEmulator;
    before(async () => {
      api = await WorkloadCertificateEmulator.create(pki);
      api.addModule('gst', 'gen-1');
    });
    after(() => api.close());
    const identity = () => ({ workloadUri: api.workloadUri, moduleId: 'gst', generationId: 'gen-1' });

    it('issues a server certificate over the unix socket that chains to the edge CA', async () => {
      const expiresAt = new Date(Date.now() + 7 * 86_400_000);
      const cert = await requestServerCertificate(identity(), { commonName: 'edge.local', expiresAt });
      assert.equal(cert.source, 'workload');
      assert.equal(cert.subject, 'CN=edge.local');
      const last = api.requests.at(-1)!;
      assert.equal(last.path, '/modules/gst/genid/gen-1/certificate/server?api-version=2019-01-30');
      assert.deepEqual([last.status, last.commonName, last.expiration], [201, 'edge.local', expiresAt.toISOString()]);
      await handshake(cert, pki.caCert, 'edge.local');
    });

    it('reports a refusal with its status, an unmatched key as a certificate error, and a hung daemon within the timeout', async () => {
      await assert.rejects(requestServerCertificate({ ...identity(), generationId: 'stale' }, { commonName: 'x', expiresAt: new Date(Date.now() + 86_400_000) }), (e: unknown) => {
        return e instanceof WorkloadApiError && e.status === 404 && /\(HTTP 404\): module gst not found/.test(e.message);
      });
      api.mismatchedKey = true;
      await assert.rejects(requestServerCertificate(identity(), { commonName: 'x', expiresAt: new Date(Date.now() + 86_400_000) }), /does not belong to the certificate/);
      api.mismatchedKey = false;
      api.hang = true;
      const started = Date.now();
      await assert.rejects(requestServerCertificate(identity(), { commonName: 'x', expiresAt: new Date(Date.now() + 86_400_000), timeoutMs: 300 }), /did not answer within 300 ms/);
      assert.ok(Date.now() - started < 2000);
      api.hang = false;
      await assert.rejects(requestServerCertificate({ ...identity(), workloadUri: `unix://${join(api.dir, 'missing.sock')}` }, { commonName: 'x', expiresAt: new Date() }), /cannot be reached \(ENOENT\)/);
    });

    it('renews a certificate before it expires and says so; a failed renewal keeps the old one and retries', async () => {
      api.lifetimeMs = 6000;
      api.failNext = 0;
      const settings = parseTlsSettings({ source: 'iotedge', common_name: 'edge.local', renew_before_s: 3 }, { IOTEDGE_WORKLOADURI: api.workloadUri, IOTEDGE_MODULEID: 'gst', IOTEDGE_MODULEGENERATIONID: 'gen-1' }).settings!;
      const manager = await CertificateManager.start(settings, { retryMs: 200 });
      const keepAlive = setInterval(() => {}, 1000); // the manager's timers are unref'd, as a server's should be
      try {
        const first = manager.current;
        assert.ok(first.notAfter.getTime() - Date.now() <= 6000);
        api.failNext = 1;
        const failed = once(manager.observer, 'renewfailed');
        const renewed = once(manager.observer, 'renewed');
        const [failure] = (await failed) as [{ error: Error; retryInMs: number; current: ServerCertificate }];
        assert.match(failure.error.message, /\(HTTP 500\): the security daemon is restarting/);
        assert.equal(failure.current.fingerprint256, first.fingerprint256);
        const [next] = (await renewed) as [ServerCertificate];
        assert.notEqual(next.fingerprint256, first.fingerprint256);
        assert.equal(manager.current, next);
        assert.ok(Date.now() < first.notAfter.getTime(), 'renewed before the old one expired');
        await handshake(next, pki.caCert, 'edge.local');
      } finally {
        clearInterval(keepAlive);
        manager.close();
        api.lifetimeMs = 90 * 86_400_000;
      }
    });
  });

  it('picks up certificate files replaced on disk', async () => {
    const certPath = join(other.dir, 'live.pem');
    const keyPath = join(other.dir, 'live.key');
    await Promise.all([copyFile(pki.serverCertPath, certPath), copyFile(pki.serverKeyPath, keyPath)]);
    const manager = await CertificateManager.start(parseTlsSettings({ cert_file: certPath, key_file: keyPath }, {}).settings!, { filePollMs: 100, retryMs: 200 });
    const keepAlive = setInterval(() => {}, 1000);
    try {
      assert.equal(manager.current.fingerprint256, await opensslFingerprint(pki.serverCert));
      const renewed = once(manager.observer, 'renewed');
      await Promise.all([writeFile(certPath, other.serverCert), writeFile(keyPath, other.serverKey)]);
      const [next] = (await renewed) as [ServerCertificate];
      assert.equal(next.fingerprint256, await opensslFingerprint(other.serverCert));
    } finally {
      clearInterval(keepAlive);
      manager.close();
    }
  });
});
