type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isPlainObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The reported-properties patch that turns `previous` (what the hub holds) into `next`: changed leaves, new keys,
 * and `null` for keys that are gone (a twin patch deletes with null). Returns null when nothing changed.
 *
 * @example
 * reportedPatch({ a: 1, b: { c: 2 } }, { a: 1, b: { d: 3 } }) // { b: { c: null, d: 3 } }
 */
export function reportedPatch(previous: unknown, next: unknown): Record<string, Json> | null {
  if (!isPlainObject(next)) throw new TypeError('reported properties must be an object');
  const before = isPlainObject(previous) ? previous : {};
  const patch: Record<string, Json> = {};
  for (const [key, value] of Object.entries(next)) {
    const old = before[key];
    if (isPlainObject(value) && isPlainObject(old)) {
      const inner = reportedPatch(old, value);
      if (inner) patch[key] = inner;
    } else if (JSON.stringify(old) !== JSON.stringify(value)) {
      patch[key] = (value ?? null) as Json;
    }
  }
  for (const key of Object.keys(before)) if (!(key in next)) patch[key] = null;
  return Object.keys(patch).length > 0 ? patch : null;
}

/** Applies a patch as the hub does (null deletes), returning a new object. */
export function applyPatch(target: unknown, patch: Record<string, Json>): Record<string, Json> {
  const out: Record<string, Json> = isPlainObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else if (isPlainObject(value)) out[key] = applyPatch(out[key], value);
    else out[key] = value;
  }
  return out;
}

/** IoT Hub refuses reported properties over 32 KB in all; the module's part stays under this, leaving room for others'. */
export const MAX_REPORTED_BYTES = 28 * 1024;
/** Strings longer than this (pipeline texts, errors) are the first thing shortened. */
const MAX_REPORTED_STRING = 512;
/** Lists longer than this (config warnings) are shortened second. */
const MAX_REPORTED_LIST = 10;

function shorten(value: Json): Json {
  if (typeof value === 'string') return value.length <= MAX_REPORTED_STRING ? value : `${value.slice(0, MAX_REPORTED_STRING - 1)}…`;
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_REPORTED_LIST).map(shorten);
    return value.length > MAX_REPORTED_LIST ? [...items, `… ${value.length - MAX_REPORTED_LIST} more`] : items;
  }
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shorten(v)]));
  return value;
}

function size(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

/**
 * The status document cut to fit IoT Hub's reported-properties limit, and saying so: long strings and lists are
 * shortened first; if that is not enough, pipelines beyond the first ones that fit are left out. `truncated` then
 * tells what was cut (the whole document is always at `/api/status` and the `getStatus` method).
 *
 * @example
 * capReported(status) // status itself when it fits, else e.g. { ..., truncated: { strings: true, pipelinesLeftOut: 40 } }
 */
export function capReported(status: object, maxBytes = MAX_REPORTED_BYTES): Record<string, Json> {
  const full = JSON.parse(JSON.stringify(status)) as Record<string, Json>;
  if (size(full) <= maxBytes) return full;
  const shortened = shorten(full) as Record<string, Json>;
  const truncated: Record<string, Json> = { strings: true };
  if (size({ ...shortened, truncated }) <= maxBytes) return { ...shortened, truncated };
  const pipelines = isPlainObject(shortened.pipelines) ? Object.entries(shortened.pipelines) : [];
  const kept: Record<string, Json> = {};
  const base = { ...shortened, pipelines: kept };
  let left = pipelines.length;
  for (const [name, pipeline] of pipelines) {
    kept[name] = pipeline;
    if (size({ ...base, truncated: { ...truncated, pipelinesLeftOut: left - 1 } }) > maxBytes) {
      delete kept[name];
      break;
    }
    left--;
  }
  return { ...base, truncated: { ...truncated, pipelinesLeftOut: left } };
}
