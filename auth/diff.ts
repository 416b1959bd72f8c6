import type { Principal } from './principal.js';
import { sameRights } from './rights.js';
import type { AuthSettings, JwtSettings, UserSettings } from './settings.js';

/**
 * Which principals a settings change touches: their viewers (RTSP sessions, WebRTC peers, websockets) must be
 * re-checked or closed; everyone else keeps watching. A changed password counts as a change (a password is
 * usually changed because it leaked), a changed realm or rate limit does not.
 */
export interface RightsChange {
  /** Open <-> protected: every principal is a different kind of thing now. */
  readonly everyone: boolean;
  /** Users whose rights or credentials changed, or who are gone. */
  readonly users: ReadonlySet<string>;
  /** What requests without credentials may do changed. */
  readonly anonymous: boolean;
  /** The token settings changed (keys, issuer, audience, claim): every token principal. */
  readonly tokens: boolean;
  /** `require_tls` went on: principals that came over plain text must go. */
  readonly tlsNowRequired: boolean;
  /** Whether nothing that matters to a viewer changed. */
  readonly none: boolean;
  /**
   * Whether `principal` (which came over a TLS connection when `secure`) is touched by the change.
   *
   * @example
   * for (const viewer of viewers) if (change.affects(viewer.principal, viewer.secure)) viewer.close('rights changed');
   */
  affects(principal: Principal, secure: boolean): boolean;
}

function sameUser(a: UserSettings, b: UserSettings): boolean {
  if (!sameRights(a.rights, b.rights)) return false;
  if (a.password !== b.password) return false;
  if ((a.hash === null) !== (b.hash === null)) return false;
  if (a.hash && b.hash) {
    return a.hash.key.equals(b.hash.key) && a.hash.salt.equals(b.hash.salt) && JSON.stringify(a.hash.params) === JSON.stringify(b.hash.params);
  }
  return true;
}

function sameJwt(a: JwtSettings | null, b: JwtSettings | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Compares the auth settings in force with new ones (null: no `auth` key, open).
 *
 * @example
 * const change = rightsChange(previous.settings, next.settings);
 * if (!change.none) rtsp.setAuth(next); // and close what change.affects()
 */
export function rightsChange(before: AuthSettings | null, after: AuthSettings | null): RightsChange {
  const everyone = (before === null) !== (after === null);
  const users = new Set<string>();
  let anonymous = false;
  let tokens = false;
  let tlsNowRequired = false;
  if (before && after) {
    for (const [name, old] of before.users) {
      const now = after.users.get(name);
      if (!now || !sameUser(old, now)) users.add(name);
    }
    anonymous = !sameRights(before.anonymous, after.anonymous);
    tokens = !sameJwt(before.jwt, after.jwt);
    tlsNowRequired = !before.requireTls && after.requireTls;
  }
  const none = !everyone && users.size === 0 && !anonymous && !tokens && !tlsNowRequired;
  return {
    everyone,
    users,
    anonymous,
    tokens,
    tlsNowRequired,
    none,
    affects(principal: Principal, secure: boolean): boolean {
      if (everyone) return true;
      if (tlsNowRequired && !secure && principal.kind !== 'anonymous') return true;
      switch (principal.kind) {
        case 'user':
          return users.has(principal.name);
        case 'token':
          return tokens;
        case 'anonymous':
          return anonymous;
        case 'open':
          return false;
      }
    },
  };
}
