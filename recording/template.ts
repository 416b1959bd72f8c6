import { ConfigError } from '../config/errors.js';
import { utcStamp } from './naming.js';

/** The fields an object name template may use, with what each becomes. */
export const TEMPLATE_FIELDS = {
  camera: 'record.camera (default: the IoT Edge device id)',
  stream: 'the hub stream or watched folder the segment comes from',
  yyyy: 'UTC year of the segment start',
  MM: 'UTC month, 01-12',
  dd: 'UTC day, 01-31',
  HH: 'UTC hour, 00-23',
  mm: 'UTC minute',
  ss: 'UTC second',
  start: 'UTC start, ISO basic format: 20240501T120000.000Z',
  epoch_ms: 'start in ms since 1970',
  duration_s: 'duration in whole seconds',
  name: 'the local file name without its extension',
  ext: 'the local file extension with its dot (.mp4, .ts)',
  device: 'IOTEDGE_DEVICEID (empty outside IoT Edge)',
  module: 'IOTEDGE_MODULEID (empty outside IoT Edge)',
} as const;

export type TemplateField = keyof typeof TEMPLATE_FIELDS;

/** Values a template is filled with, for one segment. */
export interface TemplateValues {
  readonly camera: string;
  readonly stream: string;
  readonly startMs: number;
  readonly durationMs: number;
  /** Local file name without extension. */
  readonly name: string;
  readonly ext: string;
  readonly device: string;
  readonly module: string;
}

type Part = { readonly text: string } | { readonly field: TemplateField };

/** A parsed object name template: `{camera}/{stream}/{yyyy}/{MM}/{dd}/{start}.mp4`. */
export interface ObjectNameTemplate {
  /** As written in the twin. */
  readonly source: string;
  readonly parts: readonly Part[];
}

/**
 * Parses an object name template. `{field}` is replaced per segment (see {@link TEMPLATE_FIELDS}); `{{` and `}}`
 * are literal braces. An unknown field, an unclosed brace or a name that could not be an object key is a
 * {@link ConfigError} naming `where` and the template.
 *
 * @example
 * const t = parseObjectNameTemplate('{camera}/{stream}/{yyyy}/{MM}/{dd}/{start}.mp4', 'record.object_name');
 */
export function parseObjectNameTemplate(source: string, where: string): ObjectNameTemplate {
  const parts: Part[] = [];
  let text = '';
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if ((c === '{' || c === '}') && source[i + 1] === c) {
      text += c;
      i++;
    } else if (c === '{') {
      const close = source.indexOf('}', i + 1);
      if (close < 0) throw new ConfigError(`${where}: unclosed "{" at character ${i + 1} in "${source}"`);
      const field = source.slice(i + 1, close);
      if (!(field in TEMPLATE_FIELDS)) {
        throw new ConfigError(`${where}: unknown field {${field}} in "${source}"; known fields: ${Object.keys(TEMPLATE_FIELDS).join(', ')}`);
      }
      if (text) parts.push({ text });
      text = '';
      parts.push({ field: field as TemplateField });
      i = close;
    } else if (c === '}') {
      throw new ConfigError(`${where}: unmatched "}" at character ${i + 1} in "${source}" (write "}}" for a literal brace)`);
    } else {
      text += c;
    }
  }
  if (text) parts.push({ text });
  if (!parts.some((p) => 'field' in p && (p.field === 'start' || p.field === 'epoch_ms' || p.field === 'name' || p.field === 'ss'))) {
    // Two segments would get one name and the second would overwrite the first.
    throw new ConfigError(`${where}: "${source}" must contain {start}, {epoch_ms}, {ss} or {name} so that each segment gets its own name`);
  }
  if (source.startsWith('/') || /(^|\/)\.\.?(\/|$)/.test(source)) {
    throw new ConfigError(`${where}: "${source}" must be a relative name without "." or ".." parts`);
  }
  return { source, parts };
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** Fills a template for one segment. */
export function renderObjectName(template: ObjectNameTemplate, values: TemplateValues): string {
  const d = new Date(values.startMs);
  const field: Record<TemplateField, string> = {
    camera: values.camera,
    stream: values.stream,
    yyyy: String(d.getUTCFullYear()),
    MM: pad(d.getUTCMonth() + 1),
    dd: pad(d.getUTCDate()),
    HH: pad(d.getUTCHours()),
    mm: pad(d.getUTCMinutes()),
    ss: pad(d.getUTCSeconds()),
    start: utcStamp(values.startMs),
    epoch_ms: String(values.startMs),
    duration_s: String(Math.round(values.durationMs / 1000)),
    name: values.name,
    ext: values.ext,
    device: values.device,
    module: values.module,
  };
  // An empty field (device outside IoT Edge) must not leave "a//b", which S3 keeps as a distinct key.
  return template.parts.map((p) => ('text' in p ? p.text : field[p.field])).join('').replace(/\/{2,}/g, '/').replace(/^\//, '');
}
