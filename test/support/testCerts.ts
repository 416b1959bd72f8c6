import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * A throw-away PKI for TLS tests: a CA and a server certificate signed by it.
 *
 * The server certificate names `DNS:localhost` and `IP:127.0.0.1` because the Azure IoT SDK always verifies
 * the broker's certificate against the host in its URL; clients trust it by being given {@link TestCerts.caCert}.
 */
export interface TestCerts {
  /** Temp directory holding every file below; removed by {@link TestCerts.cleanup}. */
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly caCertPath: string;
  readonly caKeyPath: string;
  readonly serverCertPath: string;
  readonly serverKeyPath: string;
  /** Deletes {@link TestCerts.dir}. Safe to call more than once. */
  cleanup(): Promise<void>;
}

/** Options for {@link generateTestCerts}. */
export interface TestCertsOptions {
  /** Extra subjectAltName entries for the server certificate, e.g. `['DNS:edgehub']`. */
  readonly extraSubjectAltNames?: readonly string[];
  /** Validity in days (default 2: long enough for any test run, short enough to never matter if leaked). */
  readonly days?: number;
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { cwd });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/**
 * Generates a CA and a `localhost` server certificate with the `openssl` CLI into a new temp directory.
 *
 * EC P-256 keys keep this at a few tens of milliseconds (RSA key generation would dominate test start-up).
 */
export async function generateTestCerts(options: TestCertsOptions = {}): Promise<TestCerts> {
  const days = String(options.days ?? 2);
  const dir = await mkdtemp(join(tmpdir(), 'gst-iotedge-certs-'));
  const caKeyPath = join(dir, 'ca.key');
  const caCertPath = join(dir, 'ca.pem');
  const serverKeyPath = join(dir, 'server.key');
  const serverCsrPath = join(dir, 'server.csr');
  const serverCertPath = join(dir, 'server.pem');
  const extPath = join(dir, 'server.ext');
  const sans = ['DNS:localhost', 'IP:127.0.0.1', ...(options.extraSubjectAltNames ?? [])];

  try {
    await Promise.all([
      openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKeyPath]),
      openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', serverKeyPath]),
      writeFile(
        extPath,
        [
          `subjectAltName=${sans.join(',')}`,
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature,keyEncipherment',
          'extendedKeyUsage=serverAuth',
          '',
        ].join('\n'),
      ),
    ]);
    await Promise.all([
      openssl(dir, [
        'req', '-x509', '-new', '-key', caKeyPath, '-sha256', '-days', days,
        '-subj', '/CN=gst-iotedge test CA',
        '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
        '-out', caCertPath,
      ]),
      openssl(dir, ['req', '-new', '-key', serverKeyPath, '-subj', '/CN=localhost', '-out', serverCsrPath]),
    ]);
    await openssl(dir, [
      'x509', '-req', '-in', serverCsrPath, '-CA', caCertPath, '-CAkey', caKeyPath,
      // A random serial avoids a ca.srl file and duplicate serials across runs.
      '-set_serial', `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
      '-days', days, '-sha256', '-extfile', extPath, '-out', serverCertPath,
    ]);
    const [caCert, caKey, serverCert, serverKey] = await Promise.all(
      [caCertPath, caKeyPath, serverCertPath, serverKeyPath].map((p) => readFile(p, 'utf8')),
    );
    let removed = false;
    return {
      dir, caCert, caKey, serverCert, serverKey, caCertPath, caKeyPath, serverCertPath, serverKeyPath,
      async cleanup() {
        if (removed) return;
        removed = true;
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

let shared: Promise<TestCerts> | undefined;

/**
 * One {@link TestCerts} per process, for suites that only need "some trusted localhost certificate".
 * Removed when the process exits, so callers must not call `cleanup()` on it.
 */
export function sharedTestCerts(): Promise<TestCerts> {
  if (!shared) {
    shared = generateTestCerts();
    shared.then(
      (certs) => process.once('exit', () => rmSync(certs.dir, { recursive: true, force: true })),
      () => { shared = undefined; },
    );
  }
  return shared;
}
