/**
 * What the engine's RTSP server needs for authentication and RTSPS, as plain data over IPC. Meant to join
 * ipc/protocol.ts (the `rtsp` command's config) when the RTSP server is wired; kept apart until then so this
 * branch touches no file another engineer is changing.
 */

/** One user the RTSP server knows. Only users with a password: Basic and Digest both need it. */
export interface RtspUserSpec {
  readonly name: string;
  /** The expanded password (never logged; the engine hands it to GstRTSPAuth and forgets it). */
  readonly password: string;
  /** Mount paths (`/player`) this user may watch, or `*` for every mount. */
  readonly mounts: '*' | readonly string[];
}

/** RTSP authentication: users, what anyone may watch, and how credentials may be sent. */
export interface RtspAuthSpec {
  /** `WWW-Authenticate` realm (Digest hashes include it, so it must stay stable while clients are connected). */
  readonly realm: string;
  readonly users: readonly RtspUserSpec[];
  /** Mount paths anyone may watch without credentials, or `*`. */
  readonly anonymousMounts: '*' | readonly string[];
  /**
   * `auth.require_tls`: the plain server takes no credentials at all. It serves anonymous mounts and answers
   * 404 (not 401) on the others, so no client is asked to send a password in clear.
   */
  readonly requireTls: boolean;
}

/** The RTSPS server: a second RTSPServer instance on its own port (TLS takes over the whole port). */
export interface RtspTlsSpec {
  readonly port: number;
  readonly address: string;
  /** PEM: the certificate and its chain, leaf first. */
  readonly certificatePem: string;
  /** PEM private key of the leaf certificate (checked to match before it is sent). */
  readonly privateKeyPem: string;
}
