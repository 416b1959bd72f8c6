import type { Rights } from './rights.js';

/** Who is asking, as the access decision sees it. */
export interface Principal {
  /** `user:<name>`, `token:<sub>`, `anonymous` or `open`: stable across requests, for logs and viewer lists. */
  readonly id: string;
  /** `open`: the module has no `auth` key and everyone may do everything. */
  readonly kind: 'user' | 'token' | 'anonymous' | 'open';
  /** The user name or token subject (empty for anonymous and open). */
  readonly name: string;
  readonly rights: Rights;
  /** When the credential stops being valid (a token's `exp`), in ms since the epoch; null: no end. */
  readonly expiresAt: number | null;
}
