/**
 * A seeded pseudo-random source for the fuzz suites, and the hostile building blocks they share (strings of every
 * alphabet, JSON of every shape, deep nesting as text). Every input of a run is drawn from its own generator,
 * seeded from the run's seed, the surface and the input's index, so one failing input can be replayed alone
 * (`FUZZ_SEED=<seed>`), whatever ran before it.
 */

/** The seed of this run: `FUZZ_SEED` when set (a failure's replay), a fresh one otherwise. */
export function runSeed(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.FUZZ_SEED;
  if (given !== undefined && given !== '') {
    const seed = Number(given);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`FUZZ_SEED must be an integer from 0 to 4294967295, got "${given}"`);
    return seed;
  }
  return (Math.random() * 0x100000000) >>> 0;
}

/** FNV-1a over the text: mixes a surface name and an index into a seed. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Characters outside ASCII that break naive byte counting: 2-, 3- and 4-byte UTF-8, combining marks, RTL. */
const NON_ASCII = ['é', 'ß', 'ü', 'Ж', 'ک', 'א', '中', '文', '€', '—', '\u200b', '\u202e', '\u0301', '\ufeff', '\uffff', '😀', '🎥', '𝄞'];
/** Bytes that end strings, lines, headers or paths early somewhere. */
const CONTROL = ['\u0000', '\u0001', '\u0007', '\b', '\t', '\n', '\r', '\u000b', '\u000c', '\u001b', '\u007f'];
/** Text that means something to a shell, a URI, JSON, SDP, HTTP or a launch line. */
const SPECIAL = ['"', "'", '\\', '/', '%', '$', '{', '}', '[', ']', '(', ')', '!', '=', ':', ';', ',', '.', '..', '@', '#', '?', '&', '*', '<', '>', '|', '`', '~', '+', ' '];
/** Numbers at the edges of every integer and float representation. */
const EDGE_NUMBERS = [
  0, -0, 1, -1, 0.5, -0.5, 63, 64, 65535, 65536, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 53 - 1, 2 ** 53 + 2, -(2 ** 53), 1e21, 1e308, -1e308,
  5e-324, Number.MAX_VALUE, Number.MIN_VALUE,
];
/** Numbers as JSON text, including ones JSON.parse turns into Infinity or loses precision on. */
const EDGE_NUMBER_TEXT = ['1e400', '-1e400', '123456789012345678901234567890', '0.0000000000000000000000001', '-0', '1E+2', '0e0', '1.0', '9007199254740993'];

/** A seeded generator (mulberry32) with helpers for hostile input. */
export class FuzzRandom {
  /** The 32-bit state. */
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** The generator of one input: `seed` of the run, the surface, the input's index. */
  static forInput(seed: number, surface: string, index: number): FuzzRandom {
    return new FuzzRandom(hash(`${seed}:${surface}:${index}`));
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p = 0.5): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** A length that is mostly small, sometimes large: `max` scaled by a cube, so big ones stay rare. */
  length(max: number): number {
    return Math.floor(this.next() ** 3 * max);
  }

  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }

  /** Non-ASCII characters only (at least `length` UTF-16 units). */
  nonAscii(length: number): string {
    let out = '';
    while (out.length < length) out += this.pick(NON_ASCII);
    return out;
  }

  /** A string of one flavour: printable ASCII, non-ASCII, control characters, special characters, or a mix. */
  string(maxLength = 64): string {
    const length = this.length(maxLength) + (this.chance(0.1) ? 0 : 1);
    const flavour = this.int(0, 5);
    let out = '';
    while (out.length < length) {
      switch (flavour) {
        case 0:
          out += String.fromCharCode(this.int(0x20, 0x7e));
          break;
        case 1:
          out += this.pick(NON_ASCII);
          break;
        case 2:
          out += this.pick(CONTROL);
          break;
        case 3:
          out += this.pick(SPECIAL);
          break;
        case 4:
          out += String.fromCharCode(this.int(0, 0xffff)); // lone surrogates included
          break;
        default:
          out += this.pick([() => String.fromCharCode(this.int(0x20, 0x7e)), () => this.pick(NON_ASCII), () => this.pick(CONTROL), () => this.pick(SPECIAL)])();
      }
    }
    return out;
  }

  /** A number at an edge, or a random one. */
  number(): number {
    return this.chance(0.6) ? this.pick(EDGE_NUMBERS) : (this.next() - 0.5) * 10 ** this.int(0, 20);
  }

  /** A number as JSON text, including forms that overflow or lose precision. */
  numberText(): string {
    return this.chance(0.5) ? this.pick(EDGE_NUMBER_TEXT) : JSON.stringify(this.number());
  }

  /** Any JSON value, nested at most `depth` levels. */
  json(depth = 3): unknown {
    const kind = this.int(0, depth > 0 ? 7 : 4);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.chance();
      case 2:
        return this.number();
      case 3:
      case 4:
        return this.string();
      case 5:
        return Array.from({ length: this.length(6) }, () => this.json(depth - 1));
      default: {
        const object: Record<string, unknown> = {};
        for (let i = this.length(6); i > 0; i--) object[this.chance(0.8) ? this.string(16) : this.pick(['__proto__', 'constructor', 'prototype', '$version', ''])] = this.json(depth - 1);
        return object;
      }
    }
  }

  /** A value of another JSON type than `value` has (for "wrong type" inputs). */
  wrongType(value: unknown): unknown {
    for (;;) {
      const candidate = this.json(2);
      if (jsonType(candidate) !== jsonType(value)) return candidate;
    }
  }

  /** `depth` levels of arrays or objects as JSON text, around `leaf` (JSON.stringify cannot build these). */
  deepText(depth: number, leaf = '0'): string {
    if (this.chance()) return `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`;
    const key = JSON.stringify(this.pick(['a', 'properties', 'desired', 'sdp', 'ice', '$version', '']));
    return `${`{${key}:`.repeat(depth)}${leaf}${'}'.repeat(depth)}`;
  }

  /** `text` with a few random edits: characters inserted, deleted, replaced, a slice repeated or cut short. */
  mutate(text: string, edits = this.int(1, 4)): string {
    let out = text;
    for (let i = 0; i < edits; i++) {
      const at = this.int(0, out.length);
      switch (this.int(0, 6)) {
        case 0:
          out = out.slice(0, at) + this.string(8) + out.slice(at);
          break;
        case 1:
          out = out.slice(0, at) + out.slice(at + this.int(1, 16));
          break;
        case 2:
          out = out.slice(0, at) + this.pick([...SPECIAL, ...CONTROL, ...NON_ASCII]) + out.slice(at + 1);
          break;
        case 3: {
          const piece = out.slice(at, at + this.int(1, 64));
          out = out.slice(0, at) + piece.repeat(this.int(2, 50)) + out.slice(at);
          break;
        }
        case 4:
          out = out.slice(0, at);
          break;
        case 5:
          out = out.slice(0, at) + this.numberText() + out.slice(at);
          break;
        default:
          out = out.slice(0, at) + this.nonAscii(this.int(1, 40)) + out.slice(at);
      }
    }
    return out;
  }
}

/** The JSON type of a value: null, boolean, number, string, array or object. */
export function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}
