import type { RtspAuthSpec, RtspTlsSpec } from '../ipc/protocol.js';
import { gi } from './gst.js';

const GstRtspServer = gi.require('GstRtspServer', '1.0');
const GstRtsp = gi.require('GstRtsp', '1.0');
const Gio = gi.require('Gio', '2.0');

type Auth = InstanceType<typeof GstRtspServer.RTSPAuth>;
type Token = InstanceType<typeof GstRtspServer.RTSPToken>;
type Permissions = InstanceType<typeof GstRtspServer.RTSPPermissions>;
type Server = InstanceType<typeof GstRtspServer.RTSPServer>;
type Factory = InstanceType<typeof GstRtspServer.RTSPMediaFactory>;
type TlsCertificate = InstanceType<typeof Gio.TlsCertificate>;

/** The role of requests without (accepted) credentials. User roles are `user:<name>`, which no user name can spell. */
export const ANONYMOUS_ROLE = 'anonymous';

/** Which challenges the server offers. Clients answer the strongest offered (ffmpeg and rtspsrc: Digest). */
export type RtspAuthMethods = 'basic' | 'digest' | 'both';

/** What {@link buildRtspAuth} builds one RTSPAuth for. */
export interface RtspAuthOptions {
  /** The RTSPS server's certificate; null for the plain server. */
  readonly tls: Pick<RtspTlsSpec, 'certificatePem' | 'privateKeyPem'> | null;
  /** Default both. */
  readonly methods?: RtspAuthMethods;
}

/** A certificate the engine cannot use (GIO's parser refused it); never holds key material. */
export class RtspTlsError extends Error {
  override readonly name = 'RtspTlsError';
}

function roleOf(user: string): string {
  return `user:${user}`;
}

function watches(mounts: '*' | readonly string[], path: string): boolean {
  return mounts === '*' || mounts.includes(path);
}

function tokenFor(role: string): Token {
  const token = GstRtspServer.RTSPToken.new();
  // Complete before handing over: once given to the auth, a token is read-only (a later set is a CRITICAL, ignored).
  token.setString(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, role);
  return token;
}

/**
 * The GIO certificate for an RTSPS server: leaf + chain and key in one PEM text, as `newFromPem` reads both.
 * The control plane has checked that key and certificate match (GIO accepts a mismatch, then every handshake
 * fails).
 *
 * @example
 * auth.setTlsCertificate(tlsCertificateOf(spec.certificatePem, spec.privateKeyPem));
 */
export function tlsCertificateOf(certificatePem: string, privateKeyPem: string): TlsCertificate {
  try {
    return Gio.TlsCertificate.newFromPem(`${certificatePem.trimEnd()}\n${privateKeyPem.trimEnd()}\n`, -1);
  } catch {
    throw new RtspTlsError('the RTSPS certificate or key cannot be read by GIO');
  }
}

/**
 * Builds a GstRtspServer RTSPAuth from plain data: each user with a password gets Basic and Digest entries
 * with a token of its own role, and a default token of the {@link ANONYMOUS_ROLE} lets public mounts play
 * without credentials (see {@link buildMountPermissions} for the mounts that ask for them).
 *
 * For the plain server when `requireTls` is set, the auth has no users and offers no method: protected mounts
 * answer 401 without a challenge, so no client is ever asked to send a password in clear (neither ffmpeg nor
 * rtspsrc sends credentials unasked). Build a new one to change users: objects handed to a server are not changed.
 *
 * @example
 * plain.setAuth(buildRtspAuth(spec, { tls: null }));
 * rtsps.setAuth(buildRtspAuth(spec, { tls: { certificatePem, privateKeyPem } }));
 */
export function buildRtspAuth(spec: RtspAuthSpec, options: RtspAuthOptions): Auth {
  const auth = GstRtspServer.RTSPAuth.new();
  auth.setRealm(spec.realm);
  auth.setDefaultToken(tokenFor(ANONYMOUS_ROLE));
  const takesCredentials = options.tls !== null || !spec.requireTls;
  const methods = options.methods ?? 'both';
  const { BASIC, DIGEST } = GstRtsp.RTSPAuthMethod;
  if (takesCredentials) {
    for (const user of spec.users) {
      const token = tokenFor(roleOf(user.name));
      if (methods !== 'digest') auth.addBasic(GstRtspServer.RTSPAuth.makeBasic(user.name, user.password), token);
      if (methods !== 'basic') auth.addDigest(user.name, user.password, token);
    }
    auth.setSupportedMethods(methods === 'basic' ? BASIC : methods === 'digest' ? DIGEST : BASIC | DIGEST);
  } else {
    auth.setSupportedMethods(GstRtsp.RTSPAuthMethod.NONE);
  }
  if (options.tls) {
    auth.setTlsCertificate(tlsCertificateOf(options.tls.certificatePem, options.tls.privateKeyPem));
    auth.setTlsAuthenticationMode(Gio.TlsAuthenticationMode.NONE);
  }
  return auth;
}

/**
 * The permissions of one mount. The anonymous role may always ACCESS (so a protected mount answers 401 with
 * a challenge, not 404, and clients send credentials) and CONSTRUCT only public mounts; each user may ACCESS
 * every mount (401 on the others, so a client can retry as another user) and CONSTRUCT those it has rights to.
 *
 * @example
 * factory.setPermissions(buildMountPermissions(spec, '/player'));
 */
export function buildMountPermissions(spec: RtspAuthSpec, path: string): Permissions {
  const { RTSP_PERM_MEDIA_FACTORY_ACCESS: ACCESS, RTSP_PERM_MEDIA_FACTORY_CONSTRUCT: CONSTRUCT } = GstRtspServer;
  const permissions = GstRtspServer.RTSPPermissions.new();
  permissions.addPermissionForRole(ANONYMOUS_ROLE, ACCESS, true);
  permissions.addPermissionForRole(ANONYMOUS_ROLE, CONSTRUCT, watches(spec.anonymousMounts, path));
  for (const user of spec.users) {
    permissions.addPermissionForRole(roleOf(user.name), ACCESS, true);
    permissions.addPermissionForRole(roleOf(user.name), CONSTRUCT, watches(user.mounts, path));
  }
  return permissions;
}

/** The servers and mounts an {@link applyRtspAuth} call sets up. */
export interface RtspAuthTargets {
  /** The plain RTSP server, if there is one. */
  readonly plain: Server | null;
  /** The RTSPS server and its certificate, if there is one. */
  readonly tls: { readonly server: Server; readonly certificate: Pick<RtspTlsSpec, 'certificatePem' | 'privateKeyPem'> } | null;
  /** Mount path -> factory (shared by both servers through one RTSPMountPoints). */
  readonly factories: ReadonlyMap<string, Factory>;
}

/**
 * Applies auth settings (first time or live): a new RTSPAuth per server and new permissions per mount, set on
 * the servers, on every connected client (a client keeps the auth it was created with otherwise, so its next
 * request would be judged by the old rules) and on every factory. `null` removes auth (open). Sessions
 * already playing are not cut here: close those of the mounts {@link mountsLosingAccess} names.
 *
 * @example
 * applyRtspAuth({ plain: server, tls: null, factories }, spec);
 */
export function applyRtspAuth(targets: RtspAuthTargets, spec: RtspAuthSpec | null, methods?: RtspAuthMethods): void {
  const { KEEP } = GstRtspServer.RTSPFilterResult;
  const set = (server: Server, auth: Auth | null): void => {
    server.setAuth(auth);
    server.clientFilter((_server, client) => {
      client.setAuth(auth);
      return KEEP;
    });
  };
  if (targets.plain) set(targets.plain, spec ? buildRtspAuth(spec, { tls: null, ...(methods ? { methods } : {}) }) : null);
  if (targets.tls) {
    // Open RTSPS still needs an auth object: it is what carries the server certificate.
    const auth = buildRtspAuth(spec ?? OPEN_SPEC, { tls: targets.tls.certificate, ...(methods ? { methods } : {}) });
    set(targets.tls.server, auth);
  }
  // With an auth set, a factory without permissions answers 401 to everyone: open RTSPS needs open permissions.
  const permissions = spec ?? (targets.tls ? OPEN_SPEC : null);
  for (const [path, factory] of targets.factories) factory.setPermissions(permissions ? buildMountPermissions(permissions, path) : null);
}

/** RTSPS without users: everyone may watch everything. */
const OPEN_SPEC: RtspAuthSpec = { realm: 'gst-iotedge', users: [], anonymousMounts: '*', requireTls: false };
