import { isIPv6 } from 'node:net';

/** How many new viewers may come, overall and from one address, and how many one address may hold. */
export interface AdmissionLimits {
  /** Open viewers one address may hold at once. */
  readonly maxPerAddress: number;
  /** New viewers a second, overall, and the burst allowed above that rate. */
  readonly ratePerSecond: number;
  readonly burst: number;
  /** New viewers a second from one address, and its burst. */
  readonly addressRatePerSecond: number;
  readonly addressBurst: number;
}

/**
 * The limits for the twin's `webrtc.max_peers_per_address` and `webrtc.new_peers_per_second`: bursts of twice the
 * rate, and half the rate for one address.
 *
 * @example
 * admissionLimits(10, 20) // { maxPerAddress: 10, ratePerSecond: 20, burst: 40, addressRatePerSecond: 10, addressBurst: 40 }
 */
export function admissionLimits(maxPerAddress: number, newPerSecond: number): AdmissionLimits {
  return { maxPerAddress, ratePerSecond: newPerSecond, burst: 2 * newPerSecond, addressRatePerSecond: newPerSecond / 2, addressBurst: 2 * newPerSecond };
}

/** Addresses remembered for their rate at most: an attacker cycling source addresses cannot grow this map. */
export const MAX_TRACKED_ADDRESSES = 4_096;

/** A token bucket: `take()` succeeds while tokens are left; tokens come back at `rate` a second up to `burst`. */
class Bucket {
  #tokens: number;
  #at: number;
  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    this.#tokens = burst;
    this.#at = now;
  }

  take(now: number): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1_000) * this.rate);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }

  /** Seconds until the next token. */
  wait(): number {
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.rate));
  }
}

/**
 * The key one client is counted under: the IPv4 address, or the /64 of an IPv6 one (a host is given a whole /64,
 * so per-address limits on IPv6 would be no limit at all).
 *
 * @example
 * clientKey('::ffff:192.0.2.7') // '192.0.2.7'
 * clientKey('2001:db8:1:2:aaaa::1') // '2001:db8:1:2::/64'
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '').toLowerCase()).join(':')}::/64`;
}

/**
 * Who may open a new WebRTC viewer now: a bounded rate of new peers (each one builds a webrtcbin, which costs far
 * more than refusing a socket), per address and overall, and a bounded number of viewers per address, so that one
 * client can neither hold every slot nor churn faster than peers are torn down.
 */
export class Admission {
  #limits: AdmissionLimits;
  readonly #now: () => number;
  #overall: Bucket;
  /** Rate buckets per client key, least recently used first. */
  readonly #rates = new Map<string, Bucket>();
  /** Viewers open now per client key. */
  readonly #open = new Map<string, number>();

  constructor(limits: AdmissionLimits, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
    this.#overall = new Bucket(limits.ratePerSecond, limits.burst, now());
  }

  /** New limits (a twin change): open viewers stay counted; rates start afresh. */
  configure(limits: AdmissionLimits): void {
    if (JSON.stringify(limits) === JSON.stringify(this.#limits)) return;
    this.#limits = limits;
    this.#overall = new Bucket(limits.ratePerSecond, limits.burst, this.#now());
    this.#rates.clear();
  }

  /** Admits a viewer from `key` (counted as open until {@link release}), or says why not and when to retry. */
  admit(key: string): { ok: true } | { ok: false; reason: string; retryAfterS: number } {
    const open = this.#open.get(key) ?? 0;
    if (open >= this.#limits.maxPerAddress) {
      return { ok: false, reason: `too many WebRTC viewers from one address (${this.#limits.maxPerAddress})`, retryAfterS: 10 };
    }
    const now = this.#now();
    let bucket = this.#rates.get(key);
    if (bucket) this.#rates.delete(key);
    else bucket = new Bucket(this.#limits.addressRatePerSecond, this.#limits.addressBurst, now);
    this.#rates.set(key, bucket);
    for (const [oldest] of this.#rates) {
      if (this.#rates.size <= MAX_TRACKED_ADDRESSES) break;
      this.#rates.delete(oldest);
    }
    if (!bucket.take(now)) return { ok: false, reason: 'new WebRTC viewers from this address too fast', retryAfterS: bucket.wait() };
    if (!this.#overall.take(now)) return { ok: false, reason: 'new WebRTC viewers too fast', retryAfterS: this.#overall.wait() };
    this.#open.set(key, open + 1);
    return { ok: true };
  }

  /** Addresses whose rate is remembered now (bounded). */
  get trackedAddresses(): number {
    return this.#rates.size;
  }

  /** A viewer admitted from `key` is gone. */
  release(key: string): void {
    const open = (this.#open.get(key) ?? 0) - 1;
    if (open > 0) this.#open.set(key, open);
    else this.#open.delete(key);
  }
}
