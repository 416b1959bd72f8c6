import type { FastifyInstance } from 'fastify';
import { auditTime, type Observable } from 'rxjs';
import type { StatusDocument } from '../actors/ControlPlane.js';

/** How often at most the status page's event stream sends an update. */
const STATUS_STREAM_INTERVAL_MS = 250;

/**
 * `GET /api/status`: the status document (what reported properties hold; secrets already masked), and
 * `GET /api/status/events`: the same document as server-sent events on every change, for the status page.
 */
export function statusRoutes(app: FastifyInstance, status$: Observable<StatusDocument> & { value: StatusDocument }): void {
  app.get('/api/status', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return status$.value;
  });
  app.get('/api/status/events', (request, reply) => {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const send = (doc: StatusDocument) => raw.write(`data: ${JSON.stringify(doc)}\n\n`);
    send(status$.value);
    const subscription = status$.pipe(auditTime(STATUS_STREAM_INTERVAL_MS)).subscribe(send);
    // Comments keep proxies from closing an idle stream.
    const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), 15_000);
    request.raw.on('close', () => {
      clearInterval(keepAlive);
      subscription.unsubscribe();
    });
  });
}
