import { hostname as osHostname } from 'node:os';
import { DEFAULT_TLS } from '../config/defaults.js';
import { ConfigError } from '../config/errors.js';
import { expand } from '../config/expand.js';
import { workloadIdentityFromEnv, type WorkloadIdentity } from './workloadApi.js';

/** The twin key these settings live under. */
export const TLS_KEY = 'tls';

/** Where the server certificate comes from, decided (no `auto` left). */
export interface TlsSettings {
  readonly source: 'files' | 'workload' | 'self-signed';
  /** PEM certificate (chain) file and key file (`files`). */
  readonly certFile: string | null;
  readonly keyFile: string | null;
  /** IoT Edge's workload API (`workload`). */
  readonly workload: WorkloadIdentity | null;
  /** CN asked for (`workload`) or written (`self-signed`). */
  readonly commonName: string;
  /** More names for a self-signed certificate's subjectAltName (host names or IP addresses). */
  readonly altNames: readonly string[];
  /** Lifetime asked for (`workload`) or given (`self-signed`). */
  readonly validityDays: number;
  /** Renew this long before expiry; null: a fifth of the certificate's lifetime. */
  readonly renewBeforeMs: number | null;
}

/** {@link parseTlsSettings}'s result: null settings means TLS is off. */
export interface ResolvedTls {
  readonly settings: TlsSettings | null;
  /** Values expanded from the environment, for the redactor (file paths are not secret, but every value goes). */
  readonly secrets: ReadonlyMap<string, string>;
}

const KNOWN = new Set(['source', 'cert_file', 'key_file', 'common_name', 'subject_alt_names', 'validity_days', 'renew_before_s']);
const HOST_OR_IP = /^[A-Za-z0-9.:-]{1,253}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads the twin's `tls` key: `true` (a certificate from wherever one can be had), `false`/absent (off, unless
 * `TLS_CERT_FILE` is set in the environment), or an object. `source` `auto` (default) takes files when named
 * (in the twin, or `TLS_CERT_FILE`/`TLS_KEY_FILE`), else the IoT Edge workload API when the module runs under
 * IoT Edge, else a self-signed certificate. Pure: environment and host name come in.
 *
 * @example
 * const { settings } = parseTlsSettings(desired.tls ?? (auth?.requireTls ? true : undefined), process.env);
 * if (settings) manager = await CertificateManager.start(settings);
 */
export function parseTlsSettings(value: unknown, env: NodeJS.ProcessEnv, hostname: string = osHostname()): ResolvedTls {
  const secrets = new Map<string, string>();
  const envFiles = env.TLS_CERT_FILE ? true : false;
  if (value === undefined || value === null || value === false) {
    if (!envFiles || value === false) return { settings: null, secrets };
    value = {};
  }
  if (value === true) value = {};
  if (!isObject(value)) throw new ConfigError(`${TLS_KEY} must be true, false or an object`);
  for (const key of Object.keys(value)) {
    if (!KNOWN.has(key)) throw new ConfigError(`${TLS_KEY}.${key} is not a setting (known: ${[...KNOWN].join(', ')})`);
  }
  const path = (key: string, envName: string): string | null => {
    const v = value[key] ?? (env[envName] ? `$${envName}` : null);
    if (v === null) return null;
    if (typeof v !== 'string' || v === '') throw new ConfigError(`${TLS_KEY}.${key} must be a file path`);
    const { text, values } = expand(v, env, `${TLS_KEY}.${key}`);
    for (const [k, val] of values) secrets.set(k, val);
    if (!text.startsWith('/')) throw new ConfigError(`${TLS_KEY}.${key} must be an absolute path, got ${JSON.stringify(v)}`);
    return text;
  };
  const certFile = path('cert_file', 'TLS_CERT_FILE');
  const keyFile = path('key_file', 'TLS_KEY_FILE') ?? certFile; // one PEM file may hold both
  const workload = workloadIdentityFromEnv(env);
  const asked = value.source ?? DEFAULT_TLS.source;
  if (asked !== 'auto' && asked !== 'files' && asked !== 'iotedge' && asked !== 'self-signed') {
    throw new ConfigError(`${TLS_KEY}.source must be "auto", "files", "iotedge" or "self-signed", got ${JSON.stringify(asked)}`);
  }
  const source = asked === 'auto' ? (certFile ? 'files' : workload ? 'workload' : 'self-signed') : asked === 'iotedge' ? 'workload' : asked;
  if (source === 'files' && !certFile) throw new ConfigError(`${TLS_KEY}.source "files" needs ${TLS_KEY}.cert_file (or TLS_CERT_FILE)`);
  if (source === 'workload' && !workload) {
    throw new ConfigError(`${TLS_KEY}.source "iotedge" needs IOTEDGE_WORKLOADURI, IOTEDGE_MODULEID and IOTEDGE_MODULEGENERATIONID (the module is not running under IoT Edge)`);
  }
  const commonName = value.common_name ?? env.IOTEDGE_GATEWAYHOSTNAME ?? hostname;
  if (typeof commonName !== 'string' || !HOST_OR_IP.test(commonName)) throw new ConfigError(`${TLS_KEY}.common_name must be a host name, got ${JSON.stringify(commonName)}`);
  const altNames = value.subject_alt_names ?? DEFAULT_TLS.subjectAltNames;
  if (!Array.isArray(altNames) || altNames.some((n) => typeof n !== 'string' || !HOST_OR_IP.test(n))) {
    throw new ConfigError(`${TLS_KEY}.subject_alt_names must be a list of host names or IP addresses`);
  }
  const validityDays = value.validity_days ?? DEFAULT_TLS.validityDays;
  if (typeof validityDays !== 'number' || !Number.isInteger(validityDays) || validityDays < 1 || validityDays > 825) {
    throw new ConfigError(`${TLS_KEY}.validity_days must be a whole number from 1 to 825, got ${JSON.stringify(validityDays)}`);
  }
  const renewBefore = value.renew_before_s ?? null;
  if (renewBefore !== null && (typeof renewBefore !== 'number' || !Number.isInteger(renewBefore) || renewBefore < 1)) {
    throw new ConfigError(`${TLS_KEY}.renew_before_s must be a whole number of seconds, got ${JSON.stringify(renewBefore)}`);
  }
  return {
    settings: {
      source,
      certFile: source === 'files' ? certFile : null,
      keyFile: source === 'files' ? keyFile : null,
      workload: source === 'workload' ? workload : null,
      commonName,
      altNames: altNames as string[],
      validityDays,
      renewBeforeMs: renewBefore === null ? null : renewBefore * 1000,
    },
    secrets,
  };
}
