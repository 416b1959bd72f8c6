/**
 * HTTPS beside plain HTTP on one port: each connection's first byte says which it is (a TLS handshake
 * record starts with 0x16, an HTTP request with a letter), and it goes to the fastify app's own HTTP server or
 * to an HTTPS server with the same request handler. So turning TLS on keeps every `http://` client working
 * (IoT Edge's metrics collector scrapes `http://<module>:9600/metrics`), while `auth.require_tls` refuses
 * credentials on the plain connections (AccessControl sees `secure: false`).
 */
import type { IncomingMessage, Server } from 'node:http';
import { createServer, type Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import type { ServerCertificate } from '../certs/certificate.js';
import { HTTP_LIMITS } from './app.js';

/** The first byte of a TLS handshake record (RFC 8446 5.1, ContentType handshake). */
const TLS_HANDSHAKE = 0x16;

/** The HTTPS side of a port: its server (for `upgrade` listeners) and the certificate it presents. */
export interface TlsSide {
  readonly server: HttpsServer;
  /** A renewed certificate: new handshakes get it, open connections keep theirs. */
  setCertificate(certificate: ServerCertificate): void;
  /** Ends every TLS connection (the port itself closes with the app). */
  close(): void;
}

/**
 * Whether a request came over TLS (HTTPS, WSS).
 *
 * @example
 * access.authenticate({ address, secure: isSecure(request.raw), authorization });
 */
export function isSecure(request: IncomingMessage): boolean {
  return (request.socket as Partial<TLSSocket>).encrypted === true;
}

/**
 * Makes the app's port speak HTTPS too, with `certificate`. Call before `listen`. Connections that send nothing
 * are dropped after the request timeout, as plain HTTP ones are.
 *
 * @example
 * const tls = addTls(app, security.certificate$.value);
 * gateway.attach(tls.server);
 * security.certificate$.subscribe((cert) => cert && tls.setCertificate(cert));
 */
export function addTls(app: FastifyInstance, certificate: ServerCertificate): TlsSide {
  const plain: Server = app.server;
  const handler = plain.listeners('request')[0] as (request: IncomingMessage, response: unknown) => void;
  const httpConnection = plain.listeners('connection')[0] as (socket: Socket) => void;
  const tls = createServer({ cert: certificate.certificatePem, key: certificate.privateKeyPem }, handler);
  tls.keepAliveTimeout = plain.keepAliveTimeout;
  tls.requestTimeout = plain.requestTimeout;
  tls.headersTimeout = plain.headersTimeout;
  tls.setTimeout(plain.timeout);
  // A failed handshake is the client's problem (a browser that does not trust the certificate yet): not an error here.
  tls.on('tlsClientError', (_error, socket) => socket.destroy());
  plain.removeListener('connection', httpConnection);
  plain.on('connection', function sniff(socket: Socket): void {
    const silent = setTimeout(() => socket.destroy(), HTTP_LIMITS.requestTimeoutMs);
    const dispatch = (): void => {
      const first = socket.read(1) as Buffer | null;
      if (first === null) {
        socket.once('readable', dispatch);
        return;
      }
      clearTimeout(silent);
      socket.removeListener('close', stop);
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE) tls.emit('connection', socket);
      else httpConnection.call(plain, socket);
    };
    const stop = () => clearTimeout(silent);
    socket.once('close', stop);
    socket.on('error', () => socket.destroy());
    dispatch();
  });
  return {
    server: tls,
    setCertificate: (cert) => tls.setSecureContext({ cert: cert.certificatePem, key: cert.privateKeyPem }),
    close: () => tls.closeAllConnections(),
  };
}
