import type { FuzzRandom } from './fuzzRandom.js';
import { rawRequest, show, type FuzzOutcome, type FuzzSurface, type RawResponse } from './fuzzRunner.js';
import type { FuzzTarget } from './fuzzTarget.js';

/** `..` in every spelling a decoder, a normaliser or a file system might take for it. */
const DOT_DOT = ['..', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '%252e%252e', '%c0%ae%c0%ae', '%e0%80%ae%e0%80%ae', '%c0%2e%c0%2e', '%uff0e%uff0e', '\xef\xbc\x8e\xef\xbc\x8e', '..%00', '..;', '...', '.. ', '%2e%2e%00', '.\\.', '%%32%65%%32%65'];
/** Separators likewise. */
const SEPARATOR = ['/', '\\', '%2f', '%2F', '%5c', '%5C', '%252f', '%c0%af', '%e0%80%af', '//', '/./', '%00/', '\\\\', '%u2215'];
/** What lies outside the media folder. */
const OUTSIDE = ['secret.txt', 'etc/passwd', 'etc%2fpasswd', '', 'media/../secret.txt', 'proc/self/environ'];
const METHODS = ['POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'PATCH', 'PROPFIND', 'MKCOL', 'get', 'Get', 'G\x00ET', 'GET\t', 'BREW', 'M-SEARCH', 'X'.repeat(300)];

/** One request as bytes. */
interface HttpInput {
  readonly method: string;
  readonly target: string;
  readonly version: string;
  readonly bytes: Buffer;
  readonly describe: string;
}

/** A byte-range header value of some shape: single, suffix, open, several, negative, overflowing, garbage. */
function range(rng: FuzzRandom, size: number): string {
  const bound = () => String(rng.pick([0, 1, size - 1, size, size + 1, rng.int(0, size * 2), -1, 2 ** 53, 2 ** 64, 1e21])).replace(/^1e\+21$/, '1000000000000000000000');
  const spec = () =>
    rng.pick([
      () => `${bound()}-${bound()}`,
      () => `-${bound()}`,
      () => `${bound()}-`,
      () => `${rng.int(0, size)}-${rng.int(0, size)}`,
      () => '-',
      () => '',
      () => `${rng.numberText()}-${rng.numberText()}`,
      () => `0x${rng.int(0, 255).toString(16)}-`,
      () => ` ${rng.int(0, 10)} - ${rng.int(10, 20)} `,
      () => `${rng.int(0, 10)}--${rng.int(0, 10)}`,
      () => '18446744073709551616-18446744073709551617',
      () => rng.string(12).replace(/[\r\n]/g, ''),
    ])();
  const unit = rng.chance(0.85) ? 'bytes=' : rng.pick(['Bytes=', 'bytes ', 'bytes:', 'items=', '', 'bytes==', 'bytes=bytes=']);
  const count = rng.chance(0.7) ? 1 : rng.pick([2, 3, 10, rng.int(50, 2_000)]);
  return `${unit}${Array.from({ length: count }, spec).join(rng.pick([',', ', ', ',,', ' ,']))}`;
}

/** A request target: traversal in every encoding, known files with odd spellings, long, NUL, non-ASCII, other routes. */
function requestTarget(rng: FuzzRandom, files: readonly string[]): string {
  const roll = rng.next();
  if (roll < 0.35) {
    const parts = Array.from({ length: rng.int(1, 6) }, () => rng.pick(DOT_DOT));
    const joined = parts.map((p) => `${p}${rng.pick(SEPARATOR)}`).join('');
    return `${rng.pick(['/media/', '/media/sub/', '/wwwroot/', '/media', '/', '/media/%2e/'])}${joined}${rng.pick(OUTSIDE)}`;
  }
  if (roll < 0.6) {
    const file = rng.pick(files);
    const spelled = rng.pick([
      () => file,
      () => file.replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`),
      () => file.replace('/', rng.pick(['//', '/./', '%2f', '/sub/../'])),
      () => `${file}${rng.pick(['?', '?a=b', `?${rng.string(20).replace(/[\s#]/g, '')}`, '#x', '/', '%00', '.', '%20', ';x', '::$DATA'])}`,
      () => file.toUpperCase(),
      () => `./${file}`,
    ])();
    return `/media/${spelled}`;
  }
  if (roll < 0.7) return `/media/${rng.pick(['a', '%41', 'é', '%c3%a9', '\xc3\xa9'])}${'x'.repeat(rng.int(100, 70_000))}`;
  if (roll < 0.82) {
    const bad = rng.pick([
      () => '\x00',
      () => '%00',
      () => String.fromCharCode(rng.int(0x80, 0xff)),
      () => rng.pick(['%', '%z', '%zz', '%e0%80', '%c0', '%ff%fe', '%f0%80%80%ae', '%ed%a0%80', '%f8%88%80%80%80']),
      () => rng.bytes(rng.int(1, 30)).toString('latin1').replace(/[\r\n ]/g, ''),
      () => Buffer.from(rng.nonAscii(rng.int(1, 30))).toString('latin1'),
    ])();
    return `/media/${bad}${rng.chance() ? rng.pick(files) : ''}`;
  }
  return rng.pick(['/', '/wwwroot/index.html', '/wwwroot/webrtc.html', '/wwwroot/vendor/hls.js', '/wwwroot/../secret.txt', '/api/status', '/metrics', '/whep/player', '/ws', '*', '', 'http://127.0.0.1/media/playlist.m3u8', '//media/playlist.m3u8', '/MEDIA/playlist.m3u8', '/media', '/media/', '/media/sub', '/media/sub/', `/${'x'.repeat(rng.int(10, 20_000))}`]);
}

/** Builds one request: method, target, version and headers, some of them hostile, as the bytes to send. */
function build(rng: FuzzRandom, files: readonly string[], validators: ReadonlyMap<string, { etag: string; lastModified: string }>): HttpInput {
  const method = rng.chance(0.75) ? 'GET' : rng.chance(0.5) ? 'HEAD' : rng.pick(METHODS);
  const target = requestTarget(rng, files);
  const version = rng.chance(0.9) ? 'HTTP/1.1' : rng.pick(['HTTP/1.0', '', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/0.9', 'HTTP/1.1 x', 'http/1.1', 'RTSP/1.0', 'HTTP/11']);
  const headers: string[] = [];
  if (rng.chance(0.95)) headers.push(`Host: ${rng.chance(0.9) ? '127.0.0.1' : rng.pick(['', 'évil', 'a'.repeat(3000), '127.0.0.1\r\nHost: x', '[::1]:99999'])}`);
  if (rng.chance(0.9)) headers.push('Connection: close');
  const file = files.find((f) => target.includes(f)) ?? files[0]!;
  const v = validators.get(file);
  if (rng.chance(0.6)) headers.push(`Range: ${range(rng, 5000)}`);
  if (rng.chance(0.2)) headers.push(`If-Range: ${rng.pick([v?.etag ?? '"x"', `W/${v?.etag ?? '"x"'}`, v?.lastModified ?? 'x', '"0-0"', 'Thu, 01 Jan 1970 00:00:00 GMT', 'Fri, 31 Dec 9999 23:59:59 GMT', rng.string(30).replace(/[\r\n]/g, ''), ''])}`);
  if (rng.chance(0.15)) headers.push(`If-None-Match: ${rng.pick([v?.etag ?? '"x"', '*', `${v?.etag ?? '"x"'}, "y"`, 'W/"x"', rng.string(30).replace(/[\r\n]/g, '')])}`);
  if (rng.chance(0.15)) headers.push(`If-Modified-Since: ${rng.pick([v?.lastModified ?? 'x', 'Thu, 01 Jan 1970 00:00:00 GMT', 'yesterday', '-1', 'Fri, 31 Dec 9999 23:59:59 GMT'])}`);
  if (rng.chance(0.05)) headers.push(`X-Huge: ${'h'.repeat(rng.int(8_000, 100_000))}`);
  if (rng.chance(0.05)) for (let i = rng.int(100, 3_000); i > 0; i--) headers.push(`X-Many-${i}: ${i}`);
  const odd = rng.chance(0.05) ? rng.pick(['NoColon', ': empty-name', 'Bad Name: x', 'X-Fold: a\r\n folded', 'X-Nul: a\x00b', 'X-CR: a\rb', `X-Non-Ascii: ${Buffer.from(rng.nonAscii(20)).toString('latin1')}`, 'Transfer-Encoding: chunked', 'Content-Length: -1', 'Content-Length: 1, 2', 'Expect: 100-continue', 'Upgrade: h2c']) : null;
  if (odd) headers.push(odd);
  let body = '';
  if (rng.chance(0.05)) {
    body = Buffer.from(rng.string(100)).toString('latin1');
    headers.push(`Content-Length: ${body.length}`);
  }
  // A chunked body is always complete: what is tried is the server's parsing, not its request timeout.
  if (odd === 'Transfer-Encoding: chunked') body = `${body.length ? `${body.length.toString(16)}\r\n${body}\r\n` : ''}0\r\n\r\n`;
  const line = version === '' ? `${method} ${target}` : `${method} ${target} ${version}`;
  const text = `${line}\r\n${headers.join('\r\n')}${headers.length ? '\r\n' : ''}\r\n${body}`;
  return { method, target, version, bytes: Buffer.from(text, 'latin1'), describe: `${show(line, 160)} ${show(headers.join('; '), 200)}` };
}

/**
 * The HTTP surface: `/media/...` with `..` in every encoding, NUL, backslashes, overlong UTF-8 and very long paths,
 * `Range` headers of every shape with `If-Range`, odd methods and versions, huge and malformed headers, sent byte
 * for byte. Every answer is 2xx, 206, 304 or 4xx (416 for ranges; 505 only to a version that is not 1.x); nothing
 * outside the media folder ever comes back, and what a 200 or 206 from /media returns is exactly (a slice of) one
 * of the folder's files, as its Content-Range says.
 */
export function httpSurface(): FuzzSurface {
  const validators = new Map<string, { etag: string; lastModified: string }>();
  let files: string[] = [];
  const judge = (input: HttpInput, response: RawResponse, target: FuzzTarget): FuzzOutcome => {
    const body = response.body;
    const leaks = target.leaks(response.raw);
    if (response.raw.includes(target.secretFile) || response.raw.includes('root:x:0:0') || leaks.length > 0) {
      return { cls: 'leak', problem: `content from outside the media folder came back for ${input.describe}` };
    }
    if (Number.isNaN(response.status)) {
      // A CONNECT nobody handles: Node closes the connection (no tunnel), which is an answer of its own.
      if (input.method === 'CONNECT' && response.serverClosed) return { cls: 'connect-closed' };
      // Node answers every request it cannot parse with 400; a silence means a hung or crashed server.
      return { cls: response.serverClosed ? 'closed' : 'no-answer', problem: `no HTTP answer (${response.error ?? (response.timedOut ? 'timeout' : 'closed')}) to ${input.describe}` };
    }
    const status = response.status;
    const cls = String(status);
    if (status >= 500 && !(status === 505 && !/^HTTP\/1\.[01]$/.test(input.version))) return { cls, problem: `${status} ${show(body)} for ${input.describe}` };
    if (!input.target.startsWith('/media/') || (status !== 200 && status !== 206) || input.method === 'HEAD') return { cls };
    const type = response.headers.get('content-type') ?? '';
    if (status === 200) {
      if (input.method !== 'GET') return { cls };
      const match = target.mediaFiles.find((f) => f.bytes.equals(body));
      return match ? { cls } : { cls, problem: `200 with ${body.length} bytes that are no file of the media folder for ${input.describe}` };
    }
    if (/multipart/i.test(type)) return { cls: '206-multipart' };
    const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
    if (!contentRange) return { cls, problem: `206 with Content-Range ${show(response.headers.get('content-range') ?? '(none)')} for ${input.describe}` };
    const [first, last, size] = contentRange.slice(1).map(Number) as [number, number, number];
    const file = target.mediaFiles.find((f) => f.bytes.length === size && f.bytes.subarray(first, last + 1).equals(body));
    if (first > last || last >= size || body.length !== last - first + 1 || !file) {
      return { cls, problem: `206 ${response.headers.get('content-range')} with ${body.length} bytes that are not that slice of a file, for ${input.describe}` };
    }
    return { cls };
  };
  return {
    name: 'http',
    concurrency: 8,
    async prepare(target) {
      files = target.mediaFiles.map((f) => f.name);
      for (const name of files) {
        const response = await fetch(`${target.httpBase}/media/${name}`, { method: 'HEAD' });
        validators.set(name, { etag: response.headers.get('etag') ?? '"none"', lastModified: response.headers.get('last-modified') ?? '' });
      }
    },
    async run(rng, _index, target) {
      const input = build(rng, files, validators);
      const response = await rawRequest(input.bytes, { port: target.httpPort, idleMs: 5_000, head: input.method === 'HEAD' });
      return judge(input, response, target);
    },
  };
}
