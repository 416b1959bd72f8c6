import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import type { FuzzRandom } from './fuzzRandom.js';
import { localAddress, show, type FuzzOutcome, type FuzzSurface } from './fuzzRunner.js';
import type { FuzzTarget } from './fuzzTarget.js';

/** RFC 6455: a close reason fits in 123 bytes. */
const MAX_REASON_BYTES = 123;
/** The README's bound on a signalling message (UTF-8 bytes); `ws` refuses a longer frame with 1009. */
const MAX_MESSAGE_BYTES = 64 * 1024;
/** New sockets a second: under the gateway's overall admission rate (20/s), so most inputs are tried, not refused. */
const SOCKETS_PER_SECOND = 15;

const ICE = { candidate: 'candidate:842163049 1 udp 1677729535 127.0.0.1 56143 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag sXZ7 network-cost 999', sdpMLineIndex: 0, sdpMid: '0', usernameFragment: 'sXZ7' };
const ANSWER = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'm=video 9 UDP/TLS/RTP/SAVPF 96',
  'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:abcd',
  'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  `a=fingerprint:sha-256 ${Array.from(randomBytes(32), (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':')}`,
  'a=setup:active',
  'a=mid:0',
  'a=recvonly',
  'a=rtcp-mux',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  '',
].join('\r\n');

/**
 * The README's contract for one signalling message, written independently of the module's checker: exactly one
 * field, `sdp` (`type` offer|answer, `sdp` a description starting `v=0` with a media section and no control
 * characters but CR, LF, tab) or `ice` (`candidate` empty or `candidate:...`, at most 1024 characters, no control
 * characters; `sdpMLineIndex` an integer 0-63; `sdpMid`, `usernameFragment` strings of at most 256 without control
 * characters, or null), at most 64 KiB. A message this says is invalid must close the socket with 1008 or 1009.
 */
export function validSignal(text: string): boolean {
  if (Buffer.byteLength(text, 'utf8') > MAX_MESSAGE_BYTES) return false;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  const object = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!object(value)) return false;
  const keys = Object.keys(value);
  if (keys.length !== 1) return false;
  if (keys[0] === 'sdp') {
    const sdp = value.sdp;
    if (!object(sdp) || Object.keys(sdp).some((k) => k !== 'type' && k !== 'sdp')) return false;
    return (sdp.type === 'offer' || sdp.type === 'answer') && typeof sdp.sdp === 'string' && sdp.sdp.startsWith('v=0') && /\nm=/.test(sdp.sdp) && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(sdp.sdp);
  }
  if (keys[0] !== 'ice') return false;
  const ice = value.ice;
  if (!object(ice) || Object.keys(ice).some((k) => !['candidate', 'sdpMLineIndex', 'sdpMid', 'usernameFragment'].includes(k))) return false;
  const { candidate, sdpMLineIndex, sdpMid, usernameFragment } = ice;
  const token = (v: unknown) => v === undefined || v === null || (typeof v === 'string' && v.length <= 256 && !/[\u0000-\u001f\u007f]/.test(v));
  return (
    typeof candidate === 'string' &&
    candidate.length <= 1024 &&
    !/[\u0000-\u001f\u007f]/.test(candidate) &&
    (candidate === '' || /^(a=)?candidate:\S/.test(candidate)) &&
    Number.isInteger(sdpMLineIndex) &&
    (sdpMLineIndex as number) >= 0 &&
    (sdpMLineIndex as number) <= 63 &&
    token(sdpMid) &&
    token(usernameFragment)
  );
}

/** One websocket frame as a client sends it (masked unless told otherwise). */
function frame(opcode: number, payload: Buffer, options: { fin?: boolean; rsv?: number; mask?: boolean; length?: bigint } = {}): Buffer {
  const { fin = true, rsv = 0, mask = true } = options;
  const length = options.length ?? BigInt(payload.length);
  const head: number[] = [(fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f)];
  const maskBit = mask ? 0x80 : 0;
  if (length < 126n) head.push(maskBit | Number(length));
  else if (length < 65536n) head.push(maskBit | 126, Number(length >> 8n) & 0xff, Number(length) & 0xff);
  else {
    head.push(maskBit | 127);
    for (let shift = 56n; shift >= 0n; shift -= 8n) head.push(Number((length >> shift) & 0xffn));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = randomBytes(4);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= key[i % 4]!;
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** How the socket of one input closed. */
interface SocketResult {
  readonly code: number;
  readonly reason: Buffer;
  /** We closed it (at the end of a valid input); its close code is then ours. */
  readonly closedByUs: boolean;
}

/** One client socket with its events as promises. */
class FuzzSocket {
  readonly ws: WebSocket;
  readonly opened: Promise<boolean>;
  readonly closed: Promise<{ code: number; reason: Buffer }>;
  readonly offer: Promise<string | null>;
  #offer: string | null = null;

  constructor(url: string, local: string) {
    this.ws = new WebSocket(url, { localAddress: local, handshakeTimeout: 10_000, maxPayload: 16 * 1024 * 1024 });
    this.ws.on('error', () => undefined);
    this.opened = new Promise((resolve) => {
      this.ws.once('open', () => resolve(true));
      this.ws.once('close', () => resolve(false));
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason })));
    this.offer = new Promise((resolve) => {
      this.ws.on('message', (data) => {
        try {
          const msg = JSON.parse(data.toString()) as { sdp?: { type: string; sdp: string } };
          if (msg.sdp?.type === 'offer' && this.#offer === null) {
            this.#offer = msg.sdp.sdp;
            resolve(this.#offer);
          }
        } catch {
          // the module only sends JSON; a test of that is elsewhere
        }
      });
      this.ws.once('close', () => resolve(null));
    });
  }

  /** The TCP socket under the websocket, for frames the client library would never send. */
  get raw(): Socket {
    return (this.ws as unknown as { _socket: Socket })._socket;
  }

  /** Waits up to `ms` for the server to close; null if it did not. */
  async closedWithin(ms: number): Promise<{ code: number; reason: Buffer } | null> {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([this.closed, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)))]);
    clearTimeout(timer);
    return result;
  }

  /** Closes from our side (code 1000) and waits for the close to complete, bounded. */
  async closeOurselves(): Promise<{ code: number; reason: Buffer }> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    const done = await this.closedWithin(5_000);
    if (done) return done;
    this.ws.terminate();
    return this.closed;
  }
}

/** What an input sends and what the contract says must follow. */
interface SignalPlan {
  readonly kind: string;
  readonly describe: string;
  /** `bad`: the socket must be closed with one of `codes`; `any`: whatever happens, the module stays up. */
  readonly expect: 'bad' | 'any';
  readonly codes?: readonly number[];
  /** Sends the input on an open socket; returns when it has been sent (with what it turned out to be, if only known then). */
  send(socket: FuzzSocket): Promise<void | { describe: string; expect: 'bad' | 'any' }>;
  /** The input closes the socket itself with this code (the server echoes it). */
  readonly ourCloseCode?: number;
}

const BAD_CODES = [1008, 1009];

function textPlan(kind: string, text: string, extra: Partial<SignalPlan> = {}): SignalPlan {
  const valid = validSignal(text);
  return {
    kind,
    describe: show(text),
    expect: valid ? 'any' : 'bad',
    codes: BAD_CODES,
    send: async (socket) => {
      socket.ws.send(text);
    },
    ...extra,
  };
}

/** A well-formed message to start mutating from. */
function baseMessage(rng: FuzzRandom): Record<string, unknown> {
  if (rng.chance()) {
    const ice: Record<string, unknown> = { ...ICE };
    if (rng.chance(0.3)) delete ice.sdpMid;
    if (rng.chance(0.3)) delete ice.usernameFragment;
    return { ice };
  }
  return { sdp: { type: rng.pick(['answer', 'offer']), sdp: ANSWER } };
}

/** A message with one field of the wrong type, an unknown field, or a value out of range. */
function wrongShape(rng: FuzzRandom): string {
  const message = baseMessage(rng);
  const body = (message.ice ?? message.sdp) as Record<string, unknown>;
  const field = rng.pick(Object.keys(body));
  switch (rng.int(0, 7)) {
    case 0:
      body[field] = rng.wrongType(body[field]);
      break;
    case 1:
      // An unknown field whose name is quoted back in the reason: long and non-ASCII, to overflow 123 bytes.
      body[rng.chance() ? rng.nonAscii(rng.int(120, 400)) : rng.string(200)] = rng.json(2);
      break;
    case 2:
      message[rng.pick(['bye', 'candidate', '__proto__', 'constructor', rng.nonAscii(130), ''])] = rng.json(1);
      break;
    case 3:
      if ('sdp' in message) body.type = rng.chance() ? rng.nonAscii(rng.int(120, 300)) : rng.pick(['rollback', 'pranswer', 'OFFER', '', null, 1]);
      else body.candidate = rng.chance() ? rng.nonAscii(rng.int(120, 1200)) : `${rng.string(20)}\r\na=${rng.string(30)}`;
      break;
    case 4:
      if ('ice' in message) body.sdpMLineIndex = rng.pick([-1, 64, 1e308, -1e308, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER, '0', null, []]);
      else body.sdp = rng.pick(['', 'v=1', ' v=0', `v=0\r\n${rng.string(50)}`, rng.nonAscii(200), `v=0\r\nm=video\u0000 9`]);
      break;
    case 5:
      return JSON.stringify(rng.json(4));
    case 6:
      return JSON.stringify(rng.chance() ? [message] : { ice: ICE, sdp: { type: 'answer', sdp: ANSWER } });
    default:
      body[field] = rng.string(rng.int(1, 3000));
  }
  return JSON.stringify(message);
}

/** Valid JSON text the module must refuse, or a valid message, at the edges of what JSON numbers can say. */
function hugeNumber(rng: FuzzRandom): string {
  return `{"ice":{"candidate":${JSON.stringify(ICE.candidate)},"sdpMLineIndex":${rng.numberText()}}}`;
}

/** Non-JSON: random text, a valid message cut or edited, 120+ non-ASCII characters quoted back in the reason. */
function notJson(rng: FuzzRandom): string {
  const valid = JSON.stringify(baseMessage(rng));
  switch (rng.int(0, 5)) {
    case 0:
      return rng.string(300);
    case 1:
      return valid.slice(0, rng.int(0, valid.length - 1));
    case 2:
      return rng.nonAscii(rng.int(120, 2000));
    case 3:
      return `{"ice":${rng.nonAscii(rng.int(120, 500))}}`;
    case 4:
      return `${valid}${rng.string(20) || 'x'}`;
    default:
      return rng.mutate(valid);
  }
}

/** A valid-shaped candidate (or end-of-candidates) with strange content: what reaches the engine's ICE agent. */
function hostileCandidate(rng: FuzzRandom): Record<string, unknown> {
  const address = rng.pick(['127.0.0.1', '0.0.0.0', '255.255.255.255', '::1', '::', 'fe80::1%eth0', 'x.invalid', '999.999.999.999', rng.nonAscii(12), 'a'.repeat(300)]);
  const port = rng.pick(['0', '1', '65535', '65536', '-1', '99999999999', 'x']);
  const fields = [`candidate:${rng.int(0, 2 ** 32)}`, rng.pick(['1', '2', '0', '256']), rng.pick(['udp', 'tcp', 'UDP', 'sctp', rng.string(5) || 'q']), String(rng.number()), address, port, 'typ', rng.pick(['host', 'srflx', 'relay', 'prflx', 'bogus'])];
  if (rng.chance(0.3)) fields.push('raddr', address, 'rport', port, 'tcptype', rng.pick(['active', 'passive', 'so', '']));
  let candidate = fields.join(' ');
  if (rng.chance(0.2)) candidate = '';
  if (rng.chance(0.2)) candidate = `a=${candidate}`;
  if (rng.chance(0.2)) candidate = candidate.slice(0, rng.int(11, candidate.length));
  const ice: Record<string, unknown> = { candidate: candidate.replace(/[\u0000-\u001f\u007f]/g, ''), sdpMLineIndex: rng.int(0, 63) };
  if (rng.chance()) ice.sdpMid = rng.pick([null, '0', '1', '', rng.nonAscii(20), 'video'.repeat(40)]);
  if (rng.chance()) ice.usernameFragment = rng.pick([null, 'sXZ7', '', rng.nonAscii(30)]);
  return { ice };
}

/** The server's offer made into an answer, then edited line by line: what reaches the engine's SDP parser. */
function hostileAnswer(rng: FuzzRandom, offer: string): string {
  const answer = offer
    .replace(/a=setup:actpass/g, 'a=setup:active')
    .replace(/a=sendonly/g, 'a=recvonly')
    .replace(/a=ice-ufrag:\S+/g, 'a=ice-ufrag:fuzz')
    .replace(/a=ice-pwd:\S+/g, 'a=ice-pwd:fuzzfuzzfuzzfuzzfuzzfuzz')
    .split(/\r?\n/)
    .filter((l) => !l.startsWith('a=candidate'))
    .join('\r\n');
  return JSON.stringify({ sdp: { type: 'answer', sdp: editSdp(rng, answer) } });
}

/**
 * A session description edited line by line with hostile lines (strange attributes, huge or many payload types,
 * bad fingerprints, candidates, ports), lines removed, repeated or mutated; it still starts with `v=0`, has a media
 * section, no control characters and stays under 60 KB, so that what it tries is the engine's SDP handling, not
 * the module's message check.
 */
export function editSdp(rng: FuzzRandom, sdp: string): string {
  let lines = sdp.split(/\r?\n/);
  const clean = (text: string) => text.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, '');
  const hostile = [
    () => `a=${clean(rng.string(40))}:${clean(rng.string(200))}`,
    () => `m=video ${rng.pick(['0', '9', '65536', '99999999999', '-1'])} ${rng.pick(['UDP/TLS/RTP/SAVPF', 'RTP/AVP', 'TCP/DTLS/SCTP', 'x'])} ${Array.from({ length: rng.int(0, 300) }, () => rng.int(0, 300)).join(' ')}`,
    () => `a=rtpmap:${rng.int(0, 300)} ${rng.pick(['H264', 'VP8', 'opus', rng.nonAscii(8)])}/${rng.numberText()}`,
    () => `a=fmtp:${rng.pick(['96', '97', '127', '-1', 'x'])} ${clean(rng.string(rng.int(0, 4000)))}`,
    () => `a=fingerprint:${rng.pick(['sha-256', 'sha-1', 'md5', 'x'])} ${rng.pick(['ZZ', '', '00'.repeat(200), rng.nonAscii(20)])}`,
    () => `a=ssrc:${rng.numberText()} cname:${rng.nonAscii(10)}`,
    () => `a=candidate:1 1 UDP ${rng.numberText()} ${rng.pick(['127.0.0.1', '::', rng.nonAscii(5)])} ${rng.int(0, 70000)} typ host`,
    () => `a=extmap:${rng.int(0, 300)} ${clean(rng.string(30))}`,
    () => `a=mid:${rng.pick(['', '0', '1', rng.nonAscii(40)])}`,
    () => `a=${rng.pick(['sendrecv', 'sendonly', 'recvonly', 'inactive'])}`,
    () => `a=setup:${rng.pick(['active', 'passive', 'actpass', 'holdconn', ''])}`,
    () => `a=group:BUNDLE ${Array.from({ length: rng.int(0, 50) }, () => rng.int(0, 5)).join(' ')}`,
    () => `c=IN ${rng.pick(['IP4', 'IP6', 'XX'])} ${rng.pick(['0.0.0.0', '::', '300.1.1.1', ''])}`,
    () => `${rng.pick(['v', 'o', 's', 't', 'b', 'k', 'z', 'x', ''])}=${clean(rng.string(100))}`,
    () => 'x'.repeat(rng.int(1000, 30000)),
  ];
  for (let i = rng.int(1, 12); i > 0; i--) {
    const at = rng.int(1, lines.length);
    switch (rng.int(0, 3)) {
      case 0:
        lines.splice(at, 0, rng.pick(hostile)());
        break;
      case 1:
        lines.splice(at, 1);
        break;
      case 2:
        lines.splice(at, 0, ...Array<string>(rng.int(2, 60)).fill(lines[at % lines.length] ?? ''));
        break;
      default:
        lines[at % lines.length] = clean(rng.mutate(lines[at % lines.length] ?? ''));
    }
  }
  if (!lines[0]?.startsWith('v=0')) lines = ['v=0', ...lines];
  let out = lines.join('\r\n');
  if (Buffer.byteLength(out) > 60_000) out = out.slice(0, 20_000);
  if (!/\nm=/.test(out)) out += '\r\nm=video 9 UDP/TLS/RTP/SAVPF 96';
  return out;
}

/** Protocol-level frames the `ws` client never sends: reserved bits, unknown opcodes, bad lengths and close codes. */
function protocolPlan(rng: FuzzRandom): SignalPlan {
  const text = Buffer.from('{"ice":');
  const variants: Array<[string, () => Buffer, readonly number[]]> = [
    ['rsv bits set', () => frame(0x1, text, { rsv: rng.int(1, 7) }), [1002]],
    ['unknown opcode', () => frame(rng.pick([3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]), rng.bytes(rng.int(0, 50))), [1002]],
    ['continuation without a start', () => frame(0x0, text), [1002]],
    ['unmasked client frame', () => frame(0x1, text, { mask: false }), [1002]],
    ['ping over 125 bytes', () => frame(0x9, rng.bytes(rng.int(126, 500))), [1002]],
    ['fragmented ping', () => frame(0x9, rng.bytes(5), { fin: false }), [1002]],
    ['close with one byte', () => frame(0x8, Buffer.from([3])), [1002]],
    ['close with a code no one may send', () => frame(0x8, closePayload(rng.pick([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]), 'x')), [1002]],
    ['close with a reason that is not UTF-8', () => frame(0x8, Buffer.concat([closePayload(1000, ''), Buffer.from([0xff, 0xfe, 0xc0, 0x80])])), [1007]],
    ['length over 2^53', () => frame(0x1, Buffer.alloc(0), { length: 2n ** 63n + BigInt(rng.int(0, 1000)) }), [1009]],
    ['length over maxPayload, no payload', () => frame(0x2, Buffer.alloc(0), { length: BigInt(rng.int(65537, 2 ** 31)) }), [1009]],
    ['text that is not UTF-8', () => frame(0x1, Buffer.concat([text, Buffer.from([rng.pick([0xff, 0xc0, 0xed, 0xf8]), 0xa0, 0x80])])), [1007]],
    ['random bytes on the wire', () => rng.bytes(rng.int(1, 300)), [1002, 1007, 1008, 1009]],
  ];
  const [name, build, codes] = rng.pick(variants);
  return {
    kind: 'protocol',
    describe: name,
    expect: name === 'random bytes on the wire' ? 'any' : 'bad',
    codes,
    send: async (socket) => {
      socket.raw.write(build());
    },
  };
}

function closePayload(code: number, reason: string): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(code & 0xffff);
  return Buffer.concat([out, Buffer.from(reason)]);
}

/** The input a generator draws (exported to look at one input of a seed: `plan(FuzzRandom.forInput(seed, 'signalling', i))`). */
export function plan(rng: FuzzRandom): SignalPlan {
  const roll = rng.next();
  if (roll < 0.14) return textPlan('not-json', notJson(rng));
  if (roll < 0.32) return textPlan('wrong-shape', wrongShape(rng));
  if (roll < 0.38) return textPlan('huge-number', hugeNumber(rng));
  if (roll < 0.44) {
    const depth = rng.int(100, 40_000);
    return textPlan('deep', rng.chance() ? `{"ice":${rng.deepText(depth)}}` : rng.deepText(depth));
  }
  if (roll < 0.48) {
    const bytes = rng.pick([MAX_MESSAGE_BYTES - 1, MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1, rng.int(MAX_MESSAGE_BYTES, 4 * MAX_MESSAGE_BYTES)]);
    const filler = rng.chance() ? 'x'.repeat(bytes) : 'é'.repeat(Math.ceil(bytes / 2));
    const text = `{"ice":{"candidate":"candidate:${filler}","sdpMLineIndex":0}}`;
    return textPlan('oversize', text, { describe: `${Buffer.byteLength(text)} bytes` });
  }
  if (roll < 0.53) {
    const bytes = rng.bytes(rng.int(0, 2000));
    return { kind: 'binary', describe: `${bytes.length} binary bytes`, expect: 'bad', codes: BAD_CODES, send: async (s) => s.ws.send(bytes, { binary: true }) };
  }
  if (roll < 0.6) {
    const text = rng.chance() ? JSON.stringify(rng.chance() ? baseMessage(rng) : hostileCandidate(rng)) : rng.chance() ? wrongShape(rng) : notJson(rng);
    const bytes = Buffer.from(text);
    const cuts = Array.from({ length: rng.int(1, 8) }, () => rng.int(0, bytes.length)).sort((a, b) => a - b);
    const unfinished = rng.chance(0.15);
    const base = textPlan('fragments', text);
    return {
      ...base,
      kind: unfinished ? 'fragments-unfinished' : 'fragments',
      describe: `${cuts.length + 1} fragments of ${base.describe}`,
      expect: unfinished ? 'any' : base.expect,
      send: async (socket) => {
        let from = 0;
        for (const cut of cuts) {
          socket.ws.send(bytes.subarray(from, cut), { fin: false, binary: false });
          from = cut;
        }
        if (unfinished) socket.ws.terminate();
        else socket.ws.send(bytes.subarray(from), { fin: true, binary: false });
      },
    };
  }
  if (roll < 0.64) {
    const count = rng.int(205, 400);
    const messages = Array.from({ length: count }, () => JSON.stringify(hostileCandidate(rng))).filter(validSignal);
    return {
      kind: 'flood',
      describe: `${messages.length} valid candidates at once`,
      // More than 200 in 10 s: refused as a flood (1008), unless the engine ends the peer first for holding too
      // many candidates before an answer (1001, with its reason).
      expect: messages.length > 200 ? 'bad' : 'any',
      codes: [1008, 1001],
      send: async (socket) => {
        for (const message of messages) socket.ws.send(message);
      },
    };
  }
  if (roll < 0.72) return vanishPlan(rng);
  if (roll < 0.8) {
    const messages = Array.from({ length: rng.int(1, 6) }, () => JSON.stringify(hostileCandidate(rng)));
    const valid = messages.every(validSignal);
    return {
      kind: 'hostile-candidates',
      describe: show(messages.join(' ')),
      expect: valid ? 'any' : 'bad',
      codes: BAD_CODES,
      send: async (socket) => {
        for (const message of messages) socket.ws.send(message);
      },
    };
  }
  if (roll < 0.9) {
    return {
      kind: 'hostile-answer',
      describe: "an edited answer to the server's offer",
      expect: 'any',
      codes: BAD_CODES,
      send: async (socket) => {
        const offer = await Promise.race([socket.offer, new Promise<null>((resolve) => setTimeout(() => resolve(null), 8_000))]);
        const texts = [hostileAnswer(rng, offer ?? ANSWER), ...Array.from({ length: rng.int(0, 3) }, () => JSON.stringify(hostileCandidate(rng)))];
        // Closed while we waited for the offer (the peer's negotiation timeout): nothing was sent, nothing to judge.
        if (socket.ws.readyState !== WebSocket.OPEN) return { describe: `closed before the offer came; would have sent ${show(texts[0]!, 100)}`, expect: 'any' };
        for (const text of texts) socket.ws.send(text);
        return { describe: show(texts.join(' '), 300), expect: texts.every(validSignal) ? 'any' : 'bad' };
      },
    };
  }
  if (roll < 0.96) return protocolPlan(rng);
  // Our own close, with a code the protocol allows: the server echoes it.
  const code = rng.pick([1000, 1001, 1003, 1007, 1008, 1011, 3000, 4000, 4999]);
  const reason = rng.chance() ? rng.nonAscii(rng.int(0, 40)) : rng.string(60).replace(/[^\x20-\x7e]/g, '');
  return {
    kind: 'client-close',
    describe: `close ${code} ${show(reason)}`,
    expect: 'any',
    ourCloseCode: code,
    send: async (socket) => {
      socket.raw.write(frame(0x8, closePayload(code, Buffer.from(reason).subarray(0, 120).toString())));
    },
  };
}

/** A socket that goes away: before the handshake ends, right after it, or mid-frame. */
function vanishPlan(rng: FuzzRandom): SignalPlan {
  const how = rng.pick(['terminate at once', 'half a frame', 'half a handshake', 'whole handshake, then gone']);
  return {
    kind: 'vanish',
    describe: how,
    expect: 'any',
    send: async (socket) => {
      if (how === 'half a frame') socket.raw.write(frame(0x1, Buffer.from(JSON.stringify({ ice: ICE }))).subarray(0, rng.int(1, 20)));
      socket.raw.destroy();
    },
  };
}

/** Opens a raw TCP connection, sends (part of) an upgrade request to /ws, and drops it. */
function rawVanish(target: FuzzTarget, rng: FuzzRandom, local: string, whole: boolean): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ port: target.httpPort, host: '127.0.0.1', localAddress: local });
    const request = Buffer.from(
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
    socket.on('connect', () => {
      socket.write(whole ? request : request.subarray(0, rng.int(1, request.length - 1)));
      setTimeout(() => socket.destroy(), whole ? rng.int(0, 30) : 0);
    });
  });
}

/** A close reason the module sent that `ws` and every client can take: printable ASCII, at most 123 bytes. */
function badReason(reason: Buffer): string | null {
  if (reason.length > MAX_REASON_BYTES) return `a close reason of ${reason.length} bytes`;
  if (reason.some((b) => b < 0x20 || b > 0x7e)) return `a close reason that is not printable ASCII: ${show(reason)}`;
  return null;
}

/**
 * The websocket signalling surface (/ws): malformed and non-ASCII JSON, wrong types, huge numbers, deep nesting,
 * oversized, binary and non-UTF-8 messages, fragments, floods, protocol violations, our own closes, and sockets
 * that vanish. Each input is its own socket, from its own local address; one refused at admission (1013) is tried
 * again a little later. A message the contract says is invalid must close the socket with 1008/1009 (1002/1007
 * for the protocol's own violations); every reason the module sends is printable ASCII of at most 123 bytes.
 */
export function signallingSurface(): FuzzSurface {
  return {
    name: 'signalling',
    concurrency: 8,
    ratePerSecond: SOCKETS_PER_SECOND,
    async run(rng, index, target): Promise<FuzzOutcome> {
      const input = plan(rng);
      const also: string[] = [];
      const local = localAddress(1, index);
      if (input.kind === 'vanish' && (input.describe === 'half a handshake' || input.describe === 'whole handshake, then gone')) {
        await rawVanish(target, rng, local, input.describe !== 'half a handshake');
        return { cls: 'vanish' };
      }
      for (let attempt = 0; ; attempt++) {
        const socket = new FuzzSocket(target.wsUrl, local);
        if (!(await socket.opened)) {
          const { code } = await socket.closed;
          return { cls: 'handshake-failed', problem: `the websocket handshake failed (${code}) for ${input.kind} ${input.describe}` };
        }
        // A refusal at admission comes at once; give it a moment so the input is not wasted on a closing socket.
        const early = await socket.closedWithin(20);
        if (early?.code === 1013) {
          also.push('refused-1013');
          const reasonProblem = badReason(early.reason);
          if (reasonProblem) return { cls: 'refused-1013', problem: reasonProblem, also };
          if (attempt >= 8) return { cls: 'refused-1013', also };
          await new Promise((resolve) => setTimeout(resolve, 250 * (attempt + 1)));
          continue;
        }
        if (early) return { cls: `closed-at-once-${early.code}`, problem: `closed before the input was sent: ${early.code} ${show(early.reason)}`, also };
        return { ...(await sendInput(socket, input, target)), also };
      }
    }
  };
}

/** Sends one input on an open socket and judges how the module answered. */
async function sendInput(socket: FuzzSocket, plan: SignalPlan, target: FuzzTarget): Promise<FuzzOutcome> {
  let input = plan;
  try {
    const learned = await input.send(socket);
    if (learned) input = { ...input, ...learned };
  } catch (error) {
    // A send on a socket the server closed meanwhile: the close says what happened.
    if (socket.ws.readyState === WebSocket.OPEN) throw error;
  }
  if (input.kind === 'vanish' || input.kind === 'fragments-unfinished') return { cls: input.kind };
  const wait = input.expect === 'bad' ? 10_000 : input.kind === 'hostile-answer' ? 1_500 : 300;
  const byServer = await socket.closedWithin(wait);
  const result: SocketResult = byServer
    ? { ...byServer, closedByUs: false }
    : { ...(await socket.closeOurselves()), closedByUs: true };
  const leaks = target.leaks(result.reason);
  if (leaks.length > 0) return { cls: 'leak', problem: `the close reason holds the secret: ${show(result.reason)}` };
  if (input.ourCloseCode !== undefined) {
    return result.code === input.ourCloseCode || result.code === 1000
      ? { cls: 'client-close-echoed' }
      : { cls: `client-close-${result.code}`, problem: `closed ${input.ourCloseCode} and got ${result.code} back` };
  }
  if (!result.closedByUs) {
    const reasonProblem = badReason(result.reason);
    if (reasonProblem) return { cls: `closed-${result.code}`, problem: `${reasonProblem} for ${input.kind} ${input.describe}` };
  }
  if (input.expect === 'bad') {
    if (result.closedByUs) return { cls: 'not-refused', problem: `an invalid ${input.kind} input was not refused in ${wait} ms: ${input.describe}` };
    if (!(input.codes ?? BAD_CODES).includes(result.code)) {
      return { cls: `closed-${result.code}`, problem: `an invalid ${input.kind} input closed with ${result.code} ${show(result.reason)}, not ${(input.codes ?? BAD_CODES).join('/')}: ${input.describe}` };
    }
    return { cls: `refused-${result.code}` };
  }
  if (result.closedByUs) return { cls: 'accepted' };
  if (result.code === 1006 || result.code === 1011) {
    return { cls: `closed-${result.code}`, problem: `the server dropped the socket (${result.code}) on ${input.kind} ${input.describe}` };
  }
  return { cls: `closed-${result.code}` };
}
