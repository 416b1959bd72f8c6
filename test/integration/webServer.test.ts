import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { startWebApp } from '../../web/app.js';


/** One HTTP response as bytes on the wire, so a HEAD body or a leaked byte cannot hide behind a client. */
interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/**
 * Sends `target` verbatim as the request target: fetch() and http.request() normalise `..`, `%2e%2e` and
 * reject NUL before anything reaches the server, which would make traversal tests pass vacuously.
 */
function rawRequest(port: number, target: string, method = 'GET', headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const lines = Object.entries({ Host: `127.0.0.1:${port}`, Connection: 'close', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const raw = Buffer.concat(chunks);
      const split = raw.indexOf('\r\n\r\n');
      const head = raw.subarray(0, split === -1 ? raw.length : split).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1] ?? NaN);
      const map = new Map(
        head.slice(1).map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()] as const),
      );
      resolve({ status, headers: map, body: split === -1 ? Buffer.alloc(0) : raw.subarray(split + 4) });
    });
    // latin1 writes each char as one byte: raw NUL and backslash go out as they are.
    // write, not end: a half-closed client makes Node drop the request before an async reply.
    socket.write(Buffer.from(`${method} ${target} HTTP/1.1\r\n${lines.join('')}\r\n`, 'latin1'));
  });
}

/** Processes this file started, all stopped in `after`, even when a test failed half-way. */
const children: ChildProcess[] = [];
function startProcess(command: string, args: string[], cwd: string): ChildProcess {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => process.stderr.write(`[${command}] ${text}`));
  // A missing program shows as a player that never starts, with this line to say why.
  child.on('error', (error) => process.stderr.write(`[${command}] ${error.message}\n`));
  children.push(child);
  return child;
}
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

const base = mkdtempSync(join(tmpdir(), 'web-server-test-'));
after(async () => {
  await Promise.all(children.map(stopProcess));
  rmSync(base, { recursive: true, force: true });
});

// Twice: with the memory cache (hits skip the real-path check, so refusals must hold there too) and without.
for (const [label, mediaCacheBytes] of [['memory cache on', undefined], ['memory cache off', 0]] as const) {
  describe(`the media folder over HTTP, ${label}`, () => {
    // The secret lies beside the media folder, in a folder of its own for each run.
    const outside = join(base, label.replaceAll(' ', '-'));
    const media = join(outside, 'media');
    const secret = `TOP-SECRET-${randomBytes(8).toString('hex')}`;
    const segment = randomBytes(4096);
    let app: FastifyInstance;
    let port: number;

    before(async () => {
      mkdirSync(join(media, 'sub'), { recursive: true });
      // Planted beside the media folder: no request may ever return this text.
      writeFileSync(join(outside, 'secret.txt'), secret);
      writeFileSync(join(media, 'segment00001.m4s'), segment);
      writeFileSync(join(media, 'playlist.m3u8'), '#EXTM3U\n#EXT-X-TARGETDURATION:1\n');
      writeFileSync(join(media, 'manifest.mpd'), '<?xml version="1.0"?><MPD/>');
      writeFileSync(join(media, 'sub', 'inside.ts'), 'ts');
      for (const ext of ['ts', 'mp4', 'm4a', 'aac', 'mkv', 'webm', 'jpg']) writeFileSync(join(media, `file.${ext}`), ext);
      symlinkSync('/etc/passwd', join(media, 'passwd'));
      symlinkSync(join(outside, 'secret.txt'), join(media, 'secret-link.txt'));
      symlinkSync(outside, join(media, 'outside-dir'));
      symlinkSync('playlist.m3u8', join(media, 'live.m3u8'));
      const started = await startWebApp({ host: '127.0.0.1', port: 0, mediaRoot: media, mediaCacheBytes, logger: false });
      app = started.app;
      port = Number(new URL(started.address).port);
    });
    after(() => app?.close());

    it('answers a byte range with 206, its Content-Range and exactly those bytes', async () => {
      const response = await rawRequest(port, '/media/segment00001.m4s', 'GET', { Range: 'bytes=100-1123' });
      assert.equal(response.status, 206);
      assert.equal(response.headers.get('content-range'), 'bytes 100-1123/4096');
      assert.equal(response.headers.get('content-length'), '1024');
      assert.deepEqual(response.body, segment.subarray(100, 1124));
    });

    it('answers a suffix range with the last bytes of the file', async () => {
      const response = await rawRequest(port, '/media/segment00001.m4s', 'GET', { Range: 'bytes=-16' });
      assert.equal(response.status, 206);
      assert.equal(response.headers.get('content-range'), 'bytes 4080-4095/4096');
      assert.deepEqual(response.body, segment.subarray(4080));
    });

    it('answers a range past the end with 416 and the file size', async () => {
      const response = await rawRequest(port, '/media/segment00001.m4s', 'GET', { Range: 'bytes=5000-6000' });
      assert.equal(response.status, 416);
      assert.equal(response.headers.get('content-range'), 'bytes */4096');
    });

    it('answers a range with the whole file when If-Range names an older version', async () => {
      const current = await rawRequest(port, '/media/segment00001.m4s', 'HEAD');
      const fresh = await rawRequest(port, '/media/segment00001.m4s', 'GET', { Range: 'bytes=0-9', 'If-Range': current.headers.get('etag')! });
      assert.equal(fresh.status, 206);
      const stale = await rawRequest(port, '/media/segment00001.m4s', 'GET', { Range: 'bytes=0-9', 'If-Range': '"0-0"' });
      assert.equal(stale.status, 200);
      assert.deepEqual(stale.body, segment);
    });

    it('answers a whole file with 200 and advertises byte ranges', async () => {
      const response = await rawRequest(port, '/media/segment00001.m4s');
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('accept-ranges'), 'bytes');
      assert.deepEqual(response.body, segment);
    });

    it('labels each media file with the MIME type players expect', async () => {
      const expected: Record<string, string> = {
        'playlist.m3u8': 'application/vnd.apple.mpegurl',
        'manifest.mpd': 'application/dash+xml',
        'segment00001.m4s': 'video/iso.segment',
        'file.ts': 'video/mp2t',
        'file.mp4': 'video/mp4',
        'file.m4a': 'audio/mp4',
        'file.aac': 'audio/aac',
        'file.mkv': 'video/x-matroska',
        'file.webm': 'video/webm',
        'file.jpg': 'image/jpeg',
      };
      for (const [name, type] of Object.entries(expected)) {
        const response = await rawRequest(port, `/media/${name}`);
        assert.equal(response.status, 200, name);
        assert.equal(response.headers.get('content-type'), type, name);
        assert.equal(response.headers.get('x-content-type-options'), 'nosniff', name);
      }
    });

    it('answers 404 for a file that does not exist', async () => {
      assert.equal((await rawRequest(port, '/media/nothing-here.ts')).status, 404);
      assert.equal((await rawRequest(port, '/media/sub/nothing-here.ts')).status, 404);
    });

    it('answers HEAD with the headers of GET and no body', async () => {
      const response = await rawRequest(port, '/media/segment00001.m4s', 'HEAD');
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('content-length'), '4096');
      assert.equal(response.headers.get('content-type'), 'video/iso.segment');
      assert.ok(response.headers.has('etag'));
      assert.equal(response.body.length, 0);
    });

    it('marks playlists and manifests no-cache and lets segments be cached briefly', async () => {
      assert.equal((await rawRequest(port, '/media/playlist.m3u8')).headers.get('cache-control'), 'no-cache');
      assert.equal((await rawRequest(port, '/media/manifest.mpd')).headers.get('cache-control'), 'no-cache');
      assert.match((await rawRequest(port, '/media/segment00001.m4s')).headers.get('cache-control') ?? '', /^public, max-age=\d+$/);
    });

    it('answers a conditional GET of an unchanged playlist with 304', async () => {
      const first = await rawRequest(port, '/media/playlist.m3u8');
      const again = await rawRequest(port, '/media/playlist.m3u8', 'GET', { 'If-None-Match': first.headers.get('etag')! });
      assert.equal(again.status, 304);
    });

    it('serves the new content of a file rewritten in place or replaced, never a cached old one', async () => {
      const path = join(media, 'rewritten.m3u8');
      const old = new Date(Date.now() - 60_000);
      writeFileSync(path, '#EXTM3U\n#A\n');
      utimesSync(path, old, old); // settled, so the server may keep it in memory
      assert.equal((await rawRequest(port, '/media/rewritten.m3u8')).body.toString(), '#EXTM3U\n#A\n');
      writeFileSync(path, '#EXTM3U\n#B\n'); // same size, same inode
      assert.equal((await rawRequest(port, '/media/rewritten.m3u8')).body.toString(), '#EXTM3U\n#B\n');
      writeFileSync(`${path}.tmp`, '#EXTM3U\n#C\n');
      utimesSync(`${path}.tmp`, old, old);
      renameSync(`${path}.tmp`, path); // how hlssink2 publishes a playlist: a new inode, even the same mtime
      assert.equal((await rawRequest(port, '/media/rewritten.m3u8')).body.toString(), '#EXTM3U\n#C\n');
    });

    it('refuses a file it served before once it became a link to outside the folder', async () => {
      const path = join(media, 'swapped.m3u8');
      const old = new Date(Date.now() - 60_000);
      writeFileSync(path, '#EXTM3U\n');
      utimesSync(path, old, old); // settled, so the server may keep it in memory
      assert.equal((await rawRequest(port, '/media/swapped.m3u8')).status, 200);
      rmSync(path);
      symlinkSync(join(outside, 'secret.txt'), path);
      const response = await rawRequest(port, '/media/swapped.m3u8');
      assert.equal(response.status, 403);
      assert.ok(!response.body.toString().includes(secret));
    });

    it('serves files in subfolders and follows a symbolic link that stays inside the folder', async () => {
      assert.equal((await rawRequest(port, '/media/sub/inside.ts')).status, 200);
      const linked = await rawRequest(port, '/media/live.m3u8');
      assert.equal(linked.status, 200);
      assert.match(linked.body.toString(), /^#EXTM3U/);
    });

    describe('refuses every path that leads out of the folder', () => {
      // Each one is sent byte for byte as written (raw socket), `\0` being a real NUL byte.
      const attempts = [
        '/media/../secret.txt',
        '/media/../../../../etc/passwd',
        '/media/sub/../../secret.txt',
        '/media/./../secret.txt',
        '/media/%2e%2e/secret.txt',
        '/media/%2E%2E/secret.txt',
        '/media/.%2e/secret.txt',
        '/media/%2e./secret.txt',
        '/media/..%2fsecret.txt',
        '/media/..%2Fsecret.txt',
        '/media/%2e%2e%2fsecret.txt',
        '/media/sub%2f..%2f..%2fsecret.txt',
        '/media/%252e%252e/secret.txt',
        '/media/%252e%252e%252fsecret.txt',
        '/media/..%255csecret.txt',
        '/media/..\\secret.txt',
        '/media/..%5csecret.txt',
        '/media/%5c..%5c..%5csecret.txt',
        '/media/%2e%2e%5csecret.txt',
        '/media/%c0%ae%c0%ae/secret.txt',
        '/media/..%c0%afsecret.txt',
        '/media/%e0%80%ae%e0%80%ae/secret.txt',
        '/media/%c0%2e%c0%2e/secret.txt',
        '/media/..%00/secret.txt',
        '/media/%2e%2e/secret.txt%00.m3u8',
        '/media/\0../secret.txt',
        '/media//etc/passwd',
        '/media/%2fetc%2fpasswd',
        `/media/${encodeURIComponent(join(outside, 'secret.txt'))}`,
        `/media/${join(outside, 'secret.txt')}`,
        '/media/..;/secret.txt',
        '/media/passwd',
        '/media/secret-link.txt',
        '/media/outside-dir/secret.txt',
        '/media/outside-dir/media/../secret.txt',
        '/wwwroot/../secret.txt',
        '/wwwroot/%2e%2e/%2e%2e/etc/passwd',
        '../secret.txt',
        'http://127.0.0.1/media/../secret.txt',
        'http://127.0.0.1/media/passwd',
      ];

      it('has the secret in place, readable by this process', () => {
        assert.equal(readFileSync(join(outside, 'secret.txt'), 'utf8'), secret);
        assert.ok(attempts.length >= 20);
      });

      for (const target of attempts) {
        it(`refuses ${JSON.stringify(target)} with a 4xx and none of the outside content`, async () => {
          const response = await rawRequest(port, target);
          assert.ok(response.status >= 400 && response.status < 500, `status ${response.status}`);
          const body = response.body.toString('latin1');
          assert.ok(!body.includes(secret), 'the secret leaked');
          assert.ok(!body.includes('root:x:0:0'), '/etc/passwd leaked');
        });
      }
    });
  });
}

describe('pages, scripts and hooks', () => {
  let app: FastifyInstance;
  let address: string;
  before(async () => {
    const started = await startWebApp({
      host: '127.0.0.1',
      port: 0,
      mediaRoot: base,
      extraRoutes: (app) => app.get('/extra', async () => ({ extra: true })),
    });
    app = started.app;
    address = started.address;
  });
  after(() => app?.close());

  it('redirects / to the index page', async () => {
    const response = await fetch(`${address}/`, { redirect: 'manual' });
    assert.ok(response.status >= 300 && response.status < 400);
    assert.equal(response.headers.get('location'), '/wwwroot/index.html');
  });

  it('serves the HLS and DASH player pages from wwwroot', async () => {
    for (const page of ['hls.html', 'dash.html']) {
      const response = await fetch(`${address}/wwwroot/${page}`);
      assert.equal(response.status, 200, page);
      assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(await response.text(), /<video id="video"/);
    }
  });

  it('serves hls.js and dash.js from node_modules, not from a CDN', async () => {
    for (const [name, global] of [['hls.js', 'Hls'], ['dash.js', 'dashjs']] as const) {
      const response = await fetch(`${address}/wwwroot/vendor/${name}`);
      assert.equal(response.status, 200, name);
      assert.match(response.headers.get('content-type') ?? '', /javascript/);
      assert.ok((await response.text()).includes(global), name);
    }
  });

  it('adds the routes of the extraRoutes hook', async () => {
    assert.deepEqual(await (await fetch(`${address}/extra`)).json(), { extra: true });
  });
});

describe('the players in a real browser', () => {
  const live = join(base, 'live');
  let app: FastifyInstance;
  let address: string;
  let browser: Browser;

  before(async () => {
    mkdirSync(live, { recursive: true });
    // The pages retry until the first playlist appears, so nothing here waits for the writers.
    startProcess(
      'gst-launch-1.0',
      [
        ...'-q videotestsrc is-live=true ! video/x-raw,format=I420,width=320,height=240,framerate=30/1'.split(' '),
        ...'! x264enc tune=zerolatency key-int-max=30 speed-preset=ultrafast ! h264parse ! hlssink2'.split(' '),
        `location=${live}/segment%05d.ts`,
        `playlist-location=${live}/playlist.m3u8`,
        'target-duration=1',
        'max-files=10',
      ],
      live,
    );
    // GStreamer 1.22's dashsink writes nothing dash.js can play live (see the todo below), so the DASH
    // page is checked against ffmpeg's live DASH (init segment, .m4s segments, SegmentTimeline).
    startProcess(
      'ffmpeg',
      [
        ...'-hide_banner -loglevel error -re -f lavfi -i testsrc2=size=320x240:rate=30'.split(' '),
        ...'-c:v libx264 -preset ultrafast -tune zerolatency -g 30 -pix_fmt yuv420p'.split(' '),
        ...'-f dash -seg_duration 1 -window_size 10 -remove_at_exit 1'.split(' '),
        join(live, 'manifest.mpd'),
      ],
      live,
    );
    const started = await startWebApp({ host: '127.0.0.1', port: 0, mediaRoot: live });
    app = started.app;
    address = started.address;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  /**
   * Opens a player page and resolves once its video has played `seconds` more after it first moved.
   * Page code is passed as strings: this project compiles without the DOM types.
   */
  async function assertPlays(page: string, seconds: number): Promise<void> {
    const tab = await browser.newPage();
    const currentTime = "document.getElementById('video').currentTime";
    try {
      await tab.goto(`${address}/wwwroot/${page}`);
      await tab.waitForFunction(`${currentTime} > 0`, null, { timeout: 30_000 });
      const start = (await tab.evaluate(currentTime)) as number;
      await tab.waitForFunction(`${currentTime} > ${start + seconds}`, null, { timeout: 30_000 });
      assert.match(await tab.locator('#status').innerText(), /^Playing /);
    } catch (error) {
      const status = await tab.locator('#status').innerText().catch(() => '?');
      throw new Error(`${page} did not play; the page says: ${status}`, { cause: error });
    } finally {
      await tab.close();
    }
  }

  it("has Chromium's Media Source Extensions accept H.264 in MP4 and MPEG-TS", async () => {
    const tab = await browser.newPage();
    const supported = (await tab.evaluate(
      `Object.fromEntries(['video/mp4; codecs="avc1.42E01E"', 'video/mp2t; codecs="avc1.42E01E"'].map((t) => [t, MediaSource.isTypeSupported(t)]))`,
    )) as Record<string, boolean>;
    await tab.close();
    assert.deepEqual(supported, {
      'video/mp4; codecs="avc1.42E01E"': true,
      'video/mp2t; codecs="avc1.42E01E"': true,
    });
  });

  it('hls.html plays the live playlist hlssink2 writes, and its currentTime advances', async () => {
    await assertPlays('hls.html', 2);
  });

  it('dash.html plays a live DASH manifest, and its currentTime advances', async () => {
    await assertPlays('dash.html?src=/media/manifest.mpd', 2);
  });

  it.todo(
    'dash.html plays what dashsink writes: GStreamer 1.22 dashsink writes bare codecs="avc1", a dynamic MPD without ' +
      'Period@start, TS segments without an initialization segment, and with muxer=mp4 never closes its first segment',
  );
});
