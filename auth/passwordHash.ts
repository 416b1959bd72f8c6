import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashes for the twin's `password_hash`, in one self-describing text form:
 *
 * ```
 * scrypt:N=16384,r=8,p=5:<salt, base64url>:<derived key, base64url>
 * ```
 *
 * - `N`, `r`, `p` are scrypt's cost, block size and parallelism (RFC 7914); the key is 32 bytes, the salt 16.
 * - Separators are `:` and the encoding is base64url without padding, so the text holds no `$`: it passes
 *   through the twin's `$VAR` expansion unchanged (PHC strings, `$scrypt$...`, would be read as variables).
 * - The default N=2^14, r=8, p=5 is one of OWASP's equivalent minimums and needs 16 MiB, which an arm32 edge
 *   device can spare; a successful check is cached by the caller (AccessControl), so the cost is paid once
 *   per login, not per request.
 */
export const HASH_SCHEME = 'scrypt';

/** scrypt parameters as stored in a hash. */
export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { N: 16_384, r: 8, p: 5 };
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/**
 * Upper bounds on what a stored hash may ask for: the hash comes from the twin, and a huge N would make every
 * login try to allocate gigabytes (scrypt's memory is 128 * N * r bytes).
 */
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_MEMORY = 256 * 1024 * 1024;

/** A `password_hash` that is not in the format above; the message never quotes the hash. */
export class PasswordHashFormatError extends Error {
  override readonly name = 'PasswordHashFormatError';
}

/** A parsed hash, ready to verify against. */
export interface PasswordHash {
  readonly params: ScryptParams;
  readonly salt: Buffer;
  readonly key: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Parses and bounds-checks a hash (see {@link HASH_SCHEME} for the format). Throws
 * {@link PasswordHashFormatError} saying which part is wrong.
 *
 * @example
 * const hash = parsePasswordHash('scrypt:N=16384,r=8,p=5:3q2-7w:...');
 */
export function parsePasswordHash(text: string): PasswordHash {
  const parts = text.split(':');
  if (parts.length !== 4 || parts[0] !== HASH_SCHEME) {
    throw new PasswordHashFormatError('a password hash is "scrypt:N=<n>,r=<r>,p=<p>:<salt>:<key>" (npm run hash-password makes one)');
  }
  const params = /^N=(\d{1,8}),r=(\d{1,3}),p=(\d{1,3})$/.exec(parts[1]!);
  if (!params) throw new PasswordHashFormatError('the hash parameters must read N=<n>,r=<r>,p=<p>');
  const N = Number(params[1]);
  const r = Number(params[2]);
  const p = Number(params[3]);
  if (N < 2 || N > MAX_N || (N & (N - 1)) !== 0) throw new PasswordHashFormatError(`the hash's N must be a power of two up to ${MAX_N}`);
  if (r < 1 || r > MAX_R) throw new PasswordHashFormatError(`the hash's r must be from 1 to ${MAX_R}`);
  if (p < 1 || p > MAX_P) throw new PasswordHashFormatError(`the hash's p must be from 1 to ${MAX_P}`);
  if (128 * N * r > MAX_MEMORY) throw new PasswordHashFormatError('the hash asks scrypt for more than 256 MiB (N * r too large)');
  const [salt, key] = [parts[2]!, parts[3]!];
  if (!B64URL.test(salt) || !B64URL.test(key)) throw new PasswordHashFormatError('the hash\'s salt and key must be base64url');
  const saltBytes = Buffer.from(salt, 'base64url');
  const keyBytes = Buffer.from(key, 'base64url');
  if (saltBytes.length < 8) throw new PasswordHashFormatError('the hash\'s salt must be at least 8 bytes');
  if (keyBytes.length < 16 || keyBytes.length > 64) throw new PasswordHashFormatError('the hash\'s key must be 16 to 64 bytes');
  return { params: { N, r, p }, salt: saltBytes, key: keyBytes };
}

function scrypt(password: string, salt: Buffer, length: number, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 128 * params.N * params.r * 2 };
  return new Promise((resolve, reject) => {
    scryptCallback(password.normalize('NFC'), salt, length, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/**
 * Hashes a password into the stored form. Passwords are NFC-normalised first, so "é" typed either way matches.
 *
 * @example
 * const stored = await hashPassword('correct horse battery staple');
 * await verifyPassword('correct horse battery staple', parsePasswordHash(stored)); // true
 */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, KEY_BYTES, params);
  return `${HASH_SCHEME}:N=${params.N},r=${params.r},p=${params.p}:${salt.toString('base64url')}:${key.toString('base64url')}`;
}

/**
 * Checks a password against a parsed hash in constant time (scrypt runs on libuv's thread pool, not the event
 * loop).
 *
 * @example
 * if (await verifyPassword(given, parsePasswordHash(stored))) grant();
 */
export async function verifyPassword(password: string, hash: PasswordHash): Promise<boolean> {
  const derived = await scrypt(password, hash.salt, hash.key.length, hash.params);
  return timingSafeEqual(derived, hash.key);
}
