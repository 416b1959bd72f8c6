import { ConfigError } from './errors.js';

/** The result of expanding one template: the text to run and the values that came from the environment. */
export interface Expansion {
  readonly text: string;
  /** Variable name -> value substituted, so the values can be redacted wherever text leaves the process. */
  readonly values: ReadonlyMap<string, string>;
}

/** A piece of a template: text as written (`$$` already read as `$`), or a variable reference. */
export type TemplatePart =
  | { readonly kind: 'text'; readonly text: string }
  | {
      readonly kind: 'variable';
      readonly name: string;
      /** The `:-default` of `${NAME:-default}`, or null. */
      readonly fallback: string | null;
      /** `${NAME}` reads an empty value as unset; `$NAME` takes it. */
      readonly braced: boolean;
    };

export type VariablePart = Extract<TemplatePart, { kind: 'variable' }>;

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;

/**
 * Splits a template into text and variable references, as a shell reads `$VAR`, `${VAR}` and `${VAR:-default}`.
 * `$$` is a literal `$`; a `$` not followed by a name or `{` stays as it is. A malformed `${` is a
 * {@link ConfigError}.
 *
 * @example
 * scanTemplate('a=$X', 'pipeline') // [{ kind: 'text', text: 'a=' }, { kind: 'variable', name: 'X', fallback: null, braced: false }]
 */
export function scanTemplate(template: string, where: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let text = '';
  const variable = (name: string, fallback: string | null, braced: boolean) => {
    if (text) parts.push({ kind: 'text', text });
    text = '';
    parts.push({ kind: 'variable', name, fallback, braced });
  };
  let i = 0;
  while (i < template.length) {
    const dollar = template.indexOf('$', i);
    if (dollar < 0) {
      text += template.slice(i);
      break;
    }
    text += template.slice(i, dollar);
    const next = template[dollar + 1];
    if (next === '$') {
      text += '$';
      i = dollar + 2;
      continue;
    }
    if (next === '{') {
      const close = template.indexOf('}', dollar + 2);
      if (close < 0) throw new ConfigError(`${where}: unterminated "\${" at character ${dollar + 1}`);
      const body = template.slice(dollar + 2, close);
      const sep = body.indexOf(':-');
      const name = sep < 0 ? body : body.slice(0, sep);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        throw new ConfigError(`${where}: "\${${name}}" is not a valid variable name`);
      }
      variable(name, sep < 0 ? null : body.slice(sep + 2), true);
      i = close + 1;
      continue;
    }
    NAME.lastIndex = dollar + 1;
    const match = NAME.exec(template);
    if (!match) {
      text += '$';
      i = dollar + 1;
      continue;
    }
    variable(match[0], null, false);
    i = dollar + 1 + match[0].length;
  }
  if (text) parts.push({ kind: 'text', text });
  return parts;
}

/**
 * The value a variable reference stands for, and whether it came from the environment (a default did not).
 * An unset variable without a default is a {@link ConfigError} naming the variable, never an empty string.
 */
export function valueOf(part: VariablePart, env: NodeJS.ProcessEnv, where: string): { value: string; fromEnv: boolean } {
  const value = env[part.name];
  if (value !== undefined && (value !== '' || !part.braced)) return { value, fromEnv: true };
  if (part.fallback !== null) return { value: part.fallback, fromEnv: false };
  throw new ConfigError(`${where}: environment variable ${part.name} is not set`);
}

/**
 * Expands `$VAR`, `${VAR}` and `${VAR:-default}` from `env`, as a shell would (the original module's contract), into
 * plain text (a path, a TURN URI). Launch lines go through `expandLaunch` (config/launch.ts), which expands into
 * property values instead of text.
 *
 * @example
 * expand('turn://user:${TURN_PASSWORD}@${TURN_HOST:-127.0.0.1}:3478', process.env, 'webrtc.turn_servers[0]').text
 */
export function expand(template: string, env: NodeJS.ProcessEnv, where: string): Expansion {
  const values = new Map<string, string>();
  let text = '';
  for (const part of scanTemplate(template, where)) {
    if (part.kind === 'text') {
      text += part.text;
      continue;
    }
    const { value, fromEnv } = valueOf(part, env, where);
    if (fromEnv) values.set(part.name, value);
    text += value;
  }
  return { text, values };
}
