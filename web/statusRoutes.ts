import type { FastifyInstance } from 'fastify';
import { auditTime, type Observable } from 'rxjs';
import type { StatusDocument } from '../actors/ControlPlane.js';

/** How often at most the status page's event stream sends an update. */
const STATUS_STREAM_INTERVAL_MS = 250;

/** Limits of the status event stream: each subscriber holds a socket and its unsent data. */
export const STATUS_STREAM_LIMITS = {
  /** Streams open at once; more are answered 503. */
  maxSubscribers: 64,
  /** A subscriber that has not taken what was written for this long is dropped. */
  maxStallMs: 30_000,
  keepAliveMs: 15_000,
} as const;

/**
 * `GET /api/status`: the status document (what reported properties hold; secrets already masked), and
 * `GET /api/status/events`: the same document as server-sent events on every change, for the status page. A slow
 * reader gets only the newest document once it catches up (never a backlog), and is dropped when it stalls.
 */
export function statusRoutes(app: FastifyInstance, status$: Observable<StatusDocument> & { value: StatusDocument }): void {
  let subscribers = 0;
  app.get('/api/status', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return status$.value;
  });
  app.get('/api/status/events', (request, reply) => {
    if (subscribers >= STATUS_STREAM_LIMITS.maxSubscribers) {
      return reply.code(503).header('retry-after', '10').send({ error: `too many status streams (${STATUS_STREAM_LIMITS.maxSubscribers})` });
    }
    subscribers++;
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    /** Set while the socket has not taken the last write: the next document waits for `drain`. */
    let stalledSince: number | null = null;
    let waiting: StatusDocument | null = null;
    const write = (text: string) => {
      if (!raw.write(text)) stalledSince ??= Date.now();
    };
    const send = (doc: StatusDocument) => {
      if (stalledSince !== null) {
        waiting = doc;
        return;
      }
      write(`data: ${JSON.stringify(doc)}\n\n`);
    };
    raw.on('drain', () => {
      stalledSince = null;
      const doc = waiting;
      waiting = null;
      if (doc) send(doc);
    });
    send(status$.value);
    const subscription = status$.pipe(auditTime(STATUS_STREAM_INTERVAL_MS)).subscribe(send);
    // Comments keep proxies from closing an idle stream; a stalled reader is let go.
    const keepAlive = setInterval(() => {
      if (stalledSince !== null) {
        if (Date.now() - stalledSince > STATUS_STREAM_LIMITS.maxStallMs) raw.destroy();
        return;
      }
      write(': keep-alive\n\n');
    }, STATUS_STREAM_LIMITS.keepAliveMs);
    let closed = false;
    raw.on('close', () => {
      if (closed) return;
      closed = true;
      subscribers--;
      clearInterval(keepAlive);
      subscription.unsubscribe();
    });
  });
}
