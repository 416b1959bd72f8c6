import { randomBytes } from 'node:crypto';
import type { Principal } from './AccessControl.js';
import type { RightsChange } from './diff.js';
import { LruMap } from './LruMap.js';
import type { AuthSettings } from './settings.js';

/** Session tokens start with this, so they are told from JWTs (which hold dots) before any lookup. */
export const SESSION_TOKEN_PREFIX = 'gsts_';
/** How long a sign-in lasts: a working day of watching; the page signs in again after it. */
export const SESSION_TTL_MS = 12 * 3600_000;
/** Sessions kept at once; beyond it the least recently used is forgotten (bounded memory). */
const MAX_SESSIONS = 10_000;

/** One sign-in: the user it was for, until when. */
interface Session {
  readonly user: string;
  readonly expiresAt: number;
}

/**
 * Sign-ins of the browser pages: a user who signed in with a password (the browser's prompt, or the pages' form)
 * gets an opaque token the page can put where no header can go (a websocket URL, `?token=`). A token names the
 * user, not a copy of the rights: each use reads the user's rights from the settings in force, and a change of
 * the user's rights or password (or the user's removal) ends the user's sessions.
 *
 * @example
 * const { token } = sessions.issue(principal);
 * const principal = sessions.principalOf(token, access.settings); // null: unknown, expired or revoked
 */
export class SignInSessions {
  /** Token -> session. */
  readonly #sessions: LruMap<string, Session>;
  readonly #now: () => number;

  constructor(options: { readonly now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
    this.#sessions = new LruMap(MAX_SESSIONS, this.#now);
  }

  /** A new session for a signed-in user (principals of kind `user` only). */
  issue(principal: Principal): { readonly token: string; readonly expiresAt: number } {
    if (principal.kind !== 'user') throw new TypeError('only a user who signed in with a password gets a session');
    const token = `${SESSION_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const expiresAt = this.#now() + SESSION_TTL_MS;
    this.#sessions.set(token, { user: principal.name, expiresAt }, SESSION_TTL_MS);
    return { token, expiresAt };
  }

  /** The principal a session token stands for now, or null (not a session token, unknown, expired, user gone). */
  principalOf(token: string, settings: AuthSettings | null): Principal | null {
    if (!token.startsWith(SESSION_TOKEN_PREFIX) || settings === null) return null;
    const session = this.#sessions.get(token);
    const user = session ? settings.users.get(session.user) : undefined;
    if (!session || !user) return null;
    return { id: `user:${user.name}`, kind: 'user', name: user.name, rights: user.rights, expiresAt: session.expiresAt };
  }

  /** Ends the sessions a settings change touches (users whose rights or password changed; all when open <-> protected). */
  revoke(change: RightsChange): void {
    if (change.everyone) {
      this.#sessions.clear();
      return;
    }
    if (change.users.size === 0 && !change.tlsNowRequired) return;
    for (const [token, session] of this.#sessions.entries()) {
      if (change.users.has(session.user) || change.tlsNowRequired) this.#sessions.delete(token);
    }
  }
}
