/**
 * Values shorter than this are masked only where they stand as a whole token: the complete value of a
 * `key=value` pair, or the complete content of a quoted string (URI user information is masked whatever it
 * holds). Longer values are masked wherever they appear. A one- or two-letter value replaced everywhere would
 * eat those letters out of every line; left alone, it would show as `user-pw=ab` in a GStreamer error.
 */
export const SHORT_VALUE_LENGTH = 4;

/** Longer values are matched as written and percent-encoded only (a certificate in the environment, say). */
const MAX_ENCODED_LENGTH = 256;

const isLetter = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isWordChar = (c: number) => isLetter(c) || (c >= 48 && c <= 57) || c === 95;
const isSchemeChar = (c: number) => (isWordChar(c) && c !== 95) || c === 43 || c === 45 || c === 46;
/** Where URI user information ends: white space, `/ ? #`, quotes. */
const isUserinfoEnd = (c: number) => c <= 32 || c === 47 || c === 63 || c === 35 || c === 34 || c === 39;

/**
 * Replaces URI user information with `***`: `rtsp://user:password@cam/live` -> `rtsp://***@cam/live`. An unencoded
 * `@` in a password is taken as part of it (the user information ends at the last `@` before the host). Linear
 * in the length of the text, whatever it holds.
 *
 * @example
 * maskUserinfo('rtspsrc location=rtsp://admin:admin123@10.1.1.1/axis') // 'rtspsrc location=rtsp://***@10.1.1.1/axis'
 */
export function maskUserinfo(text: string): string {
  let out = '';
  let copied = 0;
  let from = 0;
  for (;;) {
    const separator = text.indexOf('://', from);
    if (separator < 0) break;
    // The scheme: a letter at a word boundary, then letters, digits, + . - (as `\b[a-z][a-z0-9+.-]*://`).
    let run = separator;
    while (run > copied && isSchemeChar(text.charCodeAt(run - 1))) run--;
    let scheme = false;
    for (let p = run; p < separator; p++) {
      if (isLetter(text.charCodeAt(p)) && (p === 0 || !isWordChar(text.charCodeAt(p - 1)))) {
        scheme = true;
        break;
      }
    }
    const start = separator + 3;
    let end = start;
    let at = -1;
    while (end < text.length && !isUserinfoEnd(text.charCodeAt(end))) {
      if (text.charCodeAt(end) === 64) at = end;
      end++;
    }
    if (scheme && at > start) {
      out += `${text.slice(copied, start)}***`;
      copied = at;
      from = at + 1;
    } else {
      // A `://` may start inside what was just read (`a://b://user@host`): look again from there.
      from = start;
    }
  }
  return copied === 0 ? text : out + text.slice(copied);
}

const regexEscape = (text: string) => text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
/** Hex digits in either case: `2f` -> `2[fF]`. */
const anyCase = (digits: string) => digits.replace(/[a-f]/g, (d) => `[${d}${d.toUpperCase()}]`);
/** One or more backslashes: an escape, or an escape escaped again (JSON inside JSON). */
const BACKSLASHES = '\\\\+';
const JSON_SHORT: Record<string, string> = { '"': '"', '\\': '\\\\', '/': '/', '\n': 'n', '\r': 'r', '\t': 't', '\b': 'b', '\f': 'f' };

/**
 * A regular expression source matching `char` in every form it takes in text that leaves the process: as is;
 * percent-encoded (either case of hex, so encodeURIComponent, encodeURI, form encoding and the rest), `+` for a
 * space; JSON-escaped (`\"`, `\\`, `\/`, `\n`, `\u00e9`); GStreamer-escaped (`\!`, `\303\251`, as
 * gst_value_serialize writes strings and as launch lines quote them).
 */
function charPattern(char: string): string {
  const forms = new Set<string>([regexEscape(char)]);
  const bytes = [...Buffer.from(char, 'utf8')];
  forms.add(bytes.map((b) => `%${anyCase(b.toString(16).padStart(2, '0'))}`).join(''));
  if (char === ' ') forms.add('\\+');
  const units = [...Array(char.length).keys()].map((i) => char.charCodeAt(i).toString(16).padStart(4, '0'));
  forms.add(units.map((u) => `${BACKSLASHES}u${anyCase(u)}`).join(''));
  const short = JSON_SHORT[char];
  if (short !== undefined) forms.add(`${BACKSLASHES}${short}`);
  const code = char.codePointAt(0)!;
  if (code > 32 && code < 127 && !isWordChar(code)) forms.add(`${BACKSLASHES}${regexEscape(char)}`);
  if (code > 127) forms.add(bytes.map((b) => `${BACKSLASHES}${b.toString(8).padStart(3, '0')}`).join(''));
  return forms.size === 1 ? [...forms][0]! : `(?:${[...forms].join('|')})`;
}

/** A regular expression source matching `value` written in any of the forms of {@link charPattern}, mixed. */
function valuePattern(value: string): string {
  if (value.length > MAX_ENCODED_LENGTH) {
    const encoded = encodeURIComponent(value);
    return encoded === value ? regexEscape(value) : `(?:${regexEscape(value)}|${regexEscape(encoded)})`;
  }
  const body = [...value].map(charPattern).join('');
  if (value.length >= SHORT_VALUE_LENGTH) return body;
  // A whole token only: all of `key=value`'s value, or all of a quoted string.
  return `(?:(?<==)${body}(?=$|[\\s,;&"')\\]}>!])|(?<=")${body}(?=")|(?<=')${body}(?='))`;
}

/** Runs of base64 (standard or URL alphabet) long enough to hold `u:pw`: 8 characters, padding included. */
const BASE64 = /[A-Za-z0-9+/_-]{6,}={0,2}/g;
/** Decoded text that is not text: control characters or bytes that are not UTF-8. */
const NOT_TEXT = /[\u0000-\u001f\u007f\ufffd]/;

/**
 * Keeps text that leaves the process (logs, reported properties, metrics, errors) free of values expanded
 * from the environment. It remembers every value it was told about, so an error from an old pipeline is
 * cleaned too. Each value is replaced by `${NAME}`, so the reader still sees which variable was there, in any
 * encoding it may take on the way (see {@link charPattern}); a base64 run that decodes to text holding a value
 * (HTTP Basic credentials, `user:password`) becomes `***`; URI user information is masked whatever it holds.
 * Values shorter than {@link SHORT_VALUE_LENGTH} are replaced only where they stand as whole tokens.
 *
 * @example
 * const redactor = new Redactor();
 * redactor.add(new Map([['PASSWORD', 'hunter2']]));
 * redactor.redact('could not open /data/hunter2/x.mp4') // 'could not open /data/${PASSWORD}/x.mp4'
 */
export class Redactor {
  /** value -> variable name. */
  readonly #secrets = new Map<string, string>();
  /** Every value in every form, longest values first; one capture group per value. */
  #pattern: RegExp | null = null;
  /** The same, without the global flag: a test on decoded base64. */
  #probe: RegExp | null = null;
  /** Variable name of each capture group of #pattern. */
  #names: string[] = [];

  /** Remembers the values of an expansion. */
  add(values: ReadonlyMap<string, string>): void {
    let changed = false;
    for (const [name, value] of values) {
      if (!value || this.#secrets.get(value) === name) continue;
      this.#secrets.set(value, name);
      changed = true;
    }
    if (!changed) return;
    const ordered = [...this.#secrets].sort((a, b) => b[0].length - a[0].length);
    const source = ordered.map(([value]) => `(${valuePattern(value)})`).join('|');
    this.#pattern = new RegExp(source, 'g');
    this.#probe = new RegExp(source);
    this.#names = ordered.map(([, name]) => name);
  }

  /** Text safe to show: known values replaced and URI userinfo masked. */
  redact(text: string): string {
    const pattern = this.#pattern;
    if (pattern === null) return maskUserinfo(text);
    const names = this.#names;
    const out = text
      .replace(BASE64, (run) => (this.#isEncodedValue(run) ? '***' : run))
      .replace(pattern, (...match: unknown[]) => {
        const group = match.findIndex((g, i) => i > 0 && g !== undefined);
        return `\${${names[group - 1]}}`;
      });
    return maskUserinfo(out);
  }

  /**
   * Whether a base64 run decodes to text that holds a known value: anywhere (as {@link redact} would find it), or
   * as the whole user or password of `user:password`. Words that only look like base64 decode to no text, or
   * do not encode back to themselves.
   */
  #isEncodedValue(run: string): boolean {
    if (run.length < 8) return false;
    const bytes = Buffer.from(run, 'base64');
    const canonical = (s: string) => s.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
    if (canonical(bytes.toString('base64')) !== canonical(run)) return false;
    const decoded = bytes.toString('utf8');
    if (NOT_TEXT.test(decoded)) return false;
    if (this.#probe!.test(decoded)) return true;
    const colon = decoded.indexOf(':');
    return colon >= 0 && (this.#secrets.has(decoded.slice(0, colon)) || this.#secrets.has(decoded.slice(colon + 1)));
  }
}
