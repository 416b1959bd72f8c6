/**
 * The desired document's shape: its JSON Schema (schema/desired.schema.json, the one published for editors),
 * checked with ajv, and the bounds a document must keep before anything walks it.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import desiredSchema from '../schema/desired.schema.json' with { type: 'json' };
import { ConfigError } from './errors.js';
import { maskUserinfo } from './redact.js';

export { desiredSchema };

/** The largest document taken, as JSON text (about: string escapes are not counted). IoT Hub allows 32 KB. */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;
/** The deepest nesting taken; the schema's deepest key is 3 levels below the desired object. */
export const MAX_DOCUMENT_DEPTH = 32;

/** A schema node, as this module reads it. */
interface SchemaNode {
  readonly $ref?: string;
  readonly allOf?: readonly SchemaNode[];
  readonly if?: SchemaNode;
  readonly then?: SchemaNode;
  readonly else?: SchemaNode;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly patternProperties?: Readonly<Record<string, SchemaNode>>;
  readonly additionalProperties?: SchemaNode | boolean;
  readonly errorMessage?: string;
  readonly type?: string | readonly string[];
  readonly default?: unknown;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Refuses a document that is too large or nests too deep, walking it without recursion (a 100 000-deep array
 * from a twin file must be refused, not overflow the stack of whatever walks it next).
 *
 * @example
 * checkDocumentBounds(JSON.parse('['.repeat(100_000) + ']'.repeat(100_000))) // throws: nests deeper than 32 levels
 */
export function checkDocumentBounds(document: unknown): void {
  let bytes = 0;
  // The objects and arrays being read, outermost first, each with the next child to read: memory is the depth.
  const open: Array<{ readonly children: unknown[]; next: number }> = [];
  const read = (value: unknown): void => {
    if (typeof value === 'string') {
      bytes += Buffer.byteLength(value) + 2;
    } else if (typeof value === 'object' && value !== null) {
      if (open.length === MAX_DOCUMENT_DEPTH) throw new ConfigError(`desired document nests deeper than ${MAX_DOCUMENT_DEPTH} levels`);
      const children = Array.isArray(value) ? (value as unknown[]) : Object.values(value);
      bytes += 1 + Math.max(children.length, 1);
      if (!Array.isArray(value)) for (const key of Object.keys(value)) bytes += Buffer.byteLength(key) + 3;
      open.push({ children, next: 0 });
    } else {
      bytes += String(value).length;
    }
  };
  read(document);
  while (open.length > 0) {
    const innermost = open[open.length - 1]!;
    if (innermost.next === innermost.children.length) open.pop();
    else read(innermost.children[innermost.next++]);
  }
  if (bytes > MAX_DOCUMENT_BYTES) {
    // Two decimals near the limit: 1.05 MB, not "1.0 MB" over a limit of 1 MiB.
    const mb = (bytes / 1e6).toFixed(bytes < 1.1e6 ? 2 : 1);
    throw new ConfigError(`desired document is ${mb} MB; the limit is ${MAX_DOCUMENT_BYTES / 2 ** 20} MiB`);
  }
}

let validator: ValidateFunction | null = null;

/** The compiled schema; compiled on first use (a few ms), once. */
function compiled(): ValidateFunction {
  if (validator === null) {
    // verbose: errors carry the value and the schema node, whose errorMessage (VS Code shows it too) says what is wanted.
    const ajv = new Ajv({ verbose: true, allowUnionTypes: true, allowMatchingProperties: true });
    ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
    validator = ajv.compile(desiredSchema);
  }
  return validator;
}

/**
 * Checks a desired object against the schema; the first problem is a {@link ConfigError} that names the key and
 * the value: `restart_policy.initial_delay_ms must be a number of milliseconds between 100 and 86400000, got -1`.
 * Unknown keys pass (see {@link unknownKeys}). Call {@link checkDocumentBounds} first.
 */
export function validateDesired(desired: Record<string, unknown>): void {
  const check = compiled();
  if (check(desired)) return;
  throw new ConfigError(messageOf(check.errors ?? [], desired));
}

/** The message of the most specific error that has one of the schema's messages. */
function messageOf(errors: readonly ErrorObject[], desired: unknown): string {
  let best: { depth: number; text: string } | null = null;
  for (const error of errors) {
    const described = describe(error, desired);
    if (described !== null && (best === null || described.depth > best.depth)) best = described;
  }
  if (best !== null) return best.text;
  const first = errors[0];
  return first ? `${pathOf(segmentsOf(first.instancePath), desired) || 'desired document'} ${first.message ?? 'is not valid'}` : 'desired document is not valid';
}

function describe(error: ErrorObject, desired: unknown): { depth: number; text: string } | null {
  const segments = segmentsOf(error.instancePath);
  const parent = error.parentSchema as SchemaNode | undefined;
  if (error.keyword === 'required') {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    const wanted = parent?.properties?.[missing]?.errorMessage;
    if (wanted === undefined) return null;
    return { depth: segments.length + 1, text: `${pathOf([...segments, missing], desired)} ${wanted}` };
  }
  const wanted = parent?.errorMessage;
  if (wanted === undefined) return null;
  if (error.propertyName !== undefined) {
    // A key that is not a valid name (propertyNames): the key is the value in question.
    return { depth: segments.length + 1, text: `${pathOf([...segments, error.propertyName], desired)}: ${wanted}` };
  }
  const got = error.keyword === 'type' ? typeName(error.data) : shown(error.data);
  return { depth: segments.length, text: `${pathOf(segments, desired) || 'desired document'} ${wanted}, got ${got}` };
}

/** JSON pointer -> keys. */
function segmentsOf(pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Keys -> `webrtc.turn_servers[0]`, `rtsp.mounts.cam2`; a key of any length is shown cut short. */
function pathOf(segments: readonly string[], desired: unknown): string {
  let path = '';
  let at: unknown = desired;
  for (const segment of segments) {
    const key = segment.length > 64 ? `${segment.slice(0, 61)}...` : segment;
    path += Array.isArray(at) ? `[${key}]` : path === '' ? key : `.${key}`;
    at = isObject(at) || Array.isArray(at) ? (at as Record<string, unknown>)[segment] : undefined;
  }
  return path;
}

function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/** A value as it may appear in a message: JSON, cut short, URI user information masked. */
function shown(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return maskUserinfo(json.length > 80 ? `${json.slice(0, 77)}...` : json);
}

const root = desiredSchema as SchemaNode & { definitions: Record<string, SchemaNode> };

/** A node with its `$ref` and `allOf` followed, and the branch of `if: {type: object}` that `value` takes. */
function effective(node: SchemaNode, value: unknown): SchemaNode[] {
  const nodes: SchemaNode[] = [];
  const pending = [node];
  while (pending.length > 0) {
    const n = pending.pop()!;
    nodes.push(n);
    if (n.$ref !== undefined) pending.push(root.definitions[n.$ref.replace('#/definitions/', '')]!);
    if (n.allOf) pending.push(...n.allOf);
    const branch = n.if === undefined ? undefined : isObject(value) ? n.then : n.else;
    if (branch) pending.push(branch);
  }
  return nodes;
}

/**
 * Keys the schema does not know, as paths (`pipline`, `restart_policy.initial_delay`): reported as warnings, not
 * refused, so a newer twin still runs on an older module. IoT Hub's `$` keys are known. Call after
 * {@link validateDesired}.
 */
export function unknownKeys(desired: Record<string, unknown>): string[] {
  const found: string[] = [];
  // The schema, not the document, bounds this walk: it only enters keys the schema describes.
  const visit = (node: SchemaNode, value: unknown, path: string) => {
    if (!isObject(value)) return;
    const nodes = effective(node, value);
    const properties = Object.assign({}, ...nodes.map((n) => n.properties ?? {})) as Record<string, SchemaNode>;
    const patterns = nodes.flatMap((n) => Object.keys(n.patternProperties ?? {}).map((p) => new RegExp(p, 'u')));
    const map = nodes.map((n) => n.additionalProperties).find((a): a is SchemaNode => typeof a === 'object');
    for (const [key, child] of Object.entries(value)) {
      const at = path === '' ? key : `${path}.${key}`;
      const known = Object.hasOwn(properties, key) ? properties[key] : undefined; // not `constructor`, `__proto__`
      if (known !== undefined) visit(known, child, at);
      else if (map !== undefined) visit(map, child, at);
      else if (!patterns.some((p) => p.test(key))) found.push(at);
    }
  };
  visit(root, desired, '');
  return found;
}
