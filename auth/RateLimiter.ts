import { isIPv6 } from 'node:net';
import { DEFAULT_AUTH } from '../config/defaults.js';
import { LruMap } from './LruMap.js';

/** How failed logins are limited (twin key `auth.rate_limit`). */
export interface RateLimitSettings {
  /** Failures allowed from one client within `windowMs`; the next one blocks it. */
  readonly maxFailures: number;
  readonly windowMs: number;
  /** How long a blocked client is refused without its credentials being looked at. */
  readonly blockMs: number;
  /** Clients remembered at once; beyond it the least recently seen is forgotten (bounded memory). */
  readonly maxClients: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitSettings = {
  maxFailures: DEFAULT_AUTH.rateLimit.maxFailures,
  windowMs: DEFAULT_AUTH.rateLimit.windowS * 1000,
  blockMs: DEFAULT_AUTH.rateLimit.blockS * 1000,
  maxClients: 10_000,
};

interface ClientState {
  failures: number;
  windowStart: number;
  blockedUntil: number;
}

/**
 * The key a client is limited under: its IPv4 address (an IPv4-mapped IPv6 address counts as IPv4), or its
 * IPv6 /64, since one IPv6 host usually owns a whole /64 and could otherwise rotate addresses freely.
 *
 * @example
 * clientKey('::ffff:10.1.2.3');          // '10.1.2.3'
 * clientKey('2001:db8:1:2:aaaa::1');     // '2001:db8:1:2::/64'
 */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head, tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * Failed logins per client address: after `maxFailures` failures within `windowMs`, the client is refused for
 * `blockMs` (answered 429 with Retry-After, before any password is checked, so a blocked client cannot make
 * the module spend scrypt time either). A success clears the client's count.
 *
 * @example
 * const limiter = new RateLimiter(DEFAULT_RATE_LIMIT);
 * if (limiter.retryAfterMs(ip) > 0) return reply.code(429);
 * if (!ok) limiter.fail(ip); else limiter.succeed(ip);
 */
export class RateLimiter {
  /** Client key -> its failures in the current window and block. */
  readonly #clients: LruMap<string, ClientState>;
  readonly #settings: RateLimitSettings;
  readonly #now: () => number;

  constructor(settings: RateLimitSettings = DEFAULT_RATE_LIMIT, now: () => number = Date.now) {
    this.#settings = settings;
    this.#now = now;
    this.#clients = new LruMap(settings.maxClients, now);
  }

  get settings(): RateLimitSettings {
    return this.#settings;
  }

  /** Clients currently remembered (bounded by `maxClients`). */
  get size(): number {
    return this.#clients.size;
  }

  /** Milliseconds until `address` may try again; 0 when it may now. */
  retryAfterMs(address: string): number {
    const state = this.#clients.get(clientKey(address));
    if (!state) return 0;
    return Math.max(0, state.blockedUntil - this.#now());
  }

  /** Counts a failure; returns how long the client is now blocked (0: not blocked). */
  fail(address: string): number {
    const key = clientKey(address);
    const now = this.#now();
    const state = this.#clients.get(key) ?? { failures: 0, windowStart: now, blockedUntil: 0 };
    if (now - state.windowStart >= this.#settings.windowMs) {
      state.failures = 0;
      state.windowStart = now;
    }
    state.failures += 1;
    if (state.failures >= this.#settings.maxFailures) state.blockedUntil = now + this.#settings.blockMs;
    const keepFor = Math.max(state.blockedUntil - now, state.windowStart + this.#settings.windowMs - now, 1);
    this.#clients.set(key, state, keepFor);
    return Math.max(0, state.blockedUntil - now);
  }

  /** A successful login: the client's failures are forgotten. */
  succeed(address: string): void {
    const key = clientKey(address);
    const state = this.#clients.get(key);
    // A success cannot lift a block: the block is checked first, so a success only arrives when unblocked.
    if (state && state.blockedUntil <= this.#now()) this.#clients.delete(key);
  }
}
