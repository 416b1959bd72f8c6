import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../actors/Metrics.js';

/** `GET /metrics` in Prometheus text format: the same handler on the web server and on the metrics-only port. */
export function metricsRoute(app: FastifyInstance, metrics: Metrics): void {
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}

/** Counts every request of `app` by method, route pattern and status. */
export function countRequests(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, not the URL: a label per requested path would grow without bound.
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.observeHttp(request.method, route, reply.statusCode);
  });
}
