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
