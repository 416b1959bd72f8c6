/**
 * The WebRTC signalling messages of the original module (one JSON object per websocket message): their types, which
 * the IPC protocol carries, and the check every viewer's message passes before anything reaches webrtcbin. Pure
 * functions: the control plane validates a viewer's message before relaying it to the engine.
 */

/** Largest signalling message accepted, in UTF-8 bytes. Browser answers are 2-10 KB; 64 KiB leaves room. */
export const MAX_SIGNAL_BYTES = 64 * 1024;
/** Longest ICE candidate line: real ones are 60-250 characters. */
export const MAX_CANDIDATE_LENGTH = 1024;
/** Longest `sdpMid` / `usernameFragment` (browsers use a few characters). */
export const MAX_TOKEN_LENGTH = 256;
/** Highest `sdpMLineIndex`: a viewer's session has a handful of m-lines, never this many. */
export const MAX_MLINE_INDEX = 63;

/** `{"sdp":{"type":"offer"|"answer","sdp":"v=0..."}}`: a session description, as the original sends and accepts. */
export interface SdpSignal {
  readonly sdp: { readonly type: 'offer' | 'answer'; readonly sdp: string };
}

/**
 * `{"ice":{"candidate":"candidate:...","sdpMLineIndex":0}}`: one trickled ICE candidate. An empty `candidate`
 * is the end-of-candidates marker some browsers send. `sdpMid` and `usernameFragment` are what a browser's
 * `RTCIceCandidate.toJSON()` adds, which is what a page written for the original sends (`{ice: event.candidate}`).
 */
export interface IceSignal {
  readonly ice: {
    readonly candidate: string;
    readonly sdpMLineIndex: number;
    readonly sdpMid?: string | null;
    readonly usernameFragment?: string | null;
  };
}

/** Any signalling message, in either direction. */
export type SignalMessage = SdpSignal | IceSignal;

/** What {@link parseSignal} returns: the message, or why it was refused. */
export type ParseSignalResult = { readonly ok: true; readonly msg: SignalMessage } | { readonly ok: false; readonly reason: string };

type Json = Record<string, unknown>;

function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Keys of `object` that are not in `allowed` (JSON.parse makes `__proto__` an own key, so it shows up here). */
function unknownKeys(object: Json, allowed: readonly string[]): string[] {
  return Object.keys(object).filter((key) => !allowed.includes(key));
}

/** Control characters other than CR, LF and tab: nothing legitimate in SDP or a candidate has them. */
const CONTROL_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
const LINE_BREAKS_OR_CONTROL = /[\u0000-\u001f\u007f]/;

function refuse(reason: string): ParseSignalResult {
  return { ok: false, reason };
}

function checkToken(name: string, value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') return `ice.${name} must be a string or null`;
  if (value.length > MAX_TOKEN_LENGTH) return `ice.${name} is longer than ${MAX_TOKEN_LENGTH} characters`;
  if (LINE_BREAKS_OR_CONTROL.test(value)) return `ice.${name} contains control characters`;
  return null;
}

function parseSdp(body: unknown): ParseSignalResult {
  if (!isPlainObject(body)) return refuse('sdp must be an object');
  const extra = unknownKeys(body, ['type', 'sdp']);
  if (extra.length > 0) return refuse(`sdp has unknown field(s): ${extra.join(', ')}`);
  const { type, sdp } = body;
  if (type !== 'offer' && type !== 'answer') return refuse(`sdp.type must be "offer" or "answer", not ${JSON.stringify(type) ?? 'undefined'}`);
  if (typeof sdp !== 'string') return refuse('sdp.sdp must be a string');
  if (!sdp.startsWith('v=0')) return refuse('sdp.sdp is not a session description (must start with "v=0")');
  if (CONTROL_CHARS.test(sdp)) return refuse('sdp.sdp contains control characters');
  if (!/\r?\nm=/.test(sdp)) return refuse('sdp.sdp has no media section');
  return { ok: true, msg: { sdp: { type, sdp } } };
}

function parseIce(body: unknown): ParseSignalResult {
  if (!isPlainObject(body)) return refuse('ice must be an object');
  const extra = unknownKeys(body, ['candidate', 'sdpMLineIndex', 'sdpMid', 'usernameFragment']);
  if (extra.length > 0) return refuse(`ice has unknown field(s): ${extra.join(', ')}`);
  const { candidate, sdpMLineIndex, sdpMid, usernameFragment } = body;
  if (typeof candidate !== 'string') return refuse('ice.candidate must be a string');
  if (candidate.length > MAX_CANDIDATE_LENGTH) return refuse(`ice.candidate is longer than ${MAX_CANDIDATE_LENGTH} characters`);
  if (LINE_BREAKS_OR_CONTROL.test(candidate)) return refuse('ice.candidate contains line breaks or control characters');
  if (candidate !== '' && !/^(a=)?candidate:\S/.test(candidate)) return refuse('ice.candidate must start with "candidate:"');
  if (typeof sdpMLineIndex !== 'number' || !Number.isInteger(sdpMLineIndex)) return refuse('ice.sdpMLineIndex must be an integer');
  if (sdpMLineIndex < 0 || sdpMLineIndex > MAX_MLINE_INDEX) return refuse(`ice.sdpMLineIndex must be between 0 and ${MAX_MLINE_INDEX}`);
  const tokenError = checkToken('sdpMid', sdpMid) ?? checkToken('usernameFragment', usernameFragment);
  if (tokenError) return refuse(tokenError);
  const ice: IceSignal['ice'] = { candidate, sdpMLineIndex };
  if (typeof sdpMid === 'string' || sdpMid === null) Object.assign(ice, { sdpMid });
  if (typeof usernameFragment === 'string' || usernameFragment === null) Object.assign(ice, { usernameFragment });
  return { ok: true, msg: { ice } };
}

/**
 * Checks one signalling message from a viewer: size, JSON, and exactly one of the two shapes the original's
 * protocol has (see {@link SdpSignal}, {@link IceSignal}); unknown fields are refused rather than ignored, so a
 * client speaking another protocol gets a clear reason instead of a silent stall.
 *
 * @example
 * const result = parseSignal(ws.data);
 * if (result.ok) peer.handleSignal(result.msg);
 * else log.warn(`signalling message refused: ${result.reason}`);
 */
export function parseSignal(text: string): ParseSignalResult {
  if (typeof text !== 'string') return refuse('message must be text');
  // The length check first is cheap and bounds the byte count below (a UTF-16 unit is at most 3 UTF-8 bytes).
  if (text.length > MAX_SIGNAL_BYTES || Buffer.byteLength(text, 'utf8') > MAX_SIGNAL_BYTES) {
    return refuse(`message is larger than ${MAX_SIGNAL_BYTES} bytes`);
  }
  if (text.trim() === '') return refuse('message is empty');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return refuse(`message is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!isPlainObject(value)) return refuse('message must be a JSON object');
  const keys = Object.keys(value);
  if (keys.length !== 1 || (keys[0] !== 'sdp' && keys[0] !== 'ice')) {
    return refuse(`message must have exactly one field, "sdp" or "ice" (got ${keys.length === 0 ? 'none' : keys.map((k) => JSON.stringify(k)).join(', ')})`);
  }
  return keys[0] === 'sdp' ? parseSdp(value.sdp) : parseIce(value.ice);
}
