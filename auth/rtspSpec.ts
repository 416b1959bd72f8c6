import type { RtspAuthSpec, RtspUserSpec } from '../ipc/protocol.js';
import type { Rights } from './rights.js';
import type { AuthSettings } from './settings.js';

function mountsOf(rights: Rights): '*' | string[] {
  if (rights.actions.has('rtsp')) return '*';
  return [...rights.mounts].sort().map((m) => `/${m}`);
}

/**
 * The RTSP part of the auth settings, for the engine (null: open, no RTSPAuth at all, as before auth existed).
 * Users with only a `password_hash` are left out (RTSP Basic and Digest need the password itself; the settings
 * parser warns about them), and so are users with no RTSP right.
 *
 * @example
 * engine.send({ type: 'rtsp', config: { ...rtspConfig, auth: rtspAuthSpec(auth.settings) } });
 */
export function rtspAuthSpec(settings: AuthSettings | null): RtspAuthSpec | null {
  if (settings === null) return null;
  const users: RtspUserSpec[] = [];
  for (const user of settings.users.values()) {
    if (user.password === null) continue;
    const mounts = mountsOf(user.rights);
    if (mounts !== '*' && mounts.length === 0) continue;
    users.push({ name: user.name, password: user.password, mounts });
  }
  return { realm: settings.realm, users, anonymousMounts: mountsOf(settings.anonymous), requireTls: settings.requireTls };
}

function canWatch(spec: RtspAuthSpec | null, path: string): Map<string, string> {
  // Who may watch `path`, as principal -> the credential it uses ('' for anonymous).
  const who = new Map<string, string>();
  if (spec === null) {
    who.set('*', '');
    return who;
  }
  const watches = (mounts: '*' | readonly string[]) => mounts === '*' || mounts.includes(path);
  if (watches(spec.anonymousMounts)) who.set('anonymous', '');
  for (const user of spec.users) if (watches(user.mounts)) who.set(`user:${user.name}`, user.password);
  return who;
}

/**
 * The mounts where someone who could watch can no longer (rights removed, user removed, password changed,
 * `require_tls` switched on, or the module went from open to protected). GstRtspServer does not tell which
 * user a connected client is (its signals with an RTSPContext hang node-gtk), so viewers are closed per mount:
 * close the sessions of these mounts and keep every other mount's viewers.
 *
 * @example
 * for (const path of mountsLosingAccess(previous, next, [...mounts.keys()])) disconnectViewers(path);
 */
export function mountsLosingAccess(before: RtspAuthSpec | null, after: RtspAuthSpec | null, mounts: readonly string[]): string[] {
  const losing: string[] = [];
  for (const path of mounts) {
    const was = canWatch(before, path);
    const now = canWatch(after, path);
    if (now.has('*')) continue; // open now: nobody loses anything
    const tlsNow = after !== null && after.requireTls && (before === null || !before.requireTls);
    let lost = (was.has('*') && !now.has('anonymous')) || (tlsNow && [...was.keys()].some((p) => p !== 'anonymous'));
    for (const [principal, credential] of was) if (principal !== '*' && now.get(principal) !== credential) lost = true;
    if (lost) losing.push(path);
  }
  return losing;
}
