/**
 * What a principal may do. A right is written as text in the twin (`"rtsp:player"`, `"webrtc"`, `"*"`) and
 * checked as an (action, resource) pair: only RTSP has resources (mount names); every other action is one thing.
 */

/** Everything a viewer or a tool can ask the module for. */
export type Action = 'rtsp' | 'webrtc' | 'media' | 'status' | 'metrics';

/** Every action, in the order they are documented. */
export const ACTIONS: readonly Action[] = ['rtsp', 'webrtc', 'media', 'status', 'metrics'];

/** A mount name as `rtsp.mounts` accepts it (config/desired.ts), plus `player` for the seed's `/player`. */
const MOUNT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * A set of rights in checkable form: the actions granted whole, and the RTSP mounts granted one by one.
 * Immutable; build one with {@link parseRights} or {@link rightsOf}.
 */
export interface Rights {
  /** Actions granted for every resource (`"webrtc"`, `"rtsp"`, `"rtsp:*"`; `"*"` is all of them). */
  readonly actions: ReadonlySet<Action>;
  /** RTSP mounts granted by name, without the leading `/` (`"rtsp:cam2"` -> `cam2`). */
  readonly mounts: ReadonlySet<string>;
}

/** No rights at all. */
export const NO_RIGHTS: Rights = Object.freeze({ actions: new Set<Action>(), mounts: new Set<string>() });

/** Every right (the open module, or `"*"`). */
export const ALL_RIGHTS: Rights = Object.freeze({ actions: new Set<Action>(ACTIONS), mounts: new Set<string>() });

/** Why a right's text was refused; the message quotes it (rights are not secret). */
export class RightSyntaxError extends Error {
  override readonly name = 'RightSyntaxError';
}

function isAction(text: string): text is Action {
  return (ACTIONS as readonly string[]).includes(text);
}

/**
 * Reads rights as written in the twin or in a token claim. Throws {@link RightSyntaxError} on the first one it
 * does not know, so a typo (`"webtrc"`) is a config error rather than a right silently missing.
 *
 * @example
 * const rights = parseRights(['rtsp:player', 'webrtc']);
 * grants(rights, 'rtsp', 'player'); // true
 * grants(rights, 'rtsp', 'cam2');   // false
 */
export function parseRights(texts: Iterable<string>): Rights {
  const actions = new Set<Action>();
  const mounts = new Set<string>();
  for (const text of texts) {
    if (text === '*') {
      for (const a of ACTIONS) actions.add(a);
      continue;
    }
    const colon = text.indexOf(':');
    const action = colon < 0 ? text : text.slice(0, colon);
    const resource = colon < 0 ? null : text.slice(colon + 1);
    if (!isAction(action)) {
      throw new RightSyntaxError(`unknown right ${JSON.stringify(text.slice(0, 80))}; rights are ${ACTIONS.map((a) => `"${a}"`).join(', ')}, "rtsp:<mount>" or "*"`);
    }
    if (resource === null || resource === '*') {
      actions.add(action);
    } else if (action === 'rtsp' && MOUNT_NAME.test(resource)) {
      mounts.add(resource);
    } else if (action === 'rtsp') {
      throw new RightSyntaxError(`${JSON.stringify(text.slice(0, 80))}: a mount name is letters, digits, '-', '_' or '.'`);
    } else {
      throw new RightSyntaxError(`${JSON.stringify(text.slice(0, 80))}: only rtsp rights name a resource`);
    }
  }
  if (actions.has('rtsp')) mounts.clear(); // all mounts already
  return Object.freeze({ actions, mounts });
}

/**
 * Like {@link parseRights} but skips what it does not know: for token claims, where an identity provider may
 * carry rights for other services in the same claim (`scope`), and an unknown one must not refuse the token.
 *
 * @example
 * lenientRights('openid profile rtsp:player'.split(' ')); // { actions: {}, mounts: {'player'} }
 */
export function lenientRights(texts: Iterable<string>): Rights {
  const known: string[] = [];
  for (const text of texts) {
    try {
      parseRights([text]);
      known.push(text);
    } catch {
      // Not ours: ignored.
    }
  }
  return parseRights(known);
}

/**
 * The union of rights sets (a user's own rights plus those of each of its roles).
 *
 * @example
 * rightsOf(parseRights(['webrtc']), parseRights(['rtsp:cam2'])); // webrtc + rtsp:cam2
 */
export function rightsOf(...sets: readonly Rights[]): Rights {
  const actions = new Set<Action>();
  const mounts = new Set<string>();
  for (const s of sets) {
    for (const a of s.actions) actions.add(a);
    for (const m of s.mounts) mounts.add(m);
  }
  if (actions.has('rtsp')) mounts.clear();
  return Object.freeze({ actions, mounts });
}

/**
 * Whether `rights` allow `action` (on `resource`, the mount name without `/` for RTSP).
 *
 * @example
 * grants(parseRights(['rtsp:*']), 'rtsp', 'cam2'); // true
 * grants(parseRights(['status']), 'metrics');     // false
 */
export function grants(rights: Rights, action: Action, resource?: string): boolean {
  if (rights.actions.has(action)) return true;
  if (action !== 'rtsp' || resource === undefined) return false;
  return rights.mounts.has(resource.startsWith('/') ? resource.slice(1) : resource);
}

/**
 * A canonical text form (sorted), to compare two rights sets and to show them.
 *
 * @example
 * rightsKey(parseRights(['webrtc', 'rtsp:b', 'rtsp:a'])); // 'webrtc rtsp:a rtsp:b'
 */
export function rightsKey(rights: Rights): string {
  if (ACTIONS.every((a) => rights.actions.has(a))) return '*';
  return [...[...rights.actions].sort(), ...[...rights.mounts].sort().map((m) => `rtsp:${m}`)].join(' ');
}

/**
 * Whether two rights sets allow exactly the same things.
 *
 * @example
 * sameRights(parseRights(['rtsp']), parseRights(['rtsp:*'])); // true
 */
export function sameRights(a: Rights, b: Rights): boolean {
  return rightsKey(a) === rightsKey(b);
}
