import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import {
  DEFAULT_ANALYZER,
  DEFAULT_DECODER,
  DEFAULT_AUTH,
  DEFAULT_HTTP,
  DEFAULT_HTTP_SERVER,
  DEFAULT_METRICS,
  DEFAULT_ON_EOS,
  DEFAULT_RECORD,
  DEFAULT_RECORD_FOLDER,
  DEFAULT_RESTART_POLICY,
  DEFAULT_RTSP,
  DEFAULT_TLS,
  DEFAULT_WEBRTC,
} from '../../config/defaults.js';
import { parseDesired } from '../../config/desired.js';
import { desiredSchema } from '../../config/schema.js';

const ROOT = new URL('../../../', import.meta.url);

type Node = Record<string, unknown> & {
  $ref?: string;
  allOf?: Node[];
  properties?: Record<string, Node>;
  additionalProperties?: Node | boolean;
  items?: Node;
  then?: Node;
  default?: unknown;
  definitions?: Record<string, Node>;
};

const root = desiredSchema as unknown as Node;

/** A node's own `default`, or one its `$ref` / `allOf` give it. */
function defaultOf(node: Node): unknown {
  if ('default' in node) return node.default;
  for (const next of [...(node.$ref ? [root.definitions![node.$ref.replace('#/definitions/', '')]!] : []), ...(node.allOf ?? [])]) {
    const found = defaultOf(next);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Every default the schema states, by key path (`*` for a map's entries). */
function schemaDefaults(node: Node = root, path = '', out = new Map<string, unknown>()): Map<string, unknown> {
  const resolved = node.$ref ? root.definitions![node.$ref.replace('#/definitions/', '')]! : node;
  for (const [key, child] of Object.entries(resolved.properties ?? {})) {
    const at = path ? `${path}.${key}` : key;
    const value = defaultOf(child);
    if (value !== undefined) out.set(at, value);
    schemaDefaults(child, at, out);
  }
  const entries = resolved.additionalProperties;
  if (typeof entries === 'object' && entries.then) schemaDefaults(entries.then, path ? `${path}.*` : '*', out);
  // A list's objects (record.folders): `[]` for its entries.
  const items = resolved.items;
  if (items) schemaDefaults(items.then ?? items, `${path}[]`, out);
  return out;
}

const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

describe('the desired document schema', () => {
  it('is a valid draft-07 schema that ajv compiles', () => {
    const ajv = new Ajv({ allowUnionTypes: true, allowMatchingProperties: true });
    ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
    assert.equal(ajv.validateSchema(desiredSchema), true, JSON.stringify(ajv.errors));
    assert.equal((desiredSchema as { $schema: string }).$schema, 'http://json-schema.org/draft-07/schema#');
  });

  it('states the same defaults as config/defaults.ts, every one of them', () => {
    const sections: Record<string, Record<string, unknown>> = {
      restart_policy: DEFAULT_RESTART_POLICY as unknown as Record<string, unknown>,
      rtsp: DEFAULT_RTSP,
      // The schema states the media folder where the OS temporary folder is /tmp.
      http: { ...DEFAULT_HTTP, mediaRoot: DEFAULT_HTTP.mediaRoot.replace(tmpdir(), '/tmp') },
      metrics: DEFAULT_METRICS,
      webrtc: DEFAULT_WEBRTC,
      tls: DEFAULT_TLS,
      auth: { requireTls: DEFAULT_AUTH.requireTls, realm: DEFAULT_AUTH.realm },
      'auth.rate_limit': DEFAULT_AUTH.rateLimit,
      'auth.jwt': DEFAULT_AUTH.jwt,
    };
    const expected = new Map<string, unknown>([
      ['http_server', DEFAULT_HTTP_SERVER],
      ['on_eos', DEFAULT_ON_EOS],
      ['pipelines.*.on_eos', DEFAULT_ON_EOS],
      ['decoder', DEFAULT_DECODER],
    ]);
    // Each analyzer's defaults, nested ones (events) included.
    for (const [field, value] of Object.entries(DEFAULT_ANALYZER)) {
      if (typeof value !== 'object') expected.set(`analyzers.*.${snake(field)}`, value);
      else for (const [inner, v] of Object.entries(value)) expected.set(`analyzers.*.${snake(field)}.${snake(inner)}`, v);
    }
    // Recording: top-level settings, the local and upload sections, and each watched folder's.
    for (const [field, value] of Object.entries(DEFAULT_RECORD)) {
      if (typeof value !== 'object' || Array.isArray(value)) expected.set(`record.${snake(field)}`, value);
      else for (const [inner, v] of Object.entries(value)) expected.set(`record.${field}.${snake(inner)}`, v);
    }
    for (const [field, value] of Object.entries(DEFAULT_RECORD_FOLDER)) expected.set(`record.folders[].${snake(field)}`, value);
    for (const [section, values] of Object.entries(sections)) {
      for (const [field, value] of Object.entries(values)) {
        const node = section.split('.').reduce((n: Node, k) => n.properties![k]!, root);
        const key = Object.keys(node.properties ?? {}).find((k) => camel(k) === field);
        assert.ok(key !== undefined, `${section}.${field} (config/defaults.ts) is in the schema`);
        expected.set(`${section}.${key}`, value);
      }
    }
    assert.deepEqual(Object.fromEntries(schemaDefaults()), Object.fromEntries(expected));
  });

  it('says in each message the bounds it checks', () => {
    const walk = (node: unknown, path: string): void => {
      if (typeof node !== 'object' || node === null) return;
      const n = node as Node;
      for (const bound of ['minimum', 'maximum'] as const) {
        if (typeof n[bound] === 'number' && typeof n.errorMessage === 'string') {
          assert.ok(n.errorMessage.includes(String(n[bound])), `${path}: "${n.errorMessage}" states its ${bound} ${n[bound] as number}`);
        }
      }
      for (const [key, child] of Object.entries(n)) walk(child, `${path}/${key}`);
    };
    walk(desiredSchema, '#');
  });

  it('is the file tsc puts beside the build, found at run time from dist/', () => {
    const source = JSON.parse(readFileSync(new URL('schema/desired.schema.json', ROOT), 'utf8')) as unknown;
    assert.deepEqual(desiredSchema, source);
  });

  it('has a twin-file schema for editors that applies it to each layout of a twin file', () => {
    const ajv = new Ajv({ allowUnionTypes: true, allowMatchingProperties: true });
    ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
    ajv.addSchema(desiredSchema, 'desired.schema.json');
    const twinSchema = JSON.parse(readFileSync(new URL('schema/twin.schema.json', ROOT), 'utf8')) as object;
    const check = ajv.compile(twinSchema);
    const twin = JSON.parse(readFileSync(new URL('twins/default.json', ROOT), 'utf8')) as { properties: { desired: object } };
    const bad = { restart_policy: { initial_delay_ms: 0 } };
    for (const [document, valid] of [
      [twin, true],
      [twin.properties, true],
      [twin.properties.desired, true],
      [{ $schema: './schema/twin.schema.json', ...twin }, true],
      [{ properties: { desired: bad } }, false],
      [{ desired: bad }, false],
      [bad, false],
    ] as const) {
      assert.equal(check(document), valid, JSON.stringify(document).slice(0, 80));
    }
  });

  it('accepts the default twin and the deployment template', () => {
    const twin = JSON.parse(readFileSync(new URL('twins/default.json', ROOT), 'utf8')) as unknown;
    assert.deepEqual(parseDesired(twin).unknownKeys, []);
    const deployment = JSON.parse(readFileSync(new URL('deployment.template.json', ROOT), 'utf8')) as {
      modulesContent: Record<string, Record<string, unknown>>;
    };
    assert.deepEqual(parseDesired(deployment.modulesContent['gst-iotedge']!['properties.desired']).unknownKeys, []);
  });
});
