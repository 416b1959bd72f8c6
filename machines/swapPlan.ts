import type { ResolvedConfig, ResolvedPipeline } from '../config/desired.js';

/** What a swap has to do: pipelines to stop (changed or gone) and to start (changed or new); the rest is left alone. */
export interface SwapPlan {
  readonly stop: readonly string[];
  readonly start: readonly ResolvedPipeline[];
  readonly keep: readonly string[];
}

function samePipeline(a: ResolvedPipeline, b: ResolvedPipeline): boolean {
  return a.launch === b.launch && a.onEos === b.onEos;
}

/**
 * Compares the running config with a new one by expanded text; a restart policy change alone restarts nothing.
 *
 * @example
 * planSwap(applied, next) // { stop: ['main'], start: [nextMain], keep: ['cam2'] }
 */
export function planSwap(current: ResolvedConfig | null, next: ResolvedConfig): SwapPlan {
  const before = new Map((current?.pipelines ?? []).map((p) => [p.name, p]));
  const after = new Map(next.pipelines.map((p) => [p.name, p]));
  const stop: string[] = [];
  const start: ResolvedPipeline[] = [];
  const keep: string[] = [];
  for (const [name, old] of before) {
    const now = after.get(name);
    if (!now) stop.push(name);
    else if (!samePipeline(old, now)) {
      stop.push(name);
      start.push(now);
    } else keep.push(name);
  }
  for (const [name, now] of after) if (!before.has(name)) start.push(now);
  return { stop, start, keep };
}
