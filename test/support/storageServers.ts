/**
 * Azurite (Azure Blob) and s3rver (S3) as child processes on free loopback ports, for the recording tests and
 * bench. Each keeps its data in its own folder, so `stop()` then `start()` on the same port is an outage the
 * server comes back from with what it had (staged blocks, multipart parts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** The emulator's well-known account and key (public, in Azurite's documentation). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** One storage server process that can be stopped and started again on the same port and data. */
abstract class StorageServer {
  readonly port: number;
  readonly dir: string;
  #child: ChildProcess | null = null;
  readonly #output: string[] = [];

  protected constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  protected abstract args(): string[];
  protected abstract readyLine: RegExp;

  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** Starts the server; resolves once it listens (bounded). */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.#child) return;
    const child = spawn(process.execPath, this.args(), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.constructor.name} did not listen in ${timeoutMs} ms:\n${this.#output.slice(-10).join('\n')}`)), timeoutMs);
      const onLine = (line: string) => {
        this.#output.push(line);
        if (this.readyLine.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      };
      createInterface({ input: child.stdout! }).on('line', onLine);
      createInterface({ input: child.stderr! }).on('line', onLine);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${this.constructor.name} exited (${code}):\n${this.#output.slice(-10).join('\n')}`));
      });
    });
  }

  /** Stops the server (SIGTERM, as an orderly shutdown) and waits until it is gone. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the server and removes its data. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export class AzuriteServer extends StorageServer {
  protected readyLine = /successfully listens/;

  static async create(): Promise<AzuriteServer> {
    const server = new AzuriteServer(await freePort(), mkdtempSync(join(tmpdir(), 'azurite-')));
    await server.start();
    return server;
  }

  protected args(): string[] {
    return [
      join(root, 'node_modules/azurite/dist/src/blob/main.js'),
      '--blobHost', '127.0.0.1', '--blobPort', String(this.port), '--location', this.dir,
      '--silent', '--disableTelemetry', '--skipApiVersionCheck',
    ];
  }

  get connectionString(): string {
    return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${this.port}/${AZURITE_ACCOUNT};`;
  }
}

export class S3rverServer extends StorageServer {
  protected readyLine = /S3rver listening/;
  readonly buckets: readonly string[];

  private constructor(port: number, dir: string, buckets: readonly string[]) {
    super(port, dir);
    this.buckets = buckets;
  }

  static async create(buckets: readonly string[] = ['recordings']): Promise<S3rverServer> {
    const server = new S3rverServer(await freePort(), mkdtempSync(join(tmpdir(), 's3rver-')), buckets);
    await server.start();
    return server;
  }

  protected args(): string[] {
    return [
      join(root, 'node_modules/s3rver/bin/s3rver.js'),
      '-d', this.dir, '-a', '127.0.0.1', '-p', String(this.port), '-s',
      ...this.buckets.flatMap((b) => ['--configure-bucket', b]),
    ];
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }
}
