/** Variables whose value is hidden whatever its length. */
const SECRET_NAME = /pass|pwd|secret|token|key|cred|auth|user|sig/i;
/** Shorter values of other variables are left alone, or every digit "1" in an error would vanish. */
const MIN_PLAIN_LENGTH = 3;
/** `scheme://user:password@host` -> `scheme://***@host`. */
const URI_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@'"]+@/gi;

/** Replaces URI user information with `***`. */
export function maskUserinfo(text: string): string {
  return text.replace(URI_USERINFO, '$1***@');
}

/**
 * Keeps text that leaves the process (logs, reported properties, metrics, errors) free of values expanded
 * from the environment. It remembers every value it was told about, so an error from an old pipeline is
 * cleaned too. Each value is replaced by `${NAME}`, so the reader still sees which variable was there.
 */
export class Redactor {
  /** value -> variable name, longest values first when replacing. */
  readonly #secrets = new Map<string, string>();
  /** Sorted view of #secrets, rebuilt when it changes. */
  #ordered: Array<[string, string]> = [];

  /** Remembers the values of an expansion. */
  add(values: ReadonlyMap<string, string>): void {
    let changed = false;
    for (const [name, value] of values) {
      if (!value) continue;
      if (value.length < MIN_PLAIN_LENGTH && !SECRET_NAME.test(name)) continue;
      if (this.#secrets.get(value) === name) continue;
      this.#secrets.set(value, name);
      changed = true;
    }
    if (changed) this.#ordered = [...this.#secrets].sort((a, b) => b[0].length - a[0].length);
  }

  /** Text safe to show: known values replaced and URI userinfo masked. */
  redact(text: string): string {
    let out = text;
    for (const [value, name] of this.#ordered) {
      if (out.includes(value)) out = out.split(value).join(`\${${name}}`);
      // URL-encoded forms appear in GStreamer errors about URIs.
      const encoded = encodeURIComponent(value);
      if (encoded !== value && out.includes(encoded)) out = out.split(encoded).join(`\${${name}}`);
    }
    return maskUserinfo(out);
  }

  /** Redacts every string inside a JSON-like value. */
  redactDeep<T>(value: T): T {
    if (typeof value === 'string') return this.redact(value) as T;
    if (Array.isArray(value)) return value.map((v) => this.redactDeep(v)) as T;
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.redactDeep(v)])) as T;
    }
    return value;
  }
}
