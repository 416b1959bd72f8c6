/** A doubling delay: how long to wait before retry number `attempt + 1`. */
export interface BackoffPolicy {
  /** The first delay, after one failure. */
  readonly initialDelayMs: number;
  /** The cap the doubling stops at. */
  readonly maxDelayMs: number;
}

/**
 * The one backoff formula of the module (pipelines, the media engine, the IoT Hub connection): the initial
 * delay doubled per consecutive failure, capped. `attempt` counts failures since the last success, from 0.
 *
 * @example
 * backoffDelay({ initialDelayMs: 500, maxDelayMs: 30_000 }, 3) // 4000
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number): number {
  // The exponent is capped so that 2 ** attempt stays finite however long a camera stays away.
  return Math.min(policy.initialDelayMs * 2 ** Math.min(Math.max(attempt, 0), 30), policy.maxDelayMs);
}
