import { errorMessage } from '../config/errors.js';
import type { SampleHub } from './SampleHub.js';
import { WebRtcFanout } from './WebRtcFanout.js';

/**
 * The engine's shared fan-outs: the one new shared viewers join, built when the first of them comes, and failed
 * ones until their last viewer is gone. A fan-out that fails (an error on its pipeline) stops being joined at
 * once, so the next viewer builds a new one; its own viewers are failed by their peers, which listen for it.
 */
export class WebRtcFanouts {
  readonly #hub: SampleHub;
  /** The engine's log. */
  readonly #log: (level: 'warn' | 'error', msg: string) => void;
  /** The fan-out new viewers join; null until one joins, and after it fails. */
  #current: WebRtcFanout | null = null;
  /** Every fan-out not closed yet: the current one and failed ones that still have viewers. */
  readonly #open = new Set<WebRtcFanout>();

  constructor(hub: SampleHub, log: (level: 'warn' | 'error', msg: string) => void) {
    this.#hub = hub;
    this.#log = log;
  }

  /** Fan-outs not closed yet (a failed one stays until its viewers have left). */
  get size(): number {
    return this.#open.size;
  }

  /** The fan-out new viewers join now: null before the first of them, and once it has failed. */
  get current(): WebRtcFanout | null {
    return this.#current;
  }

  /** The fan-out a new viewer joins (it attaches a branch next): the current one, or a new one. */
  join(): WebRtcFanout {
    if (this.#current && this.#current.failure === null) return this.#current;
    const fanout = new WebRtcFanout(this.#hub);
    fanout.on('log', (level, msg) => this.#log(level, msg));
    fanout.on('failed', () => {
      if (this.#current === fanout) this.#current = null;
      this.#closeIfIdle(fanout);
    });
    this.#current = fanout;
    this.#open.add(fanout);
    return fanout;
  }

  /** A viewer of `fanout` has detached its branch: a fan-out with no branch left stops payloading for nobody. */
  left(fanout: WebRtcFanout): void {
    this.#closeIfIdle(fanout);
  }

  close(): void {
    for (const fanout of this.#open) this.#closeNow(fanout);
    this.#current = null;
  }

  #closeIfIdle(fanout: WebRtcFanout): void {
    if (fanout.branches === 0) this.#closeNow(fanout);
  }

  #closeNow(fanout: WebRtcFanout): void {
    if (!this.#open.delete(fanout)) return;
    if (this.#current === fanout) this.#current = null;
    try {
      fanout.close();
    } catch (error) {
      this.#log('error', `WebRTC fan-out: close failed: ${errorMessage(error)}`);
    }
  }
}
