import { randomUUID } from 'node:crypto';
import type { FuzzRandom } from './fuzzRandom.js';
import { jsonError, localAddress, rawRequest, show, type FuzzOutcome, type FuzzSurface, type RawResponse } from './fuzzRunner.js';
import { editSdp } from './fuzzSignalling.js';
import type { FuzzTarget } from './fuzzTarget.js';

/** One WHEP request as bytes, and what it was. */
interface WhepRequest {
  readonly kind: string;
  readonly method: string;
  /** The request target exactly as sent (latin1: each char one byte). */
  readonly path: string;
  readonly bytes: Buffer;
  /** The request is incomplete on purpose (Content-Length above the body): no answer is due before the timeout. */
  readonly incomplete: boolean;
  readonly describe: string;
}

/** Percent-encodes text as its UTF-8 bytes (a lone surrogate becomes U+FFFD, as TextEncoder writes it). */
function percentEncode(text: string): string {
  return [...Buffer.from(text, 'utf8')].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

/** A name segment for `/whep/<name>`: the seed's `player`, or something a router or a decoder may choke on. */
function name(rng: FuzzRandom): string {
  if (rng.chance(0.5)) return 'player';
  return rng.pick([
    () => percentEncode(rng.string(40)),
    () => Buffer.from(rng.nonAscii(rng.int(1, 60))).toString('latin1'),
    () => rng.pick(['..', '%2e%2e', '.', '%', '%zz', '%c0%ae', '%00', '%2f', 'a%2fb', '%e0%80%af', '%ff', '%uFF0E', '~', '*']),
    () => 'a'.repeat(rng.int(200, 9000)),
    () => `${percentEncode(rng.nonAscii(10))}?${rng.string(20).replace(/[\s#]/g, '')}`,
  ])();
}

function request(method: string, path: string, headers: Array<[string, string]>, body: Buffer, incomplete = false, kind = 'post'): WhepRequest {
  const head = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...headers.map(([k, v]) => `${k}: ${v}`)].join('\r\n');
  return { kind, method, path, bytes: Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), body]), incomplete, describe: `${method} ${show(path, 80)} ${show(headers.map(([k, v]) => `${k}: ${v}`).join('; '), 120)} body ${show(body, 120)}` };
}

/**
 * The WHEP surface: POST /whep/<name> with bodies that are not SDP, SDP with hostile lines (edited from chromium's
 * own offer), the offer itself (201, then DELETE of its Location), wrong and odd content types, huge bodies, and
 * DELETE of unknown, malformed, percent-encoded and non-ASCII resource paths, including the peer id of the
 * websocket viewer (which WHEP must not close). Every answer is 2xx or a 4xx with a JSON error; a 500 only when the
 * engine could not answer, with a JSON error too; never the secret in any form.
 */
export function whepSurface(): FuzzSurface {
  let offer = '';
  let viewerPeer = '';
  const build = (rng: FuzzRandom): WhepRequest => {
    const roll = rng.next();
    if (roll < 0.2) {
      // DELETE of sessions that are not there, or not WHEP's.
      const peer = rng.pick([randomUUID(), viewerPeer, '', '..', '%2e%2e', rng.string(40).replace(/[\s#?]/g, '_'), Buffer.from(rng.nonAscii(20)).toString('latin1'), 'x'.repeat(rng.int(100, 5000))]);
      const path = rng.pick([`/whep/${name(rng)}/${peer}`, `/whep/${peer}`, `/whep/${name(rng)}/${peer}/${rng.string(5).replace(/[\s#?]/g, '_')}`, `/whep/player/../${peer}`, '/whep', '/whep/']);
      return request('DELETE', path, [], Buffer.alloc(0), false, 'delete');
    }
    if (roll < 0.26) {
      const method = rng.pick(['GET', 'PUT', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'whep', 'POST ']);
      return request(method, `/whep/${name(rng)}`, [['Content-Type', 'application/sdp'], ['Content-Length', String(offer.length)]], Buffer.from(offer), false, 'method');
    }
    const contentType = rng.chance(0.65)
      ? rng.pick(['application/sdp', 'application/sdp; charset=utf-8', 'application/sdp;charset=latin1'])
      : rng.pick(['text/plain', 'application/json', 'APPLICATION/SDP', 'application/sdpx', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', Buffer.from(rng.nonAscii(10)).toString('latin1'), `application/sdp; ${'x'.repeat(rng.int(100, 5000))}`]);
    let body: Buffer;
    let kind: string;
    const shape = rng.next();
    if (shape < 0.12) {
      kind = 'offer';
      body = Buffer.from(offer);
    } else if (shape < 0.5) {
      kind = 'hostile-sdp';
      body = Buffer.from(editSdp(rng, offer));
    } else if (shape < 0.62) {
      kind = 'control-chars';
      const at = rng.int(0, offer.length);
      body = Buffer.from(`${offer.slice(0, at)}${rng.pick(['\u0000', '\u0001', '\u001b', '\u007f', '\u000b'])}${offer.slice(at)}`);
    } else if (shape < 0.8) {
      kind = 'not-sdp';
      body = rng.pick([() => Buffer.from(rng.string(500)), () => rng.bytes(rng.int(0, 3000)), () => Buffer.from(JSON.stringify(rng.json(3)) ?? 'null'), () => Buffer.alloc(0), () => Buffer.from(`v=0${rng.string(100)}`)])();
    } else if (shape < 0.9) {
      kind = 'huge';
      const size = rng.pick([64 * 1024 - 1, 64 * 1024 + 1, rng.int(70_000, 900_000), rng.int(1024 * 1024, 3 * 1024 * 1024)]);
      body = Buffer.from(`${offer}a=x:${'y'.repeat(Math.max(0, size - offer.length - 6))}\r\n`);
    } else {
      kind = 'non-ascii-sdp';
      body = Buffer.from(editSdp(rng, offer.replace(/a=mid:0/, `a=mid:${rng.nonAscii(rng.int(1, 200))}`)));
    }
    const headers: Array<[string, string]> = [];
    if (contentType !== '' || rng.chance()) headers.push(['Content-Type', contentType]);
    let incomplete = false;
    if (rng.chance(0.1)) {
      headers.push(['Transfer-Encoding', 'chunked']);
      body = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
    } else if (rng.chance(0.05)) {
      headers.push(['Content-Length', String(body.length + rng.int(1, 100))]);
      incomplete = true;
    } else {
      headers.push(['Content-Length', String(body.length)]);
    }
    return request('POST', `/whep/${name(rng)}`, headers, body, incomplete, kind);
  };

  const judge = (input: WhepRequest, response: RawResponse, target: FuzzTarget): FuzzOutcome => {
    const leaks = target.leaks(response.raw);
    if (leaks.length > 0) return { cls: 'leak', problem: `the answer holds the secret (${leaks.length} form(s)): ${show(response.raw, 300)} for ${input.describe}` };
    if (Number.isNaN(response.status)) {
      if (input.incomplete && response.timedOut) return { cls: 'incomplete-waited' };
      return { cls: 'no-answer', problem: `no HTTP answer (${response.error ?? (response.timedOut ? 'timeout' : 'closed')}) to ${input.kind}: ${input.describe}` };
    }
    const status = response.status;
    if (input.method === 'DELETE' && viewerPeer !== '' && input.path.includes(viewerPeer) && status >= 200 && status < 300) {
      return { cls: String(status), problem: `DELETE ${show(input.path)} answered ${status}: WHEP closed the websocket viewer` };
    }
    if (status === 201) {
      if (!/^application\/sdp/.test(response.headers.get('content-type') ?? '')) return { cls: '201', problem: `201 without an SDP body type for ${input.describe}` };
      if (!response.body.toString('latin1').startsWith('v=0')) return { cls: '201', problem: `201 whose body is not SDP: ${show(response.body)}` };
      if (!/^\/whep\/[^/]+\/[0-9a-f-]{36}$/.test(response.headers.get('location') ?? '')) return { cls: '201', problem: `201 with Location ${show(response.headers.get('location') ?? '')}` };
      return { cls: '201' };
    }
    if (status >= 200 && status < 300) {
      return input.method === 'DELETE' || input.method === 'OPTIONS' || input.method === 'HEAD' ? { cls: String(status) } : { cls: String(status), problem: `${status} to ${input.describe}` };
    }
    const jsonProblem = input.method === 'HEAD' ? null : jsonError(response);
    if (status >= 400 && status < 500) return jsonProblem ? { cls: `${status}`, problem: `${status} without a JSON error (${jsonProblem}) for ${input.describe}` } : { cls: String(status) };
    // The engine could not answer an offer that passed the module's checks: a 500, with its reason as a JSON error.
    // Fastify's own 500 (`message`, `statusCode`) is an exception in the route, not the engine's answer.
    if (status === 500 && ['offer', 'hostile-sdp', 'non-ascii-sdp', 'huge'].includes(input.kind) && !jsonProblem) {
      const parsed = JSON.parse(response.body.toString('utf8')) as { error: string; message?: string; statusCode?: number };
      if (parsed.statusCode === 500 || parsed.message !== undefined) return { cls: '500-exception', problem: `an exception in the WHEP route: ${show(response.body, 300)} for ${input.kind}` };
      return { cls: '500-engine' };
    }
    if (status === 503 && !jsonProblem && /too many WebRTC viewers|not configured/.test(response.body.toString())) return { cls: '503-busy' };
    return { cls: String(status), problem: `${status} (${show(response.body)}) for ${input.kind}: ${input.describe}` };
  };

  return {
    name: 'whep',
    concurrency: 4,
    async prepare(target) {
      offer = await target.browserOffer();
      viewerPeer = target.viewerPeer;
    },
    async run(rng, index, target) {
      const input = build(rng);
      const local = localAddress(2, index);
      const response = await rawRequest(input.bytes, { port: target.httpPort, localAddress: local, idleMs: input.incomplete ? 1_000 : 15_000, head: input.method === 'HEAD' });
      const outcome = judge(input, response, target);
      if (response.status !== 201) return outcome;
      // A session it opened: DELETE stops it (200), a second DELETE finds nothing (404).
      const location = response.headers.get('location') ?? '';
      const stop = await rawRequest(Buffer.from(`DELETE ${location} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`, 'latin1'), { port: target.httpPort, localAddress: local });
      if (stop.status !== 200) return { cls: '201', problem: `DELETE ${location} after a 201 answered ${stop.status} ${show(stop.body)}` };
      const again = await rawRequest(Buffer.from(`DELETE ${location} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`, 'latin1'), { port: target.httpPort, localAddress: local });
      if (again.status !== 404) return { cls: '201', problem: `a second DELETE ${location} answered ${again.status}` };
      return outcome;
    },
  };
}
