import type { LocalSettings } from './settings.js';

/** A local file as the budget sees it. */
export interface BudgetItem {
  readonly id: string;
  readonly size: number;
  /** When the segment started (age is counted from there). */
  readonly startMs: number;
  /** Uploaded to every target (or there are none): deleting it loses nothing. */
  readonly uploaded: boolean;
}

/** The alarm raised while not-uploaded segments fill the budget (or some had to be dropped). */
export interface DiskAlarm {
  readonly kind: 'disk-budget';
  /** `filling`: not-uploaded bytes passed `alarm_at`; `dropping`: not-uploaded segments had to go. */
  readonly level: 'filling' | 'dropping';
  readonly bytesLocal: number;
  readonly bytesPending: number;
  readonly maxBytes: number;
  readonly message: string;
}

export interface BudgetPlan {
  /** Uploaded files to delete, oldest first (nothing is lost). */
  readonly deleteUploaded: readonly string[];
  /** Not-uploaded segments to drop (lost: reported one by one, after the alarm). */
  readonly drop: ReadonlyArray<{ readonly id: string; readonly reason: 'disk-budget' | 'max-age' }>;
  /** Raised alarm, or null when the budget is comfortable. */
  readonly alarm: DiskAlarm | null;
}

/**
 * Decides what goes when the local budget (bytes, age) is exceeded. Order: uploaded files past the age limit,
 * then uploaded files oldest first until the bytes fit; only then not-uploaded segments (the oldest, or the
 * newest with `when_full: "drop-newest"`), and never without an alarm: the plan's `alarm` is `dropping` whenever
 * `drop` is not empty, and `filling` as soon as not-uploaded bytes pass `alarm_at` of the budget, before any drop.
 *
 * @example
 * const plan = planBudget(items, settings.local, Date.now());
 */
export function planBudget(items: readonly BudgetItem[], local: Pick<LocalSettings, 'maxBytes' | 'maxAgeMs' | 'whenFull' | 'alarmAt'>, now: number): BudgetPlan {
  const byAge = [...items].sort((a, b) => a.startMs - b.startMs || (a.id < b.id ? -1 : 1));
  const deleteUploaded: string[] = [];
  const drop: Array<{ id: string; reason: 'disk-budget' | 'max-age' }> = [];
  const gone = new Set<string>();
  let total = items.reduce((sum, i) => sum + i.size, 0);
  const take = (item: BudgetItem, reason: 'disk-budget' | 'max-age' | null) => {
    gone.add(item.id);
    total -= item.size;
    if (item.uploaded) deleteUploaded.push(item.id);
    else drop.push({ id: item.id, reason: reason ?? 'disk-budget' });
  };
  if (local.maxAgeMs !== null) {
    for (const item of byAge) if (now - item.startMs > local.maxAgeMs) take(item, 'max-age');
  }
  for (const item of byAge) {
    if (total <= local.maxBytes) break;
    if (item.uploaded && !gone.has(item.id)) take(item, null);
  }
  const pending = (local.whenFull === 'drop-newest' ? [...byAge].reverse() : byAge).filter((i) => !i.uploaded && !gone.has(i.id));
  for (const item of pending) {
    if (total <= local.maxBytes) break;
    take(item, 'disk-budget');
  }
  const bytesPending = items.filter((i) => !i.uploaded && !gone.has(i.id)).reduce((sum, i) => sum + i.size, 0);
  let alarm: DiskAlarm | null = null;
  const base = { kind: 'disk-budget' as const, bytesLocal: total, bytesPending, maxBytes: local.maxBytes };
  if (drop.length > 0) {
    const byAgeLimit = drop.filter((d) => d.reason === 'max-age').length;
    alarm = {
      ...base,
      level: 'dropping',
      message: `dropping ${drop.length} segment(s) not uploaded: ${byAgeLimit > 0 ? `${byAgeLimit} older than record.local.max_age_s, ` : ''}local budget ${local.maxBytes} bytes full`,
    };
  } else if (bytesPending >= local.alarmAt * local.maxBytes) {
    alarm = { ...base, level: 'filling', message: `segments not uploaded hold ${bytesPending} of the ${local.maxBytes} bytes budget (alarm at ${Math.round(local.alarmAt * 100)}%)` };
  }
  return { deleteUploaded, drop, alarm };
}
