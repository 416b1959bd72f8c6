import type { RtspAuthSpec, RtspUserSpec } from '../ipc/rtspAuth.js';
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
