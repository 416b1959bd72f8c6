import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_HTTP, DEFAULT_RESTART_POLICY } from '../../config/defaults.js';
import { desiredOf, parseDesired, versionOf } from '../../config/desired.js';
import { checkMediaRoot, resolveDesired } from '../../config/resolve.js';
import { ConfigError } from '../../config/errors.js';
import { expand } from '../../config/expand.js';
import { MAX_DOCUMENT_BYTES, MAX_DOCUMENT_DEPTH } from '../../config/schema.js';

describe('environment expansion', () => {
  const env = { USER: 'admin', PASSWORD: 's3cr3t', IP: '10.0.0.5', EMPTY: '' };

  it('expands $VAR, ${VAR} and ${VAR:-default} like a shell', () => {
    const { text, values } = expand('rtsp://$USER:${PASSWORD}@${CAM:-127.0.0.1}/x ${IP:-y} ${EMPTY:-fallback}', env, 'pipeline');
    assert.equal(text, 'rtsp://admin:s3cr3t@127.0.0.1/x 10.0.0.5 fallback');
    assert.deepEqual([...values.keys()].sort(), ['IP', 'PASSWORD', 'USER']);
  });

  it('names the variable when one is unset and has no default', () => {
    assert.throws(() => expand('location=$MEDIA_PATH/a.mp4', env, 'pipeline'), (e: unknown) => {
      return e instanceof ConfigError && e.message === 'pipeline: environment variable MEDIA_PATH is not set';
    });
    assert.throws(() => expand('x=${NOPE}', env, 'rtsp_pipeline'), /rtsp_pipeline: environment variable NOPE is not set/);
  });

  it('keeps a $ that starts no variable, and $$ is a literal $', () => {
    assert.equal(expand('a $ b $1 $$USER', env, 'p').text, 'a $ b $1 $USER');
  });

  it('refuses an unterminated or malformed ${', () => {
    assert.throws(() => expand('x=${USER', env, 'p'), /unterminated/);
    assert.throws(() => expand('x=${US-ER}', env, 'p'), /not a valid variable name/);
  });
});

describe('desired documents', () => {
  it('accepts the seed layout, a bare desired object and {"desired": ...}', () => {
    const inner = { pipeline: 'videotestsrc ! fakesink' };
    assert.deepEqual(desiredOf({ properties: { desired: inner } }), inner);
    assert.deepEqual(desiredOf({ desired: inner }), inner);
    assert.deepEqual(desiredOf(inner), inner);
  });

  it('reads the seed keys with their defaults and reports unknown keys', () => {
    const config = parseDesired({
      properties: { desired: { pipeline: 'a ! b', rtsp_pipeline: '( c )', $version: 4, $metadata: {}, pipline: 'typo' } },
    });
    assert.equal(config.version, 4);
    assert.deepEqual(config.pipelines, [{ name: 'main', template: 'a ! b', onEos: 'restart' }]);
    assert.equal(config.rtspPipeline, '( c )');
    assert.equal(config.webrtcPipeline, null);
    assert.equal(config.httpServer, true);
    assert.deepEqual(config.restartPolicy, DEFAULT_RESTART_POLICY);
    assert.deepEqual(config.unknownKeys, ['pipline']);
  });

  it('reports unknown keys inside known sections too, by their path', () => {
    const config = parseDesired({ pipeline: 'a', rtsp: { prot: 1 }, restart_policy: { initial_delay: 5 }, pipelines: { cam2: { pipeline: 'b', on_eof: 'stop' } } });
    assert.deepEqual([...config.unknownKeys].sort(), ['pipelines.cam2.on_eof', 'restart_policy.initial_delay', 'rtsp.prot']);
    assert.deepEqual(parseDesired(JSON.parse('{"pipeline":"a","constructor":1,"__proto__":{},"http":{"toString":1}}')).unknownKeys, ['constructor', '__proto__', 'http.toString']);
  });

  it('gives clear errors for wrong types', () => {
    assert.throws(() => parseDesired({ pipeline: 5 }), /pipeline must be a string, got number/);
    assert.throws(() => parseDesired('nope'), /must be a JSON object/);
    assert.throws(() => parseDesired({ http_server: 'yes' }), /http_server must be true or false/);
    assert.throws(() => parseDesired({ pipelines: { 'bad name': 'a' } }), /pipelines.bad name/);
    assert.throws(() => parseDesired({ restart_policy: { initial_delay_ms: -1 } }), /restart_policy.initial_delay_ms/);
    assert.throws(() => parseDesired({ on_eos: 'explode' }), /on_eos must be "restart" or "stop"/);
    assert.throws(() => parseDesired({ pipeline: 'a', restart_policy: 'fast' }), /restart_policy must be an object/);
  });

  it('names the key and the value it refuses', () => {
    const refused = (desired: unknown, message: string) =>
      assert.throws(() => parseDesired(desired), (e: unknown) => e instanceof ConfigError && e.message === message);
    refused({ restart_policy: { initial_delay_ms: -1 } }, 'restart_policy.initial_delay_ms must be a number of milliseconds between 100 and 86400000, got -1');
    refused({ webrtc: { mode: 'mesh' } }, 'webrtc.mode must be "shared" or "per-viewer", got "mesh"');
    refused({ on_eos: 'explode' }, 'on_eos must be "restart" or "stop", got "explode"');
    refused({ rtsp: { port: 70000 } }, 'rtsp.port must be a port number (0-65535), got 70000');
    refused({ metrics: { port: 'off' } }, 'metrics.port must be a port number (0-65535), or null to turn it off, got string');
    refused({ pipelines: { cam2: 5 } }, 'pipelines.cam2 must be a string or an object with "pipeline", got number');
    refused({ pipelines: { cam2: {} } }, 'pipelines.cam2.pipeline must be a non-empty string');
    refused({ pipelines: { cam2: { pipeline: 'a', on_eos: 'x' } } }, 'pipelines.cam2.on_eos must be "restart" or "stop", got "x"');
    refused({ pipelines: { main: 'a' } }, `pipelines.main: a name is 1-32 letters, digits, '-' or '_', not "main"`);
    refused({ rtsp: { mounts: { 'a b': 'x' } } }, "rtsp.mounts.a b: a mount name is letters, digits, '-', '_' or '.'");
    refused({ webrtc: { turn_servers: ['turn://h', 'http://u:pw@h'] } }, 'webrtc.turn_servers[1] must be a turn://user:password@host:port URI, got "http://***@h"');
    refused({ webrtc: { max_peers: 0 } }, 'webrtc.max_peers must be a whole number from 1 to 1000, got 0');
    refused({ http: { media_root: 'media' } }, 'http.media_root must be an absolute folder path, got "media"');
  });

  it('keeps the rules JSON Schema cannot state', () => {
    assert.throws(() => parseDesired({ restart_policy: { initial_delay_ms: 2000, max_delay_ms: 1000 } }), /max_delay_ms must not be below initial_delay_ms/);
    assert.throws(() => parseDesired({ rtsp_pipeline: '( a )', rtsp: { mounts: { player: '( b )' } } }), /\/player is rtsp_pipeline already/);
    assert.throws(() => resolveDesired(parseDesired({ pipeline: 'a', webrtc: { mode: 'per-viewer' } }), {}), /per-viewer" needs webrtc_pipeline/);
  });

  it('takes null as the default, as a twin patch deletes a key', () => {
    const config = parseDesired({ pipeline: 'a', on_eos: null, http_server: null, restart_policy: { initial_delay_ms: null }, metrics: { port: null }, pipelines: { cam2: null } });
    assert.equal(config.pipelines.length, 1);
    assert.equal(config.httpServer, true);
    assert.equal(config.restartPolicy.initialDelayMs, DEFAULT_RESTART_POLICY.initialDelayMs);
    assert.equal(config.metrics.port, null);
  });
});

describe('restart policy bounds', () => {
  it('refuses delays that would make a restart loop, starts that always time out and stops that never drain', () => {
    assert.throws(() => parseDesired({ restart_policy: { initial_delay_ms: 0 } }), /initial_delay_ms must be a number of milliseconds between 100 and/);
    assert.throws(() => parseDesired({ restart_policy: { max_delay_ms: 0 } }), /max_delay_ms must be a number of milliseconds between 100 and/);
    assert.throws(() => parseDesired({ restart_policy: { start_timeout_ms: 999 } }), /start_timeout_ms must be a number of milliseconds between 1000 and/);
    assert.throws(() => parseDesired({ restart_policy: { stop_timeout_ms: 0 } }), /stop_timeout_ms must be a number of milliseconds between 500 and/);
    assert.throws(() => parseDesired({ restart_policy: { stable_after_ms: 0 } }), /stable_after_ms must be a number of milliseconds between 1000 and/);
  });

  it('takes the lowest sane values', () => {
    const policy = parseDesired({ restart_policy: { initial_delay_ms: 100, max_delay_ms: 100, start_timeout_ms: 1000, stop_timeout_ms: 500, stable_after_ms: 1000 } }).restartPolicy;
    assert.deepEqual(policy, { initialDelayMs: 100, maxDelayMs: 100, startTimeoutMs: 1000, stopTimeoutMs: 500, stableAfterMs: 1000 });
  });
});

describe('hostile documents', () => {
  it('refuses a 100 000-deep nested array without overflowing the stack', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) as unknown;
    assert.throws(() => parseDesired({ pipeline: 'a', x: deep }), (e: unknown) => e instanceof ConfigError && e.message === `desired document nests deeper than ${MAX_DOCUMENT_DEPTH} levels`);
    const deepObject = JSON.parse(`${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`) as unknown;
    assert.throws(() => parseDesired(deepObject), /nests deeper than 32 levels/);
    assert.equal(versionOf(deepObject), null);
  });

  it('takes a document nested as deep as the limit', () => {
    let nested: unknown = 1;
    for (let i = 0; i < MAX_DOCUMENT_DEPTH - 1; i++) nested = [nested];
    assert.deepEqual(parseDesired({ pipeline: 'a', extra: nested }).unknownKeys, ['extra']);
  });

  it('refuses a document over 1 MiB, saying how large it is', () => {
    assert.throws(() => parseDesired({ pipeline: 'a', padding: 'x'.repeat(2_100_000) }), (e: unknown) => e instanceof ConfigError && e.message === 'desired document is 2.1 MB; the limit is 1 MiB');
    assert.throws(() => parseDesired({ pipeline: 'a', padding: Array.from({ length: 300_000 }, () => 1234) }), /desired document is 1\.\d MB; the limit is 1 MiB/);
    assert.doesNotThrow(() => parseDesired({ pipeline: 'a', padding: 'x'.repeat(MAX_DOCUMENT_BYTES - 1000) }));
  });

  it('reads $version from the desired object only, without walking the document', () => {
    assert.equal(versionOf({ properties: { desired: { $version: 7 } } }), 7);
    assert.equal(versionOf({ desired: { $version: 8 } }), 8);
    assert.equal(versionOf({ $version: 9, pipeline: 'a' }), 9);
    assert.equal(versionOf({ properties: { desired: 'x' } }), null);
    assert.equal(versionOf('nope'), null);
    // The old recursive lookup followed `desired`/`properties` keys for ever.
    let chain: Record<string, unknown> = {};
    for (let i = 0; i < 100_000; i++) chain = { desired: chain };
    assert.equal(versionOf(chain), null);
  });
});

describe('media folder', () => {
  it('defaults to a folder of its own, not /tmp', () => {
    assert.equal(DEFAULT_HTTP.mediaRoot, join(tmpdir(), 'gst-iotedge-media'));
    assert.equal(resolveDesired(parseDesired({ pipeline: 'a' }), {}).http.mediaRoot, join(tmpdir(), 'gst-iotedge-media'));
  });

  it('refuses / and a folder that is or holds the state folder', () => {
    const state = join(tmpdir(), 'gst-iotedge-state');
    assert.throws(() => resolveDesired(parseDesired({ http: { media_root: '/' } }), {}), /http.media_root must not be \//);
    assert.throws(() => resolveDesired(parseDesired({ http: { media_root: '$ROOT' } }), { ROOT: '/./' }), /must not be \//);
    assert.throws(() => checkMediaRoot(tmpdir(), state), /must not be or hold the module's state folder/);
    assert.throws(() => checkMediaRoot(state, state), /state folder/);
    assert.throws(() => resolveDesired(parseDesired({ http: { media_root: tmpdir() } }), {}, { stateDir: state }), /state folder \(STATE_DIR\)/);
    assert.doesNotThrow(() => checkMediaRoot(join(tmpdir(), 'gst-iotedge-media'), state));
    assert.doesNotThrow(() => checkMediaRoot(join(state, 'media'), state), 'a folder inside the state folder does not serve the state');
    assert.doesNotThrow(() => checkMediaRoot(`${state}-media`, state), 'a sibling with the same prefix is another folder');
  });

  it('follows symbolic links to the state folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gst-iotedge-media-test-'));
    try {
      const state = join(dir, 'state', 'inner');
      const link = join(dir, 'link');
      mkdirSync(join(dir, 'state'));
      symlinkSync(join(dir, 'state'), link);
      assert.throws(() => checkMediaRoot(link, state), /state folder/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
