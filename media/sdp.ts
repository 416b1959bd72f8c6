/**
 * SDP text helpers of the engine's WebRTC peers: the H.264 fmtp browsers need, the payload type to answer a WHEP
 * offer with, and candidates written into a non-trickle answer. Pure string functions, unit-tested without
 * GStreamer.
 */

/** The H.264 profile browsers all decode: constrained baseline, level 3.1. */
export const H264_BROWSER_PROFILE_LEVEL_ID = '42e01f';

/**
 * Makes every H.264 payload type in an SDP carry `profile-level-id=42e01f;packetization-mode=1` (and
 * `level-asymmetry-allowed=1`), which Firefox and Safari need to accept it. webrtcbin writes the fmtp from the
 * caps it knows: none until the payloader has seen the stream, and a level such as `42c015` from the encoder's
 * SPS. Constrained-baseline (and baseline) ids are rewritten to `42e01f`; a main or high profile id is left as is,
 * since claiming baseline for it would be a lie a decoder could act on. Line endings are kept.
 *
 * @example
 * ensureH264Fmtp('v=0\r\n...a=rtpmap:96 H264/90000\r\n') // adds "a=fmtp:96 profile-level-id=42e01f;..."
 */
export function ensureH264Fmtp(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const lines = sdp.split(/\r?\n/);
  const h264 = new Set<string>();
  for (const line of lines) {
    const match = /^a=rtpmap:(\d+) H264\/90000/i.exec(line);
    if (match) h264.add(match[1]!);
  }
  if (h264.size === 0) return sdp;
  const withFmtp = new Set<string>();
  const patched = lines.map((line) => {
    const match = /^a=fmtp:(\d+) ?(.*)$/.exec(line);
    if (!match || !h264.has(match[1]!)) return line;
    withFmtp.add(match[1]!);
    return `a=fmtp:${match[1]} ${patchH264Parameters(match[2]!)}`;
  });
  // A payload type without an fmtp line gets one right after its rtpmap line.
  const result: string[] = [];
  for (const line of patched) {
    result.push(line);
    const match = /^a=rtpmap:(\d+) H264\/90000/i.exec(line);
    if (match && !withFmtp.has(match[1]!)) result.push(`a=fmtp:${match[1]} ${patchH264Parameters('')}`);
  }
  return result.join(eol);
}

/** `packetization-mode=1;profile-level-id=...` with the browser-safe values filled in (order kept). */
function patchH264Parameters(parameters: string): string {
  const entries = parameters
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => {
      const at = p.indexOf('=');
      return at < 0 ? ([p, null] as const) : ([p.slice(0, at), p.slice(at + 1)] as const);
    });
  const out = new Map<string, string | null>(entries);
  const profile = out.get('profile-level-id');
  // profile_idc 0x42 is baseline; all constrained-baseline streams are decodable as 42e01f by every browser.
  if (!profile || /^42[0-9a-f]{4}$/i.test(profile)) out.set('profile-level-id', H264_BROWSER_PROFILE_LEVEL_ID);
  if (!out.has('packetization-mode')) out.set('packetization-mode', '1');
  if (!out.has('level-asymmetry-allowed')) out.set('level-asymmetry-allowed', '1');
  return [...out].map(([k, v]) => (v === null ? k : `${k}=${v}`)).join(';');
}

/**
 * The payload type a viewer's offer gives H.264 with packetization-mode=1, constrained baseline (42e01f) first,
 * then any baseline, then any mode-1 H.264: an answerer must send with the offerer's number. Null when the
 * offer has no H.264 in packetization mode 1.
 *
 * @example
 * offeredH264PayloadType('...a=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n...') // 102
 */
export function offeredH264PayloadType(offer: string): number | null {
  const types = [...offer.matchAll(/a=rtpmap:(\d+) H264\/90000/g)].map((m) => Number(m[1]));
  const fmtp = (pt: number) => new RegExp(`a=fmtp:${pt} ([^\r\n]*)`).exec(offer)?.[1] ?? '';
  const mode1 = types.filter((pt) => /packetization-mode=1/.test(fmtp(pt)));
  return mode1.find((pt) => /profile-level-id=42e01f/i.test(fmtp(pt))) ?? mode1.find((pt) => /profile-level-id=42/i.test(fmtp(pt))) ?? mode1[0] ?? null;
}

/**
 * Puts gathered ICE candidates into each m-section of an SDP, with `a=end-of-candidates` after them (and always
 * in the first section, which carries the bundle): a WHEP answer carries its candidates, there is no trickle.
 * Sections are joined with CRLF, as webrtcbin writes SDP.
 *
 * @example
 * withCandidates(answer, [{ mline: 0, candidate: 'candidate:1 1 UDP 2015363327 192.0.2.1 40000 typ host' }])
 * // '...m=video ...\r\n...\r\na=candidate:1 1 UDP ... typ host\r\na=end-of-candidates\r\n'
 */
export function withCandidates(sdp: string, candidates: ReadonlyArray<{ mline: number; candidate: string }>): string {
  const [session, ...media] = sdp.replace(/\r?\n$/, '').split(/\r?\nm=/);
  const sections = media.map((section, index) => {
    const lines = candidates.filter((c) => c.mline === index).map((c) => `a=${c.candidate}`);
    return [`m=${section}`, ...lines, ...(lines.length > 0 || index === 0 ? ['a=end-of-candidates'] : [])].join('\r\n');
  });
  return `${[session, ...sections].join('\r\n')}\r\n`;
}
