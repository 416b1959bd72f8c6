import { ConfigError } from './errors.js';

/** The result of expanding one template: the text to run and the values that came from the environment. */
export interface Expansion {
  readonly text: string;
  /** Variable name -> value substituted, so the values can be redacted wherever text leaves the process. */
  readonly values: ReadonlyMap<string, string>;
}

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;

/**
 * Expands `$VAR`, `${VAR}` and `${VAR:-default}` from `env`, as a shell would (the original module's contract).
 * An unset variable without a default is a {@link ConfigError} naming the variable, never an empty string.
 * `$$` is a literal `$`; a `$` not followed by a name or `{` stays as it is.
 *
 * @example
 * expand('rtspsrc location=rtsp://$USER:${PASSWORD}@${CAM:-127.0.0.1}/live', process.env, 'pipeline').text
 */
export function expand(template: string, env: NodeJS.ProcessEnv, where: string): Expansion {
  const values = new Map<string, string>();
  let out = '';
  let i = 0;
  while (i < template.length) {
    const dollar = template.indexOf('$', i);
    if (dollar < 0) {
      out += template.slice(i);
      break;
    }
    out += template.slice(i, dollar);
    const next = template[dollar + 1];
    if (next === '$') {
      out += '$';
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
      const value = env[name];
      if (value !== undefined && value !== '') {
        values.set(name, value);
        out += value;
      } else if (sep >= 0) {
        out += body.slice(sep + 2);
      } else {
        throw new ConfigError(`${where}: environment variable ${name} is not set`);
      }
      i = close + 1;
      continue;
    }
    NAME.lastIndex = dollar + 1;
    const match = NAME.exec(template);
    if (!match) {
      out += '$';
      i = dollar + 1;
      continue;
    }
    const name = match[0];
    const value = env[name];
    if (value === undefined) throw new ConfigError(`${where}: environment variable ${name} is not set`);
    values.set(name, value);
    out += value;
    i = dollar + 1 + name.length;
  }
  return { text: out, values };
}
