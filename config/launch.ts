import { ConfigError } from './errors.js';
import { scanTemplate, valueOf, type Expansion, type TemplatePart, type VariablePart } from './expand.js';

/** A value made of these characters reads the same bare as quoted, whatever the property's type. */
const BARE_VALUE = /^[A-Za-z0-9_.:/+@%~-]+$/;
/** What a variable may expand to outside a property value (caps, element names, pad references): no syntax. */
const BARE_WORD = /^[A-Za-z0-9_.:/+@%~-]*$/;
/** gst-launch's property names (`_identifier` in GStreamer's parse.l), `child::property` included. */
const PROPERTY_NAME = /^[A-Za-z0-9_][A-Za-z0-9_%:-]*$/;

/**
 * Makes a launch line parse as it does when typed into a shell for gst-launch-1.0: the shell strips single
 * quotes (`location='rtsp://…'`, as in the seed's examples), GStreamer's own parser only knows double quotes.
 * Single-quoted values become double-quoted ones (their inner `"` and `\` escaped). Double-quoted parts are
 * left as they are.
 */
export function shellQuotesToGst(launch: string): string {
  let out = '';
  let i = 0;
  while (i < launch.length) {
    const c = launch[i]!;
    if (c === '"') {
      // Copy a double-quoted run untouched, honouring backslash escapes.
      let j = i + 1;
      while (j < launch.length && launch[j] !== '"') j += launch[j] === '\\' ? 2 : 1;
      out += launch.slice(i, j + 1);
      i = j + 1;
    } else if (c === "'") {
      const end = launch.indexOf("'", i + 1);
      if (end < 0) {
        out += launch.slice(i);
        break;
      }
      out += `"${launch.slice(i + 1, end).replace(/[\\"]/g, (m) => `\\${m}`)}"`;
      i = end + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const escapeQuoted = (text: string) => text.replace(/[\\"]/g, '\\$&');

/**
 * Writes `value` as the right-hand side of `name=value` in a launch line so that GStreamer 1.22 sets the property
 * to exactly these characters (quotes, spaces, `!`, `,`, `=`, `\`, `$`, newlines, non-ASCII: anything).
 *
 * GStreamer reads a property value in three steps (measured, and as in gst/parse/parse.l and grammar.y): the lexer
 * takes a bare run of non-space characters or a `"…"` string; one pair of enclosing double quotes is stripped and
 * every backslash escape undone (`\"` -> `"`, `\\` -> `\`); then a string property that is still wrapped in
 * double quotes is unwrapped once more, and `NULL` means no string at all. So a value is written bare when it
 * is plain, double-quoted with `\"` and `\\` otherwise, and wrapped twice when the second step would misread it:
 * `NULL`, a value in double quotes of its own, and one ending in a backslash (its `\\` before the closing quote
 * would let the lexer read on to the next quote in the line).
 *
 * @example
 * quoteValue('rtsp://u:p@h/x') // 'rtsp://u:p@h/x'
 * quoteValue('a b"c')          // '"a b\\"c"'
 */
export function quoteValue(value: string): string {
  if (BARE_VALUE.test(value) && value !== 'NULL') return value;
  const twice = value === 'NULL' || value.endsWith('\\') || (value.startsWith('"') && value.endsWith('"'));
  return `"${escapeQuoted(twice ? `"${escapeQuoted(value)}"` : value)}"`;
}

/** GStreamer's `[[:space:]]`: what separates words in a launch line. */
const isSpace = (c: string) => c === ' ' || (c >= '\t' && c <= '\r');

/** Reads a launch line as a shell does: where a word ends, which characters are quotes and escapes. */
class ShellReader {
  /** The quote open now. */
  quote: '"' | "'" | null = null;
  /** The last character was an unquoted (or double-quoted) backslash. */
  escaped = false;

  /** What `c` is: white space that ends a word, syntax (a quote, an escape), or a character, `literal` when quoted. */
  read(c: string): 'space' | 'syntax' | 'char' | 'literal' {
    if (this.escaped) {
      this.escaped = false;
      return 'literal';
    }
    if (this.quote === "'") {
      if (c !== "'") return 'literal';
      this.quote = null;
      return 'syntax';
    }
    if (c === '\\') {
      this.escaped = true;
      return 'syntax';
    }
    if (this.quote === '"') {
      if (c !== '"') return 'literal';
      this.quote = null;
      return 'syntax';
    }
    if (c === '"' || c === "'") {
      this.quote = c;
      return 'syntax';
    }
    return isSpace(c) ? 'space' : 'char';
  }
}

/** A word of the launch line (up to unquoted white space) as the template writes it, a variable standing for its value. */
interface Word {
  readonly written: Array<string | VariablePart>;
  hasVariable: boolean;
  /** The quote left open at the end of the template, if any. */
  openQuote: '"' | "'" | null;
}

/** Splits a scanned template into words and the white space between them. */
function wordsOf(parts: readonly TemplatePart[]): Array<string | Word> {
  const out: Array<string | Word> = [];
  const reader = new ShellReader();
  let word: Word | null = null;
  for (const part of parts) {
    if (part.kind === 'variable') {
      word ??= { written: [], hasVariable: false, openQuote: null };
      word.written.push(part);
      word.hasVariable = true;
      reader.escaped = false; // `\$X`: the value is taken literally anyway
      continue;
    }
    const text = part.text;
    let from = 0; // where the current word's text in this part begins
    for (let i = 0; i < text.length; i++) {
      if (reader.read(text[i]!) !== 'space') {
        if (word === null) {
          word = { written: [], hasVariable: false, openQuote: null };
          from = i;
        }
        continue;
      }
      if (word !== null) {
        word.written.push(text.slice(from, i));
        out.push(word);
        word = null;
      }
      const last = out.length - 1;
      if (typeof out[last] === 'string') out[last] += text[i];
      else out.push(text[i]!);
    }
    if (word !== null && from < text.length) (word as Word).written.push(text.slice(from));
  }
  if (word !== null) {
    (word as Word).openQuote = reader.quote;
    out.push(word);
  }
  return out;
}

/** One character of a word as GStreamer will read it (`literal` when quoted or escaped), or a variable. */
type Piece = { readonly kind: 'char'; readonly char: string; readonly literal: boolean } | { readonly kind: 'variable'; readonly part: VariablePart };

/** A word read character by character: quotes and escapes dropped. */
function piecesOf(word: Word): Piece[] {
  const reader = new ShellReader();
  const pieces: Piece[] = [];
  for (const written of word.written) {
    if (typeof written !== 'string') {
      pieces.push({ kind: 'variable', part: written });
      reader.escaped = false;
      continue;
    }
    for (const char of written) {
      const kind = reader.read(char);
      if (kind !== 'syntax') pieces.push({ kind: 'char', char, literal: kind === 'literal' });
    }
  }
  return pieces;
}

/**
 * Expands a launch-line template into values, never into syntax: each variable's value reaches GStreamer as the
 * literal characters it holds, whatever they are. A word `name=value` holding a variable is read as a shell would
 * read it (quotes and backslashes as written in the template), the values put in, and written back with
 * {@link quoteValue}. Outside property values (caps, element names, pad references) a value may only be a plain
 * word (letters, digits and `. _ - / + : @ % ~`), or the document is refused: it would change the pipeline.
 * Words without variables keep their text, single quotes read as a shell would ({@link shellQuotesToGst}).
 *
 * @example
 * expandLaunch("rtspsrc location='rtsp://$USER:$PASSWORD@cam/live'", { USER: 'u', PASSWORD: 'p w' }, 'pipeline').text
 * // 'rtspsrc location="rtsp://u:p w@cam/live"'
 */
export function expandLaunch(template: string, env: NodeJS.ProcessEnv, where: string): Expansion {
  const values = new Map<string, string>();
  const value = (part: VariablePart): string => {
    const result = valueOf(part, env, where);
    if (result.fromEnv) values.set(part.name, result.value);
    return result.value;
  };
  let text = '';
  for (const word of wordsOf(scanTemplate(template, where))) {
    if (typeof word === 'string') {
      text += word;
    } else if (!word.hasVariable) {
      text += shellQuotesToGst(word.written.join(''));
    } else {
      if (word.openQuote !== null) throw new ConfigError(`${where}: unterminated ${word.openQuote} quote`);
      text += expandWord(word, value, where);
    }
  }
  checkBinDepth(text, where);
  return { text, values };
}

/**
 * How deep `( ... )` bins may nest in one launch line. GStreamer's parser takes time that grows steeply with the
 * nesting (1,000 levels: 5 s, 3,000: a minute, measured with gst-launch-1.0), on the engine's main thread, where the
 * hang watchdog cannot tell it from a hang; a real pipeline nests a few levels.
 */
export const MAX_BIN_DEPTH = 64;

/** Refuses a line whose bins nest deeper than {@link MAX_BIN_DEPTH}; parentheses inside "quotes" do not count. */
function checkBinDepth(text: string, where: string): void {
  let depth = 0;
  let deepest = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '\\') i++;
    else if (char === '"') quoted = !quoted;
    else if (!quoted && char === '(') deepest = Math.max(deepest, ++depth);
    else if (!quoted && char === ')') depth = Math.max(0, depth - 1);
  }
  if (deepest > MAX_BIN_DEPTH) {
    throw new ConfigError(`${where}: bins nested ${deepest} deep; at most ${MAX_BIN_DEPTH} are allowed (GStreamer's parser takes minutes on lines this deep)`);
  }
}

function expandWord(word: Word, value: (part: VariablePart) => string, where: string): string {
  const pieces = piecesOf(word);
  const equals = pieces.findIndex((p) => p.kind !== 'char' || p.literal || p.char === '=');
  const head = pieces[equals];
  const name = pieces
    .slice(0, Math.max(equals, 0))
    .map((p) => (p.kind === 'char' ? p.char : ''))
    .join('');
  if (head?.kind === 'char' && !head.literal && head.char === '=' && PROPERTY_NAME.test(name)) {
    const assigned = pieces
      .slice(equals + 1)
      .map((p) => (p.kind === 'char' ? p.char : value(p.part)))
      .join('');
    return `${name}=${quoteValue(assigned)}`;
  }
  const written = word.written
    .map((w) => {
      if (typeof w === 'string') return w;
      const v = value(w);
      if (!BARE_WORD.test(v)) {
        throw new ConfigError(
          `${where}: \${${w.name}} is used outside a property value (name=value), where its value may only hold letters, digits and . _ - / + : @ % ~`,
        );
      }
      return v;
    })
    .join('');
  return shellQuotesToGst(written);
}
