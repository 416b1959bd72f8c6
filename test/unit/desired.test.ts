import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_RESTART_POLICY } from '../../config/defaults.js';
import { desiredOf, parseDesired, resolveDesired } from '../../config/desired.js';
import { ConfigError } from '../../config/errors.js';
import { expand } from '../../config/expand.js';
import { maskUserinfo, Redactor } from '../../config/redact.js';

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

  it('gives clear errors for wrong types', () => {
    assert.throws(() => parseDesired({ pipeline: 5 }), /pipeline must be a string, got number/);
    assert.throws(() => parseDesired('nope'), /must be a JSON object/);
    assert.throws(() => parseDesired({ http_server: 'yes' }), /http_server must be true or false/);
    assert.throws(() => parseDesired({ pipelines: { 'bad name': 'a' } }), /pipelines.bad name/);
    assert.throws(() => parseDesired({ restart_policy: { initial_delay_ms: -1 } }), /restart_policy.initial_delay_ms/);
    assert.throws(() => parseDesired({ on_eos: 'explode' }), /on_eos must be "restart" or "stop"/);
  });

});

describe('redaction', () => {
  it('replaces expanded values with their variable name and masks URI userinfo', () => {
    const redactor = new Redactor();
    redactor.add(new Map([['PASSWORD', 'hunter2'], ['PIN', '42'], ['WIDTH', '64']]));
    assert.equal(
      redactor.redact('Could not open "/data/hunter2/x.mp4" pin 42, width 64; rtsp://bob:pw@cam/live'),
      'Could not open "/data/${PASSWORD}/x.mp4" pin 42, width 64; rtsp://***@cam/live',
    );
    assert.equal(redactor.redact('uri=a%3Ab%40hunter2'), 'uri=a%3Ab%40${PASSWORD}');
  });

  it('always hides values of secret-looking variables, however short', () => {
    const redactor = new Redactor();
    redactor.add(new Map([['CAM_PASS', 'ab']]));
    assert.equal(redactor.redact('x=ab'), 'x=${CAM_PASS}');
  });

  it('masks userinfo in a template written with a literal password', () => {
    assert.equal(maskUserinfo('rtspsrc location=rtsp://admin:admin123@10.1.1.1/axis'), 'rtspsrc location=rtsp://***@10.1.1.1/axis');
  });
});

describe('launch lines as a shell would pass them', () => {
  it('turns single-quoted values into double-quoted ones, as the seed examples need', async () => {
    const { shellQuotesToGst } = await import('../../config/launch.js');
    assert.equal(shellQuotesToGst("rtspsrc location='rtsp://u:p@h/x' latency=200"), 'rtspsrc location="rtsp://u:p@h/x" latency=200');
    assert.equal(shellQuotesToGst(`a b="it's" c='say "hi"'`), `a b="it's" c="say \\"hi\\""`);
    assert.equal(shellQuotesToGst('plain ! text'), 'plain ! text');
  });
});
