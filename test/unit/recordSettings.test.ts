import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../config/errors.js';
import { Redactor } from '../../config/redact.js';
import { parseRecordSettings } from '../../recording/settings.js';
import { parseObjectNameTemplate, renderObjectName } from '../../recording/template.js';

const env = {
  AZ_CONN: 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0LWtleS12YWx1ZQ==;EndpointSuffix=core.windows.net',
  SAS: 'https://acct.blob.core.windows.net/rec?sv=2022-11-02&ss=b&sig=SIGNATURE123%3D',
  S3_KEY: 'AKIAEXAMPLE',
  S3_SECRET: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  IOTEDGE_DEVICEID: 'edge-1',
};

const azure = { type: 'azure-blob', container: 'rec', connection_string: '$AZ_CONN' };
const s3 = { type: 's3', bucket: 'rec', endpoint: 'http://127.0.0.1:9000', access_key_id: '$S3_KEY', secret_access_key: '${S3_SECRET}' };

function rejects(value: unknown, message: RegExp | string, environment: NodeJS.ProcessEnv = env): ConfigError {
  try {
    parseRecordSettings(value, environment);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `a ConfigError, got ${String(error)}`);
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    for (const secret of [env.AZ_CONN, env.S3_SECRET, 'SIGNATURE123', 'c2VjcmV0LWtleS12YWx1ZQ']) assert.ok(!error.message.includes(secret), `no secret in "${error.message}"`);
    return error;
  }
  assert.fail(`accepted ${JSON.stringify(value)}`);
}

describe('record settings', () => {
  it('returns no settings when the key is absent or recording is disabled', () => {
    assert.equal(parseRecordSettings(undefined, env).settings, null);
    assert.equal(parseRecordSettings({ enabled: false, targets: [{ type: 'ftp' }] }, env).settings, null);
  });

  it('fills defaults: the video stream with audio muxed when present, 60 s segments of 1 s fragments, the documented object name', () => {
    const { settings } = parseRecordSettings({ targets: [azure] }, env);
    assert.ok(settings);
    assert.deepEqual(settings.streams, [{ stream: 'video', audio: 'audio' }]);
    assert.equal(settings.segmentMs, 60_000);
    assert.equal(settings.fragmentMs, 1_000);
    assert.equal(settings.camera, 'edge-1');
    assert.equal(settings.objectName.source, '{camera}/{stream}/{yyyy}/{MM}/{dd}/{start}.mp4');
    assert.equal(settings.local.whenFull, 'drop-oldest');
    assert.equal(settings.targets[0]!.name, 'azure-blob:rec');
  });

  it('rejects an unknown target type, naming the key and the value', () => {
    rejects({ targets: [{ type: 'ftp' }] }, 'record.targets[0].type must be "azure-blob" or "s3", got "ftp"');
    rejects({ targets: [azure, {}] }, 'record.targets[1].type must be "azure-blob" or "s3", got undefined');
  });

  it('rejects a target without its container or bucket', () => {
    rejects({ targets: [{ type: 'azure-blob', connection_string: '$AZ_CONN' }] }, /^record\.targets\[0\]\.container is required/);
    rejects({ targets: [{ ...s3, bucket: undefined }] }, /^record\.targets\[0\]\.bucket is required/);
    rejects({ targets: [{ ...s3, bucket: 'Bad_Bucket' }] }, /^record\.targets\[0\]\.bucket must be 3-63 lower-case/);
  });

  it('rejects a credential variable that is not set, naming the variable', () => {
    rejects({ targets: [{ ...azure, connection_string: '$MISSING_CONN' }] }, 'record.targets[0].connection_string: environment variable MISSING_CONN is not set');
    rejects({ targets: [{ ...s3, secret_access_key: '${NO_SECRET}' }] }, 'record.targets[0].secret_access_key: environment variable NO_SECRET is not set');
  });

  it('rejects an object name template with an unknown field, listing the known ones', () => {
    const error = rejects({ object_name: '{camera}/{cam}/{start}.mp4', targets: [azure] }, /^record\.object_name: unknown field \{cam\} in "\{camera\}\/\{cam\}\/\{start\}\.mp4"; known fields: camera, stream, /);
    assert.match(error.message, /yyyy, MM, dd/);
    rejects({ object_name: '{camera}/{stream}.mp4', targets: [azure] }, /must contain \{start\}/);
    rejects({ object_name: '{camera/{start}.mp4', targets: [azure] }, /unknown field \{camera\/\{start\}/);
    rejects({ object_name: '../{start}.mp4', targets: [azure] }, /relative name without/);
  });

  it('rejects half credentials, both or neither Azure credential, and the module identity with the reason', () => {
    rejects({ targets: [{ ...s3, secret_access_key: undefined }] }, /needs both access_key_id and secret_access_key, or neither/);
    rejects({ targets: [{ type: 'azure-blob', container: 'rec' }] }, /needs exactly one of connection_string or sas_url, got neither/);
    rejects({ targets: [{ ...azure, sas_url: '$SAS' }] }, /got both/);
    rejects({ targets: [{ type: 'azure-blob', container: 'rec', auth: 'module-identity' }] }, /does not accept an IoT Edge module's IoT Hub identity/);
    rejects({ targets: [{ ...azure, connection_string: 'not a connection string' }] }, /is not an Azure Storage connection string/);
  });

  it('rejects bad numbers and names with the key and the value', () => {
    rejects({ segment_seconds: 0, targets: [azure] }, 'record.segment_seconds must be between 1 and 86400, got 0');
    rejects({ segment_seconds: '60', targets: [azure] }, 'record.segment_seconds must be an integer, got "60"');
    rejects({ fragment_ms: 5000, segment_seconds: 2, targets: [azure] }, /fragment_ms \(5000\) must not be longer/);
    rejects({ streams: ['video', 'video'], targets: [azure] }, /listed twice/);
    rejects({ streams: ['a b'], targets: [azure] }, /must be a stream name/);
    rejects({ local: { when_full: 'panic' }, targets: [azure] }, 'record.local.when_full must be "drop-oldest" or "drop-newest", got "panic"');
    rejects({ targets: [azure, azure] }, /is used by another target/);
  });

  it('hands every expanded value and the secret parts of credentials to the redactor', () => {
    const { settings, secrets } = parseRecordSettings({ targets: [azure, s3, { type: 'azure-blob', sas_url: '$SAS', name: 'sas' }] }, env);
    assert.ok(settings);
    const redactor = new Redactor();
    redactor.add(secrets);
    const text = `failed: ${env.AZ_CONN} key=c2VjcmV0LWtleS12YWx1ZQ== url=${env.SAS} sig=SIGNATURE123%3D secret=${env.S3_SECRET} id=${env.S3_KEY}`;
    const shown = redactor.redact(text);
    for (const secret of ['c2VjcmV0LWtleS12YWx1ZQ', 'SIGNATURE123', env.S3_SECRET, env.S3_KEY]) assert.ok(!shown.includes(secret), `${secret} hidden in ${shown}`);
    const sas = settings.targets[2]!;
    assert.equal(sas.type === 'azure-blob' && sas.container, 'rec', 'the container comes from the SAS URL');
  });

  it('warns about unknown keys instead of refusing them', () => {
    const { warnings } = parseRecordSettings({ targets: [azure], segment_second: 10 }, env);
    assert.deepEqual(warnings, ['record.segment_second is not a known setting (ignored)']);
  });

  it('renders object names in UTC with every documented field', () => {
    const t = parseObjectNameTemplate('{camera}/{stream}/{yyyy}/{MM}/{dd}/{HH}{mm}{ss}/{start}-{duration_s}s{ext}', 'x');
    const name = renderObjectName(t, { camera: 'cam', stream: 'video', startMs: Date.UTC(2024, 4, 1, 2, 3, 4, 5), durationMs: 59_600, name: 'a', ext: '.mp4', device: '', module: '' });
    assert.equal(name, 'cam/video/2024/05/01/020304/20240501T020304.005Z-60s.mp4');
  });
});
