import { readFileSync } from 'node:fs';

/** utime + stime of the processes so far, in seconds (Linux /proc; 100 ticks a second). */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100;
}

/** CPU seconds per second of each process over the next `windowMs` (in the order given), and their sum. */
export async function cpuLoads(pids: number[], windowMs: number): Promise<{ total: number; each: number[] }> {
  const before = pids.map((pid) => cpuSeconds([pid]));
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const seconds = (performance.now() - t0) / 1000;
  const each = pids.map((pid, i) => (cpuSeconds([pid]) - before[i]!) / seconds);
  return { total: each.reduce((a, b) => a + b, 0), each };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** The value below which a fraction `p` (0..1) of the values lie (nearest rank). */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** How far the values stray from their mean, as a fraction of it: 0.08 reads "within ±8%". */
export function spread(values: number[]): number {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return Math.max(...values.map((v) => Math.abs(v - mean))) / mean;
}
