import { connect } from 'node:net';
import type { FuzzRandom } from './fuzzRandom.js';
import { show, type FuzzOutcome, type FuzzSurface } from './fuzzRunner.js';
import type { FuzzTarget } from './fuzzTarget.js';

const METHODS = ['OPTIONS', 'DESCRIBE', 'SETUP', 'PLAY', 'PAUSE', 'TEARDOWN', 'GET_PARAMETER', 'SET_PARAMETER', 'ANNOUNCE', 'RECORD', 'REDIRECT'];

/** One step of a connection: bytes to write, then how long to wait for the answer (0: go on at once). */
interface Step {
  readonly bytes: Buffer;
  readonly waitMs: number;
}

/** A connection's script: steps, then a close (or a drop mid-way). */
interface RtspScript {
  readonly kind: string;
  readonly steps: readonly Step[];
  readonly describe: string;
}

/** A request with hostile parts: method, URL, version, CSeq, transport, session, range, sizes, bytes. */
function request(rng: FuzzRandom, base: string, cseq: number, method = rng.chance(0.85) ? rng.pick(METHODS) : rng.pick(['describe', 'GET', 'POST', 'FOO', '', '\x00', 'SETUP SETUP', 'X'.repeat(rng.int(100, 5000)), Buffer.from(rng.nonAscii(8)).toString('latin1')])): string {
  const url = rng.chance(0.7)
    ? rng.pick([base, `${base}/stream=0`, `${base}/stream=1`, `${base}/stream=99999999999`, `${base}/`])
    : rng.pick(['*', '', `${base}/../..`, `${base}?${rng.string(20).replace(/\s/g, '')}`, base.replace('/player', '/nope'), base.replace('/player', ''), 'rtsp://10.255.255.1:1/player', base.replace('rtsp://', 'rtsp://u:p@'), base.replace('rtsp://', 'http://'), `${base}/${'a'.repeat(rng.int(100, 70_000))}`, `${base}/${Buffer.from(rng.nonAscii(10)).toString('latin1')}`, rng.string(40).replace(/[\r\n ]/g, '')]);
  const version = rng.chance(0.9) ? 'RTSP/1.0' : rng.pick(['RTSP/2.0', 'RTSP/1.1', 'HTTP/1.1', '', 'RTSP/', 'RTSP/1.0 x', 'rtsp/1.0']);
  const headers: string[] = [];
  if (rng.chance(0.9)) headers.push(`CSeq: ${rng.chance(0.8) ? cseq : rng.pick(['-1', '0', '18446744073709551616', 'abc', '', '1 2', `${cseq}\r\nCSeq: ${cseq + 1}`, '9'.repeat(400)])}`);
  if (method === 'SETUP' || rng.chance(0.1)) {
    headers.push(`Transport: ${rng.chance(0.5) ? 'RTP/AVP/TCP;unicast;interleaved=0-1' : rng.pick([
      'RTP/AVP/TCP;unicast;interleaved=255-256',
      'RTP/AVP/TCP;unicast;interleaved=-1',
      'RTP/AVP/TCP;unicast;interleaved=a-b',
      'RTP/AVP/TCP;interleaved=0-1;mode=record',
      `RTP/AVP;unicast;client_port=${rng.pick(['0-0', '65535-65536', '1-2', '40000', `${rng.int(1024, 65000)}-${rng.int(1024, 65000)}`])}`,
      'RTP/AVP;multicast;destination=224.0.0.1;ttl=300;port=5000-5001',
      'RTP/AVP;unicast;destination=10.255.255.1;client_port=5000-5001',
      'RTP/SAVP/TCP;interleaved=0-1',
      'garbage',
      '',
      Array.from({ length: rng.int(2, 300) }, () => 'RTP/AVP/TCP;unicast;interleaved=0-1').join(','),
      `RTP/AVP/TCP;${'x;'.repeat(rng.int(100, 3000))}`,
    ])}`);
  }
  if (rng.chance(0.3)) headers.push(`Session: ${rng.pick(['12345678', '', 'x'.repeat(rng.int(100, 5000)), ';timeout=-1', rng.string(20).replace(/[\r\n]/g, '')])}`);
  if (method === 'PLAY' || rng.chance(0.05)) headers.push(`Range: ${rng.pick(['npt=0-', 'npt=-1', 'npt=now-', 'npt=1e400-', 'clock=garbage', 'smpte=99:99:99', 'npt=5-1', 'npt=', 'bytes=0-1', rng.string(20).replace(/[\r\n]/g, '')])}`);
  if (rng.chance(0.1)) headers.push(`Require: ${rng.pick(['implicit-play', 'play.basic', 'x', rng.string(30).replace(/[\r\n]/g, '')])}`);
  if (rng.chance(0.1)) headers.push(`Authorization: ${rng.pick(['Basic !!!', `Basic ${Buffer.from(rng.string(40)).toString('base64')}`, 'Digest username="', `Bearer ${'x'.repeat(rng.int(10, 10_000))}`])}`);
  if (rng.chance(0.05)) headers.push(`X-Huge: ${'h'.repeat(rng.int(10_000, 200_000))}`);
  if (rng.chance(0.05)) for (let i = rng.int(100, 2_000); i > 0; i--) headers.push(`X-Many-${i}: ${i}`);
  if (rng.chance(0.08)) headers.push(rng.pick(['NoColon', ': empty', 'X-Fold: a\r\n folded', 'X-Nul: a\x00b', `User-Agent: ${Buffer.from(rng.nonAscii(20)).toString('latin1')}`, 'Accept: application/sdp', 'Blocksize: 0', 'Blocksize: 99999999999', 'Speed: -1', 'Scale: 0']));
  let body = '';
  if (method === 'SET_PARAMETER' || method === 'ANNOUNCE' || rng.chance(0.05)) {
    body = rng.chance() ? 'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n' : Buffer.from(rng.string(300)).toString('latin1');
    headers.push(`Content-Type: ${rng.pick(['application/sdp', 'text/parameters', ''])}`);
    // An honest length, sometimes one that promises more (the server waits) or makes no sense.
    headers.push(`Content-Length: ${rng.chance(0.8) ? body.length : rng.pick(['-1', 'abc', String(body.length + rng.int(1, 1000)), '99999999999999999999'])}`);
  }
  const line = version ? `${method} ${url} ${version}` : `${method} ${url}`;
  return `${line}\r\n${headers.join('\r\n')}${headers.length ? '\r\n' : ''}\r\n${body}`;
}

/** An interleaved frame (`$`, channel, length, data): consistent, or with a length that lies. */
function interleaved(rng: FuzzRandom): Buffer {
  const data = rng.bytes(rng.int(0, 1500));
  const head = Buffer.from([0x24, rng.pick([0, 1, 2, 3, 255, rng.int(0, 255)]), 0, 0]);
  head.writeUInt16BE(rng.chance(0.8) ? data.length : rng.int(0, 65535), 2);
  return Buffer.concat([head, data]);
}

/** Builds the script of one connection. */
function script(rng: FuzzRandom, base: string): RtspScript {
  const latin1 = (text: string) => Buffer.from(text, 'latin1');
  const roll = rng.next();
  let cseq = 1;
  if (roll < 0.35) {
    const text = request(rng, base, cseq);
    return { kind: 'request', steps: [{ bytes: latin1(text), waitMs: 400 }], describe: show(text, 240) };
  }
  if (roll < 0.55) {
    // A real session (DESCRIBE, SETUP, PLAY over TCP), then hostile requests and interleaved garbage inside it.
    const steps: Step[] = [
      { bytes: latin1(`DESCRIBE ${base} RTSP/1.0\r\nCSeq: ${cseq++}\r\nAccept: application/sdp\r\n\r\n`), waitMs: 600 },
      { bytes: latin1(`SETUP ${base}/stream=0 RTSP/1.0\r\nCSeq: ${cseq++}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n`), waitMs: 600 },
    ];
    const parts: string[] = [];
    for (let i = rng.int(1, 6); i > 0; i--) {
      if (rng.chance(0.4)) {
        steps.push({ bytes: interleaved(rng), waitMs: 0 });
        parts.push('interleaved');
      } else {
        const method = rng.pick(['PLAY', 'PAUSE', 'GET_PARAMETER', 'SET_PARAMETER', 'SETUP', 'TEARDOWN', 'OPTIONS', 'DESCRIBE', 'PLAY']);
        steps.push({ bytes: latin1(request(rng, base, cseq++, method)), waitMs: 200 });
        parts.push(method);
      }
    }
    return { kind: 'session', steps, describe: `DESCRIBE SETUP ${parts.join(' ')}` };
  }
  if (roll < 0.65) {
    // SETUP without DESCRIBE, then PLAY with a session id of our own.
    const steps: Step[] = [
      { bytes: latin1(`SETUP ${base}/stream=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: ${rng.pick(['RTP/AVP/TCP;unicast;interleaved=0-1', 'RTP/AVP/TCP;unicast;interleaved=4-5', `RTP/AVP;unicast;client_port=${rng.int(20000, 60000)}-${rng.int(20000, 60000)}`])}\r\n\r\n`), waitMs: 600 },
      { bytes: latin1(`PLAY ${base} RTSP/1.0\r\nCSeq: 2\r\nSession: ${rng.pick(['12345678', 'x', ''])}\r\nRange: npt=0-\r\n\r\n`), waitMs: 300 },
    ];
    return { kind: 'setup-first', steps, describe: 'SETUP without DESCRIBE, PLAY with a foreign session' };
  }
  if (roll < 0.75) {
    const texts = Array.from({ length: rng.int(2, 50) }, () => request(rng, base, cseq++));
    return { kind: 'pipelined', steps: [{ bytes: latin1(texts.join('')), waitMs: 600 }], describe: `${texts.length} requests in one write: ${show(texts[0]!, 120)}` };
  }
  if (roll < 0.83) {
    const bytes = rng.chance() ? rng.bytes(rng.int(1, 5000)) : Buffer.concat(Array.from({ length: rng.int(1, 20) }, () => interleaved(rng)));
    return { kind: 'binary', steps: [{ bytes, waitMs: 300 }], describe: `${bytes.length} bytes of binary` };
  }
  if (roll < 0.93) {
    // Gone mid-request, at once or a moment later.
    const text = request(rng, base, cseq);
    const cut = rng.int(0, text.length);
    return { kind: 'early-disconnect', steps: [{ bytes: latin1(text.slice(0, cut)), waitMs: rng.pick([0, 0, 20, 100]) }], describe: `${cut} of ${text.length} bytes of ${show(text, 100)}` };
  }
  // RTSP over HTTP tunnelling (gst-rtsp-server speaks it): a GET and a POST with a session cookie, then base64 garbage.
  const cookie = rng.pick(['fuzzcookie', '', 'x'.repeat(rng.int(100, 5000)), Buffer.from(rng.nonAscii(10)).toString('latin1')]);
  const path = base.replace(/^rtsp:\/\/[^/]+/, '');
  return {
    kind: 'http-tunnel',
    steps: [
      { bytes: latin1(`GET ${path} HTTP/1.0\r\nx-sessioncookie: ${cookie}\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n`), waitMs: 300 },
      { bytes: latin1(`POST ${path} HTTP/1.0\r\nx-sessioncookie: ${cookie}\r\nContent-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n${rng.chance() ? Buffer.from(request(rng, base, 1)).toString('base64') : rng.string(200)}`), waitMs: 300 },
    ],
    describe: `tunnel with cookie ${show(cookie, 40)}`,
  };
}

/**
 * The RTSP surface (raw TCP to the engine's RTSP server): malformed request lines, unknown methods, huge and many
 * headers, CSeq games, hostile transports and ranges, interleaved binary garbage inside a real session, SETUP
 * without DESCRIBE, pipelined requests, RTSP-over-HTTP tunnels, and connections dropped mid-request. The server
 * may answer, close or wait; what must hold is that anything it sends is RTSP (or HTTP for a tunnel), and that the
 * module and its viewers stay up, which the stay-up check decides.
 */
export function rtspSurface(): FuzzSurface {
  return {
    name: 'rtsp',
    concurrency: 8,
    run(rng, _index, target: FuzzTarget): Promise<FuzzOutcome> {
      const input = script(rng, target.rtspUrl);
      return new Promise((resolve) => {
        const socket = connect(target.rtspPort, '127.0.0.1');
        const chunks: Buffer[] = [];
        let closed = false;
        let connected = false;
        let done = false;
        let errored: string | null = null;
        socket.on('data', (chunk) => chunks.push(chunk));
        socket.on('error', (error) => (errored = (error as NodeJS.ErrnoException).code ?? error.message));
        const finish = () => {
          if (done) return;
          done = true;
          const serverClosed = closed;
          socket.destroy();
          const raw = Buffer.concat(chunks);
          const text = raw.toString('latin1');
          const codes = [...text.matchAll(/RTSP\/1\.0 (\d{3})/g)].map((m) => Number(m[1]));
          let cls: string;
          if (codes.length > 0) cls = `answered-${Math.floor(codes[0]! / 100)}xx`;
          else if (raw.length > 0) cls = 'data';
          else if (errored) cls = `error-${errored}`;
          else cls = serverClosed ? 'closed' : 'silent';
          // Whatever comes back starts as RTSP (in the request's version), HTTP (tunnels), or an interleaved frame of a session.
          const first = raw.subarray(0, 16).toString('latin1');
          if (raw.length > 0 && !/^(RTSP\/\d\.\d |HTTP\/1\.[01] |\$)/.test(first)) {
            resolve({ cls, problem: `the server sent ${show(raw.subarray(0, 80))} for ${input.kind}: ${input.describe}` });
            return;
          }
          resolve({ cls: `${input.kind}:${cls}` });
        };
        socket.on('connect', async () => {
          connected = true;
          for (const step of input.steps) {
            if (closed) break;
            socket.write(step.bytes);
            if (step.waitMs > 0) await new Promise((r) => setTimeout(r, step.waitMs));
          }
          if (input.kind === 'early-disconnect') {
            done = true;
            socket.destroy();
            resolve({ cls: 'early-disconnect' });
            return;
          }
          finish();
        });
        socket.on('close', () => {
          closed = true;
          // Refused or reset before it connected: nothing more will come.
          if (!connected) finish();
        });
      });
    },
  };
}
