import { DEFAULT_RECORD, DEFAULT_RECORD_FOLDER } from '../config/defaults.js';
import { ConfigError } from '../config/errors.js';
import { expand } from '../config/expand.js';
import { Redactor } from '../config/redact.js';
import { STREAM_NAME } from './naming.js';
import { parseObjectNameTemplate, type ObjectNameTemplate } from './template.js';

/** One hub stream recorded into its own segments. */
export interface RecordStreamSettings {
  /** Sample hub stream (a main pipeline's `appsink name=...`) with H.264 or H.265. */
  readonly stream: string;
  /** Hub stream muxed into the same segments (AAC or Opus), when the hub has it; null: video only. */
  readonly audio: string | null;
}

/** A folder a pipeline writes its own files into (splitmuxsink, hlssink2): closed files are queued. */
export interface WatchedFolderSettings {
  readonly path: string;
  /** File name glob (`*` and `?`), e.g. `*.ts`; playlists are left alone unless it matches them. */
  readonly pattern: string;
  /** Name for status, events and the `{stream}` template field. */
  readonly stream: string;
  /** A file not the newest is closed once its size and mtime have not changed for this long. */
  readonly settleMs: number;
  /** The newest file is closed once it has not changed for this long (the writer stopped). */
  readonly idleCloseMs: number;
  readonly objectName: ObjectNameTemplate;
}

export type WhenFull = 'drop-oldest' | 'drop-newest';

/** The local disk budget of segments waiting for (or kept after) upload. */
export interface LocalSettings {
  /** Where the recorder writes; null: `<state dir>/recordings`. */
  readonly dir: string | null;
  readonly maxBytes: number;
  /** Local files older than this go (uploaded ones silently, others with an alarm); null: no age limit. */
  readonly maxAgeMs: number | null;
  /** Keep uploaded files locally (they are the first to go when the budget is full). */
  readonly keepUploaded: boolean;
  /** Which not-uploaded segments go when only those are left and the budget is full. */
  readonly whenFull: WhenFull;
  /** Fraction of `maxBytes` held by not-uploaded segments at which the alarm is raised. */
  readonly alarmAt: number;
}

export interface UploadSettings {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Azure block size; S3 part size (at least 5 MiB, S3's minimum). */
  readonly blockSize: number;
  /** Blocks or parts in flight for one segment. */
  readonly concurrency: number;
  readonly requestTimeoutMs: number;
  /** How long uploaded segments stay listed by /api/recordings after their local file is gone. */
  readonly historyMaxAgeMs: number;
}

export type AzureBlobAuth =
  | { readonly kind: 'connection-string'; readonly connectionString: string }
  /** `containerInUrl`: a container SAS URL (`…/container?sv=…`) rather than an account one. */
  | { readonly kind: 'sas-url'; readonly url: string; readonly containerInUrl: boolean };

export interface AzureBlobTargetSettings {
  readonly type: 'azure-blob';
  /** Unique among targets; the queue's progress per target is kept under it. */
  readonly name: string;
  readonly container: string;
  readonly auth: AzureBlobAuth;
}

export interface S3TargetSettings {
  readonly type: 's3';
  readonly name: string;
  readonly bucket: string;
  readonly region: string;
  /** S3-compatible servers; null: AWS. */
  readonly endpoint: string | null;
  readonly forcePathStyle: boolean;
  /** Both null: the SDK's default chain (AWS_* variables, instance role). */
  readonly accessKeyId: string | null;
  readonly secretAccessKey: string | null;
  readonly sessionToken: string | null;
  /** Compare each part's ETag with its MD5 (turn off for SSE-KMS / SSE-C buckets, whose ETags are not MD5s). */
  readonly verifyEtag: boolean;
}

export type TargetSettings = AzureBlobTargetSettings | S3TargetSettings;

/** The `record` twin key, validated and expanded. */
export interface RecordSettings {
  /** `{camera}` in object names and events. */
  readonly camera: string;
  readonly streams: readonly RecordStreamSettings[];
  readonly segmentMs: number;
  /** MP4 fragment length: what a crash can lose at most. */
  readonly fragmentMs: number;
  readonly objectName: ObjectNameTemplate;
  readonly folders: readonly WatchedFolderSettings[];
  readonly local: LocalSettings;
  readonly upload: UploadSettings;
  readonly targets: readonly TargetSettings[];
}

export interface ParsedRecordSettings {
  /** null: no `record` key, or `enabled: false`. */
  readonly settings: RecordSettings | null;
  /**
   * Every value that came from the environment, and the secret parts of credentials (account keys, SAS
   * signatures) even when written inline: hand them to the {@link Redactor} before anything is logged.
   */
  readonly secrets: ReadonlyMap<string, string>;
  /** Unknown keys under `record` (ignored, so a newer twin still runs): report them. */
  readonly warnings: readonly string[];
}

export const DEFAULT_OBJECT_NAME: string = DEFAULT_RECORD.objectName;
export const DEFAULT_FOLDER_OBJECT_NAME: string = DEFAULT_RECORD_FOLDER.objectName;
const MIB = 1024 * 1024;
/** S3 refuses parts under 5 MiB (but the last). */
export const S3_MIN_PART = 5 * MIB;

const TARGET_TYPES = ['azure-blob', 's3'] as const;

/** Reads one `record` value: expansion of `$VAR`s, defaults, and errors that name the key and the value. */
class Reader {
  readonly #env: NodeJS.ProcessEnv;
  /** Values expanded so far, name -> value. */
  readonly secrets = new Map<string, string>();
  readonly warnings: string[] = [];
  /** Hides expanded values in this parser's own messages. */
  readonly #redactor = new Redactor();

  constructor(env: NodeJS.ProcessEnv) {
    this.#env = env;
  }

  /** A value as it may appear in an error: JSON, with expanded values hidden. */
  show(value: unknown): string {
    return this.#redactor.redact(JSON.stringify(value) ?? String(value));
  }

  object(value: unknown, where: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ConfigError(`${where} must be an object, got ${this.show(value)}`);
    }
    return value as Record<string, unknown>;
  }

  known(obj: Record<string, unknown>, where: string, keys: readonly string[]): void {
    for (const key of Object.keys(obj)) if (!keys.includes(key)) this.warnings.push(`${where}.${key} is not a known setting (ignored)`);
  }

  /** A string, `$VAR`s expanded; `undefined`/`null` give the fallback. */
  string(value: unknown, where: string): string | null {
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string') throw new ConfigError(`${where} must be a string, got ${this.show(value)}`);
    const { text, values } = expand(value, this.#env, where);
    for (const [name, v] of values) this.secrets.set(name, v);
    this.#redactor.add(values);
    return text;
  }

  required(value: unknown, where: string, what: string): string {
    const text = this.string(value, where);
    if (text === null || text === '') throw new ConfigError(`${where} is required (${what})`);
    return text;
  }

  /** Marks a value as secret however it was written (inline in the twin, or from a variable). */
  secret(name: string, value: string): void {
    if (!value) return;
    this.secrets.set(name, value);
    this.#redactor.add(new Map([[name, value]]));
  }

  number(value: unknown, where: string, fallback: number, min: number, max: number, integer = true): number {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
      throw new ConfigError(`${where} must be ${integer ? 'an integer' : 'a number'}, got ${this.show(value)}`);
    }
    if (value < min || value > max) throw new ConfigError(`${where} must be between ${min} and ${max}, got ${value}`);
    return value;
  }

  boolean(value: unknown, where: string, fallback: boolean): boolean {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') throw new ConfigError(`${where} must be true or false, got ${this.show(value)}`);
    return value;
  }

  oneOf<T extends string>(value: unknown, where: string, choices: readonly T[], fallback?: T): T {
    if ((value === undefined || value === null) && fallback !== undefined) return fallback;
    const text = typeof value === 'string' ? this.string(value, where) : value;
    if (typeof text !== 'string' || !(choices as readonly string[]).includes(text)) {
      const shown = typeof text === 'string' ? this.show(text) : this.show(value);
      throw new ConfigError(`${where} must be ${choices.map((c) => `"${c}"`).join(' or ')}, got ${shown}`);
    }
    return text as T;
  }

  streamName(value: unknown, where: string): string {
    const name = this.required(value, where, 'a sample hub stream name, e.g. "video"');
    if (!STREAM_NAME.test(name)) throw new ConfigError(`${where} must be a stream name (letters, digits, "_", "-", "."), got ${this.show(name)}`);
    return name;
  }
}

/**
 * Validates and expands the `record` twin key. Pure: reads only `value` and `env` (for `$VAR`s and the
 * IoT Edge device id). Throws a {@link ConfigError} that names the key and the offending value, e.g.
 * `record.targets[0].type must be "azure-blob" or "s3", got "ftp"`; expanded values never appear in it.
 *
 * @example
 * const { settings, secrets } = parseRecordSettings(desired.record, process.env);
 * redactor.add(secrets);
 */
export function parseRecordSettings(value: unknown, env: NodeJS.ProcessEnv): ParsedRecordSettings {
  const r = new Reader(env);
  if (value === undefined || value === null || value === false) return { settings: null, secrets: r.secrets, warnings: r.warnings };
  const rec = r.object(value, 'record');
  r.known(rec, 'record', ['enabled', 'camera', 'streams', 'audio', 'segment_seconds', 'fragment_ms', 'object_name', 'folders', 'local', 'upload', 'targets']);
  if (!r.boolean(rec.enabled, 'record.enabled', DEFAULT_RECORD.enabled)) return { settings: null, secrets: r.secrets, warnings: r.warnings };

  const camera = r.string(rec.camera, 'record.camera') ?? env.IOTEDGE_DEVICEID ?? 'camera';
  const segmentMs = r.number(rec.segment_seconds, 'record.segment_seconds', DEFAULT_RECORD.segmentSeconds, 1, 86_400) * 1000;
  const fragmentMs = r.number(rec.fragment_ms, 'record.fragment_ms', DEFAULT_RECORD.fragmentMs, 100, 60_000);
  if (fragmentMs > segmentMs) throw new ConfigError(`record.fragment_ms (${fragmentMs}) must not be longer than record.segment_seconds (${segmentMs / 1000} s)`);
  // false (or null in a twin file; a twin patch's null deletes the key): video only.
  const defaultAudio = rec.audio === null || rec.audio === false ? null : rec.audio === undefined ? DEFAULT_RECORD.audio : r.streamName(rec.audio, 'record.audio');

  const folders = foldersOf(r, rec.folders);
  let streams: RecordStreamSettings[];
  if (rec.streams === undefined || rec.streams === null) {
    streams = folders.length > 0 ? [] : DEFAULT_RECORD.streams.map((stream) => ({ stream, audio: defaultAudio }));
  } else {
    if (!Array.isArray(rec.streams)) throw new ConfigError(`record.streams must be an array of stream names, got ${r.show(rec.streams)}`);
    streams = rec.streams.map((item: unknown, i) => {
      const where = `record.streams[${i}]`;
      if (typeof item === 'string') return { stream: r.streamName(item, where), audio: defaultAudio };
      const obj = r.object(item, where);
      r.known(obj, where, ['stream', 'audio']);
      return { stream: r.streamName(obj.stream, `${where}.stream`), audio: obj.audio === null || obj.audio === false ? null : obj.audio === undefined ? defaultAudio : r.streamName(obj.audio, `${where}.audio`) };
    });
    const seen = new Set<string>();
    for (const [i, s] of streams.entries()) {
      if (seen.has(s.stream)) throw new ConfigError(`record.streams[${i}]: stream "${s.stream}" is listed twice`);
      seen.add(s.stream);
    }
  }
  if (streams.length === 0 && folders.length === 0) throw new ConfigError('record: nothing to record (record.streams and record.folders are both empty)');
  const objectNameText = r.string(rec.object_name, 'record.object_name') ?? DEFAULT_OBJECT_NAME;
  const objectName = parseObjectNameTemplate(objectNameText, 'record.object_name');

  return {
    settings: {
      camera,
      streams,
      segmentMs,
      fragmentMs,
      objectName,
      folders,
      local: localOf(r, rec.local),
      upload: uploadOf(r, rec.upload),
      targets: targetsOf(r, rec.targets),
    },
    secrets: r.secrets,
    warnings: r.warnings,
  };
}

function foldersOf(r: Reader, value: unknown): WatchedFolderSettings[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ConfigError(`record.folders must be an array, got ${r.show(value)}`);
  const folders = value.map((item: unknown, i): WatchedFolderSettings => {
    const where = `record.folders[${i}]`;
    const obj = typeof item === 'string' ? { path: item } : r.object(item, where);
    r.known(obj, where, ['path', 'pattern', 'stream', 'settle_ms', 'idle_close_ms', 'object_name']);
    const path = r.required(obj.path, `${where}.path`, 'the folder the pipeline writes into');
    if (!path.startsWith('/')) throw new ConfigError(`${where}.path must be an absolute path, got ${r.show(path)}`);
    const pattern = r.string(obj.pattern, `${where}.pattern`) ?? DEFAULT_RECORD_FOLDER.pattern;
    if (pattern.includes('/')) throw new ConfigError(`${where}.pattern is a file name pattern and cannot hold "/", got ${r.show(pattern)}`);
    const fallbackStream = path.replace(/\/+$/, '').split('/').pop()?.replace(/[^A-Za-z0-9_.-]/g, '_') || 'folder';
    const settleMs = r.number(obj.settle_ms, `${where}.settle_ms`, DEFAULT_RECORD_FOLDER.settleMs, 100, 600_000);
    return {
      path,
      pattern,
      stream: obj.stream === undefined ? fallbackStream : r.streamName(obj.stream, `${where}.stream`),
      settleMs,
      idleCloseMs: r.number(obj.idle_close_ms, `${where}.idle_close_ms`, Math.max(DEFAULT_RECORD_FOLDER.idleCloseMs, settleMs), settleMs, 86_400_000),
      objectName: parseObjectNameTemplate(r.string(obj.object_name, `${where}.object_name`) ?? DEFAULT_FOLDER_OBJECT_NAME, `${where}.object_name`),
    };
  });
  const paths = new Set<string>();
  for (const [i, f] of folders.entries()) {
    if (paths.has(f.path)) throw new ConfigError(`record.folders[${i}].path "${f.path}" is watched twice`);
    paths.add(f.path);
  }
  return folders;
}

function localOf(r: Reader, value: unknown): LocalSettings {
  const obj = value === undefined || value === null ? {} : r.object(value, 'record.local');
  r.known(obj, 'record.local', ['dir', 'max_bytes', 'max_age_s', 'keep_uploaded', 'when_full', 'alarm_at']);
  const dir = r.string(obj.dir, 'record.local.dir');
  if (dir !== null && !dir.startsWith('/')) throw new ConfigError(`record.local.dir must be an absolute path, got ${r.show(dir)}`);
  return {
    dir,
    maxBytes: r.number(obj.max_bytes, 'record.local.max_bytes', DEFAULT_RECORD.local.maxBytes, 1, Number.MAX_SAFE_INTEGER),
    maxAgeMs: obj.max_age_s === undefined || obj.max_age_s === null ? null : r.number(obj.max_age_s, 'record.local.max_age_s', 0, 1, 10 * 365 * 86_400) * 1000,
    keepUploaded: r.boolean(obj.keep_uploaded, 'record.local.keep_uploaded', DEFAULT_RECORD.local.keepUploaded),
    whenFull: r.oneOf(obj.when_full, 'record.local.when_full', ['drop-oldest', 'drop-newest'] as const, DEFAULT_RECORD.local.whenFull),
    alarmAt: r.number(obj.alarm_at, 'record.local.alarm_at', DEFAULT_RECORD.local.alarmAt, 0.01, 1, false),
  };
}

function uploadOf(r: Reader, value: unknown): UploadSettings {
  const obj = value === undefined || value === null ? {} : r.object(value, 'record.upload');
  r.known(obj, 'record.upload', ['initial_delay_ms', 'max_delay_ms', 'block_size', 'concurrency', 'request_timeout_ms', 'history_days']);
  const initialDelayMs = r.number(obj.initial_delay_ms, 'record.upload.initial_delay_ms', DEFAULT_RECORD.upload.initialDelayMs, 1, 3_600_000);
  return {
    initialDelayMs,
    maxDelayMs: r.number(obj.max_delay_ms, 'record.upload.max_delay_ms', Math.max(DEFAULT_RECORD.upload.maxDelayMs, initialDelayMs), initialDelayMs, 3_600_000),
    blockSize: r.number(obj.block_size, 'record.upload.block_size', DEFAULT_RECORD.upload.blockSize, 64 * 1024, 100 * MIB),
    concurrency: r.number(obj.concurrency, 'record.upload.concurrency', DEFAULT_RECORD.upload.concurrency, 1, 16),
    requestTimeoutMs: r.number(obj.request_timeout_ms, 'record.upload.request_timeout_ms', DEFAULT_RECORD.upload.requestTimeoutMs, 1_000, 3_600_000),
    historyMaxAgeMs: r.number(obj.history_days, 'record.upload.history_days', DEFAULT_RECORD.upload.historyDays, 0, 3650) * 86_400_000,
  };
}

function targetsOf(r: Reader, value: unknown): TargetSettings[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ConfigError(`record.targets must be an array, got ${r.show(value)}`);
  const targets = value.map((item: unknown, i) => targetOf(r, item, `record.targets[${i}]`));
  const names = new Set<string>();
  for (const [i, t] of targets.entries()) {
    if (names.has(t.name)) throw new ConfigError(`record.targets[${i}].name "${t.name}" is used by another target (give each its own "name")`);
    names.add(t.name);
  }
  return targets;
}

function targetOf(r: Reader, value: unknown, where: string): TargetSettings {
  const obj = r.object(value, where);
  const type = r.oneOf(obj.type, `${where}.type`, TARGET_TYPES);
  return type === 'azure-blob' ? azureOf(r, obj, where) : s3Of(r, obj, where);
}

function azureOf(r: Reader, obj: Record<string, unknown>, where: string): AzureBlobTargetSettings {
  r.known(obj, where, ['type', 'name', 'container', 'connection_string', 'sas_url', 'auth']);
  if (obj.auth !== undefined) {
    // The module's IoT Hub identity cannot sign Azure Storage requests (see README): say so instead of guessing.
    throw new ConfigError(
      `${where}.auth: ${r.show(obj.auth)} is not supported: Azure Storage does not accept an IoT Edge module's IoT Hub identity; ` +
        'use connection_string or sas_url (e.g. from a variable set in the deployment)',
    );
  }
  const connectionString = r.string(obj.connection_string, `${where}.connection_string`);
  const sasUrl = r.string(obj.sas_url, `${where}.sas_url`);
  if ((connectionString === null) === (sasUrl === null)) {
    throw new ConfigError(`${where} needs exactly one of connection_string or sas_url, got ${connectionString === null ? 'neither' : 'both'}`);
  }
  let auth: AzureBlobAuth;
  let container = r.string(obj.container, `${where}.container`);
  if (connectionString !== null) {
    const fields = new Map<string, string>();
    for (const part of connectionString.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
    }
    r.secret(`${where}.connection_string`, connectionString);
    r.secret(`${where}.connection_string.AccountKey`, fields.get('accountkey') ?? '');
    r.secret(`${where}.connection_string.SharedAccessSignature`, fields.get('sharedaccesssignature') ?? '');
    const usable = fields.get('usedevelopmentstorage') === 'true' || (fields.has('accountname') && (fields.has('accountkey') || fields.has('sharedaccesssignature'))) || (fields.has('blobendpoint') && fields.has('sharedaccesssignature'));
    if (!usable) throw new ConfigError(`${where}.connection_string is not an Azure Storage connection string (it needs AccountName and AccountKey, or a SharedAccessSignature)`);
    auth = { kind: 'connection-string', connectionString };
  } else {
    r.secret(`${where}.sas_url`, sasUrl!);
    let url: URL;
    try {
      url = new URL(sasUrl!);
    } catch {
      throw new ConfigError(`${where}.sas_url is not a URL`);
    }
    r.secret(`${where}.sas_url.token`, url.search.slice(1));
    r.secret(`${where}.sas_url.sig`, url.searchParams.get('sig') ?? '');
    if (!url.searchParams.has('sig')) throw new ConfigError(`${where}.sas_url has no SAS token (no "sig" parameter)`);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`${where}.sas_url must be an http(s) URL`);
    // https://account.blob.core.windows.net/container?sv=...: the container is the path when not given apart.
    // Emulators put the account first: http://127.0.0.1:10000/devstoreaccount1/container?sv=...
    const segments = url.pathname.split('/').filter(Boolean);
    const fromUrl = /^\d+\.\d+\.\d+\.\d+$|^localhost$/.test(url.hostname) ? segments[1] : segments[0];
    if (container === null && fromUrl) container = decodeURIComponent(fromUrl);
    else if (container !== null && fromUrl && decodeURIComponent(fromUrl) !== container) {
      throw new ConfigError(`${where}.container "${container}" differs from the container in sas_url`);
    }
    auth = { kind: 'sas-url', url: sasUrl!, containerInUrl: Boolean(fromUrl) };
  }
  if (container === null || container === '') throw new ConfigError(`${where}.container is required (the blob container to upload into)`);
  if (!/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/.test(container)) {
    throw new ConfigError(`${where}.container must be 3-63 lower-case letters, digits and single hyphens, got ${r.show(container)}`);
  }
  return { type: 'azure-blob', name: r.string(obj.name, `${where}.name`) ?? `azure-blob:${container}`, container, auth };
}

function s3Of(r: Reader, obj: Record<string, unknown>, where: string): S3TargetSettings {
  r.known(obj, where, ['type', 'name', 'bucket', 'region', 'endpoint', 'force_path_style', 'access_key_id', 'secret_access_key', 'session_token', 'verify_etag']);
  const bucket = r.required(obj.bucket, `${where}.bucket`, 'the S3 bucket to upload into');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new ConfigError(`${where}.bucket must be 3-63 lower-case letters, digits, "." and "-", got ${r.show(bucket)}`);
  const endpoint = r.string(obj.endpoint, `${where}.endpoint`);
  if (endpoint !== null) {
    let url: URL | null = null;
    try {
      url = new URL(endpoint);
    } catch {
      // reported below
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new ConfigError(`${where}.endpoint must be an http(s) URL, got ${r.show(endpoint)}`);
    if (url.username || url.password) throw new ConfigError(`${where}.endpoint must not hold credentials (use access_key_id and secret_access_key)`);
  }
  const accessKeyId = r.string(obj.access_key_id, `${where}.access_key_id`);
  const secretAccessKey = r.string(obj.secret_access_key, `${where}.secret_access_key`);
  const sessionToken = r.string(obj.session_token, `${where}.session_token`);
  if ((accessKeyId === null) !== (secretAccessKey === null)) {
    throw new ConfigError(`${where} needs both access_key_id and secret_access_key, or neither (the SDK's default credentials), got only ${accessKeyId === null ? 'secret_access_key' : 'access_key_id'}`);
  }
  if (secretAccessKey) r.secret(`${where}.secret_access_key`, secretAccessKey);
  if (sessionToken) r.secret(`${where}.session_token`, sessionToken);
  return {
    type: 's3',
    name: r.string(obj.name, `${where}.name`) ?? `s3:${bucket}`,
    bucket,
    region: r.string(obj.region, `${where}.region`) ?? 'us-east-1',
    endpoint,
    forcePathStyle: r.boolean(obj.force_path_style, `${where}.force_path_style`, endpoint !== null),
    accessKeyId,
    secretAccessKey,
    sessionToken,
    verifyEtag: r.boolean(obj.verify_etag, `${where}.verify_etag`, true),
  };
}
